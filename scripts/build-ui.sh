#!/usr/bin/env bash
# Builds the web UI into ui/dist (wasm, JS glue, ECharts, styles and their gzipped copies), as the
# demo and test commands do. Skips the build when nothing changed since the last one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_rust
build_ui
log "web UI in $ROOT/ui/dist"
