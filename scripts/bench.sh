#!/usr/bin/env bash
# Runs `dvmdash bench` (docs/performance.md) on a release build against a fresh Redis and the
# ClickHouse stand-in, or against REDIS_URL / CLICKHOUSE_URL when set (e.g. a real clickhouse-server).
# Arguments go to `dvmdash bench` unchanged, e.g. `scripts/bench.sh --only ingest --rounds 3`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH_DIR="$TARGET_DIR/bench-services"

cleanup() {
  trap - INT TERM EXIT
  stop_chdev
  stop_redis
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages redis-server:redis-server
ensure_rust

log "building dvmdash (release)"
(cd "$ROOT" && cargo build -q --release -p dvmdash)

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
if [ -z "${REDIS_URL:-}" ]; then
  port="$(free_port)"
  start_redis "$port" "$BENCH_DIR/redis" no
  export REDIS_URL="redis://127.0.0.1:$port"
fi
if [ -z "${CLICKHOUSE_URL:-}" ]; then
  start_chdev 0 "$BENCH_DIR/clickhouse"
  export CLICKHOUSE_URL="http://127.0.0.1:$CHDEV_PORT"
fi
log "redis $REDIS_URL, clickhouse $CLICKHOUSE_URL"
"$TARGET_DIR/release/dvmdash" bench "$@"
