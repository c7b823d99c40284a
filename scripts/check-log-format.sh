#!/usr/bin/env bash
# One log style everywhere: messages start lowercase and do not end with a period.
# Checks the string literal right after the fields of tracing macros.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bad=$(grep -rnE '(trace|debug|info|warn|error)!\((.*, )?"[A-Z][a-z]' --include='*.rs' "$ROOT"/{core,collector,coordinator,ingester,api,cli}/src || true)
bad+=$(grep -rnE '(trace|debug|info|warn|error)!\((.*, )?"[^"]*\."\)' --include='*.rs' "$ROOT"/{core,collector,coordinator,ingester,api,cli}/src || true)
if [ -n "$bad" ]; then
  echo "log messages must start lowercase and not end with a period:" >&2
  echo "$bad" >&2
  exit 1
fi
