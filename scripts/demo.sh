#!/usr/bin/env bash
# The main job on one machine: installs what is missing, starts Redis and the ClickHouse stand-in
# (unless REDIS_URL / CLICKHOUSE_URL point at running servers), applies migrations, and runs every
# role with in-process relays and simulated DVM traffic. Prints the dashboard URL. Ctrl-C stops
# everything and leaves no process behind; data persists in .data/ between runs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DATA_DIR="${DVMDASH_DATA_DIR:-$ROOT/.data}"
export DVMDASH_API_ADDR="${DVMDASH_API_ADDR:-127.0.0.1:8000}"
export DVMDASH_UI_DIR="${DVMDASH_UI_DIR:-$ROOT/ui/dist}"

DVMDASH_PID=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$DVMDASH_PID" ] && kill -0 "$DVMDASH_PID" 2>/dev/null; then
    kill -TERM "$DVMDASH_PID" 2>/dev/null || true
    wait_pid_gone "$DVMDASH_PID" 60 || kill -KILL "$DVMDASH_PID" 2>/dev/null || true
  fi
  stop_chdev
  stop_redis
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages redis-server:redis-server
ensure_rust

if [ -z "${REDIS_URL:-}" ]; then
  port="${DVMDASH_DEMO_REDIS_PORT:-16379}"
  port_in_use "$port" && die "port $port is busy (another demo running?); set DVMDASH_DEMO_REDIS_PORT or REDIS_URL"
  log "starting Redis on 127.0.0.1:$port (data in $DATA_DIR/redis)"
  start_redis "$port" "$DATA_DIR/redis" yes
  export REDIS_URL="redis://127.0.0.1:$port"
fi
if [ -z "${CLICKHOUSE_URL:-}" ]; then
  port="${DVMDASH_DEMO_CLICKHOUSE_PORT:-18123}"
  port_in_use "$port" && die "port $port is busy (another demo running?); set DVMDASH_DEMO_CLICKHOUSE_PORT or CLICKHOUSE_URL"
  log "starting the ClickHouse stand-in on 127.0.0.1:$port (data in $DATA_DIR/clickhouse)"
  start_chdev "$port" "$DATA_DIR/clickhouse"
  export CLICKHOUSE_URL="http://127.0.0.1:$CHDEV_PORT"
fi

build_ui
log "building dvmdash (release)"
(cd "$ROOT" && cargo build -q --release -p dvmdash)

log "starting every role with in-process relays and simulated traffic"
"$TARGET_DIR/release/dvmdash" demo "$@" &
DVMDASH_PID=$!
set +e
wait "$DVMDASH_PID"
status=$?
DVMDASH_PID=""
exit "$status"
