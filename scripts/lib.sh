# Shared helpers for scripts/demo.sh and scripts/test.sh. Source it; do not run it.
#
# Everything here is safe to run twice: each step checks what is already installed or running.
# Services run on loopback with their data under the project, and are stopped by pid, never by name.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV_DIR="$ROOT/.venv"
TOOLS_DIR="$ROOT/tools"
BINARYEN_VERSION=132
# The charting library of the web UI, from npm at build time and served by the api (never a CDN).
ECHARTS_VERSION=6.0.0

log() { printf '\033[1;34m[dvmdash]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[dvmdash] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

# Installs the Debian packages whose commands are missing.
ensure_packages() {
  local want=() cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || want+=("$pkg")
  done
  [ "${#want[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing ${want[*]} and no apt-get to install them"
  log "installing Debian packages: ${want[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  command -v rustup >/dev/null 2>&1 || return 0
  # rust-toolchain.toml pins the toolchain; install it (and the wasm32 target) explicitly, since
  # rustup's automatic installation may be switched off (RUSTUP_AUTO_INSTALL=0).
  local channel
  channel="$(awk -F'"' '/^channel/ {print $2}' "$ROOT/rust-toolchain.toml")"
  if ! rustup toolchain list | grep -q "^$channel"; then
    log "installing Rust $channel"
    rustup toolchain install "$channel" --profile minimal -c rustfmt -c clippy -t wasm32-unknown-unknown
  fi
  if ! rustup +"$channel" target list --installed | grep -q wasm32-unknown-unknown; then
    log "adding the wasm32 target"
    rustup +"$channel" target add wasm32-unknown-unknown
  fi
  if ! rustup +"$channel" component list --installed | grep -q '^clippy'; then
    rustup +"$channel" component add clippy rustfmt
  fi
}

# A Python virtual environment with pinned requirements, rebuilt when the requirements change.
ensure_venv() {
  local name="$1" requirements="$2" dir="$VENV_DIR/$1"
  local stamp="$dir/.requirements"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
    return 0
  fi
  ensure_packages python3:python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || ensure_packages_force python3-venv
  log "preparing Python environment $name (first time only)"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

ensure_packages_force() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wasm-bindgen must be exactly the version in Cargo.lock; wasm-opt comes from npm's binaryen
# (Debian's binaryen 108 produces modules that crash in Chromium).
ensure_wasm_tools() {
  local want have
  want="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock")"
  [ -n "$want" ] || die "wasm-bindgen not found in Cargo.lock"
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (a few minutes, once)"
    # Not --locked: its lockfile pins a webpki-roots release the registry mirror lacks.
    cargo install -q wasm-bindgen-cli --version "$want"
  fi
  if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ]; then
    if command -v npm >/dev/null 2>&1; then
      log "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
      npm install -s --no-audit --no-fund --prefix "$TOOLS_DIR" "binaryen@$BINARYEN_VERSION" >/dev/null 2>&1 \
        || log "npm binaryen failed; the UI will be built without wasm-opt (larger, still correct)"
    else
      log "npm not found; the UI will be built without wasm-opt (larger, still correct)"
    fi
  fi
}

# ECharts' prebuilt "common" bundle (line, bar, pie; legend, tooltip, aria), pinned.
ensure_echarts() {
  local pkg="$TOOLS_DIR/node_modules/echarts/package.json"
  if [ -f "$pkg" ] && grep -q "\"version\": \"$ECHARTS_VERSION\"" "$pkg"; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || ensure_packages npm:npm
  log "installing echarts $ECHARTS_VERSION (npm)"
  npm install -s --no-audit --no-fund --prefix "$TOOLS_DIR" "echarts@$ECHARTS_VERSION" >/dev/null \
    || die "npm could not install echarts@$ECHARTS_VERSION (the web UI's charts)"
}

# Builds the web UI into ui/dist (skipped when nothing changed since the last build).
build_ui() {
  ensure_wasm_tools
  ensure_echarts
  local dist="$ROOT/ui/dist" stamp newest
  stamp="$dist/.built"
  newest="$(find "$ROOT/ui/src" "$ROOT/ui/static" "$ROOT/ui/Cargo.toml" "$ROOT/core/src" "$ROOT/Cargo.lock" -newer "$stamp" -print -quit 2>/dev/null || true)"
  if [ -f "$stamp" ] && [ -z "$newest" ]; then
    return 0
  fi
  log "building the web UI"
  (cd "$ROOT" && cargo build -q --profile wasm-release --target wasm32-unknown-unknown -p dvmdash-ui)
  mkdir -p "$dist"
  wasm-bindgen --target web --no-typescript --out-dir "$dist" --out-name ui \
    "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/dvmdash_ui.wasm"
  if [ -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ]; then
    "$TOOLS_DIR/node_modules/.bin/wasm-opt" -Oz "$dist/ui_bg.wasm" -o "$dist/ui_bg.wasm"
  fi
  cp "$ROOT/ui/static/"* "$dist/"
  cp "$TOOLS_DIR/node_modules/echarts/dist/echarts.common.min.js" "$dist/echarts.min.js"
  # Pre-compressed copies, sent by the api to browsers that accept gzip (no per-request CPU).
  local f
  for f in "$dist"/*.wasm "$dist"/*.js "$dist"/*.css; do
    gzip -9 -n -k -f "$f"
  done
  touch "$stamp"
}

# Starts a throwaway or persistent Redis. Sets REDIS_PID_FILE. Args: port dir persistent(yes|no)
start_redis() {
  local port="$1" dir="$2" persist="$3"
  mkdir -p "$dir"
  local args=(--port "$port" --bind 127.0.0.1 --dir "$dir" --pidfile "$dir/redis.pid"
              --logfile "$dir/redis.log" --daemonize yes --protected-mode yes)
  if [ "$persist" = yes ]; then
    args+=(--appendonly yes --appendfsync everysec --save '')
  else
    args+=(--appendonly no --save '')
  fi
  rm -f "$dir/redis.pid"
  # setsid: a Ctrl-C in the terminal reaches dvmdash, which still needs Redis to shut down cleanly.
  setsid redis-server "${args[@]}" </dev/null
  REDIS_PID_FILE="$dir/redis.pid"
  wait_for_port "$port" 30 "redis"
}

stop_redis() {
  [ -n "${REDIS_PID_FILE:-}" ] && stop_pidfile "$REDIS_PID_FILE" redis
  return 0
}

# Starts the ClickHouse stand-in. Sets CHDEV_PID and CHDEV_PORT. Args: port(0=any) dir
start_chdev() {
  local port="$1" dir="$2"
  ensure_venv chdev "$ROOT/clickhouse/dev-server/requirements.txt"
  mkdir -p "$dir"
  local port_file="$dir.port"
  rm -f "$port_file"
  setsid "$VENV_DIR/chdev/bin/python" "$ROOT/clickhouse/dev-server/chdev-server.py" \
    --path "$dir" --port "$port" --port-file "$port_file" </dev/null >"$dir.log" 2>&1 &
  CHDEV_PID=$!
  local i
  for i in $(seq 1 600); do
    [ -s "$port_file" ] && break
    kill -0 "$CHDEV_PID" 2>/dev/null || { tail -20 "$dir.log" >&2; die "the ClickHouse stand-in failed to start"; }
    sleep 0.1
  done
  [ -s "$port_file" ] || die "the ClickHouse stand-in did not start within 60 s (log: $dir.log)"
  CHDEV_PORT="$(cat "$port_file")"
}

stop_chdev() {
  if [ -n "${CHDEV_PID:-}" ] && kill -0 "$CHDEV_PID" 2>/dev/null; then
    kill -TERM "$CHDEV_PID" 2>/dev/null || true
    wait_pid_gone "$CHDEV_PID" 20 || kill -KILL "$CHDEV_PID" 2>/dev/null || true
  fi
  return 0
}

stop_pidfile() {
  local file="$1" name="$2" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 20 || { log "$name did not stop, killing it"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
}

wait_pid_gone() {
  local pid="$1" secs="$2" i
  for i in $(seq 1 $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

wait_for_port() {
  local port="$1" secs="$2" what="$3" i
  for i in $(seq 1 $((secs * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$what did not listen on port $port within $secs s"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
