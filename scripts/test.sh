#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the ClickHouse stand-in's own suite, integration
# and end-to-end tests against real Redis, the ClickHouse engine and real relays, the browser test,
# promtool rule tests and the compose file check. Installs what is missing first; safe to run twice.
# Tests that need a service get its address from DVMDASH_TEST_* variables set here, and fail (never
# skip) when run without them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

started=$(date +%s)
SERVICES_DIR="$TARGET_DIR/test-services"

cleanup() {
  trap - INT TERM EXIT
  stop_chdev
  stop_redis
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free disk is part of each step's line: a build that runs out of space fails in confusing ways.
step() { log "== $* ($(( $(date +%s) - started )) s, $(df -h --output=avail "$ROOT" | tail -1 | tr -d ' ') free)"; }

# Incremental caches only help rebuilds in a working copy; here they would double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "checking tools"
ensure_packages redis-server:redis-server chromium:chromium chromedriver:chromium-driver \
  fc-list:fonts-dejavu-core promtool:prometheus amtool:prometheus-alertmanager
ensure_rust
ensure_venv chdev "$ROOT/clickhouse/dev-server/requirements.txt"
ensure_venv relay "$ROOT/scripts/requirements-relay.txt"
ensure_venv tools "$ROOT/scripts/requirements-tools.txt"

step "formatting and lints"
(cd "$ROOT" && cargo fmt --all --check)
(cd "$ROOT" && cargo clippy -q --workspace --all-targets -- -D warnings)
(cd "$ROOT" && cargo clippy -q -p dvmdash-ui --target wasm32-unknown-unknown -- -D warnings)
"$ROOT/scripts/check-log-format.sh"

step "building the web UI"
build_ui

step "starting Redis and the ClickHouse stand-in"
rm -rf "$SERVICES_DIR"
mkdir -p "$SERVICES_DIR"
redis_port="$(free_port)"
start_redis "$redis_port" "$SERVICES_DIR/redis" no
start_chdev 0 "$SERVICES_DIR/clickhouse"
export DVMDASH_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
export DVMDASH_TEST_CLICKHOUSE_URL="http://127.0.0.1:$CHDEV_PORT"
export DVMDASH_TEST_CHDEV_PYTHON="$VENV_DIR/chdev/bin/python"
export DVMDASH_TEST_CHDEV_SCRIPT="$ROOT/clickhouse/dev-server/chdev-server.py"
export DVMDASH_TEST_NOSTR_RELAY="$VENV_DIR/relay/bin/nostr-relay"
export DVMDASH_TEST_UI_DIR="$ROOT/ui/dist"
export DVMDASH_TEST_CHROME="$(command -v chromium)"
export DVMDASH_TEST_CHROMEDRIVER="$(command -v chromedriver)"
export DVMDASH_TEST_REDIS_SERVER="$(command -v redis-server)"
export DVMDASH_TEST_PROMETHEUS="$(command -v prometheus)"
log "redis $DVMDASH_TEST_REDIS_URL, clickhouse stand-in $DVMDASH_TEST_CLICKHOUSE_URL"

step "ClickHouse stand-in suite"
(cd "$ROOT" && "$VENV_DIR/chdev/bin/python" -m unittest discover -s clickhouse/dev-server/tests)

step "Rust tests (unit, integration, end to end, browser)"
(cd "$ROOT" && cargo test -q --workspace --no-fail-fast -- --test-threads="${DVMDASH_TEST_THREADS:-2}")

step "Prometheus rules and Alertmanager config"
promtool check config "$ROOT/prometheus/prometheus.yml"
promtool check rules "$ROOT/prometheus/alerts.yml"
promtool test rules "$ROOT/prometheus/alerts_test.yml"
amtool check-config "$ROOT/prometheus/alertmanager.yml" >/dev/null

step "compose files against the Compose specification, ClickHouse configuration files"
"$VENV_DIR/tools/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$ROOT/compose.yaml" "$ROOT/compose.cluster.yaml"
# clickhouse-server and Keeper refuse to start on a malformed file (an XML comment with "--" in it).
"$VENV_DIR/tools/bin/python" - "$ROOT"/clickhouse/users.d/*.xml "$ROOT"/clickhouse/cluster/*.xml <<'PY'
import sys, xml.dom.minidom
for path in sys.argv[1:]:
    xml.dom.minidom.parse(path)
print(f"{len(sys.argv) - 1} ClickHouse configuration files are well-formed")
PY

step "Dockerfile against hadolint"
"$VENV_DIR/tools/bin/hadolint" --config "$ROOT/.hadolint.yaml" "$ROOT/scripts/Dockerfile"

step "all tests passed in $(( $(date +%s) - started )) s"
