"""Command line: `python -m chdev --path DIR [--port 8123] [--stream] ...`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

log = logging.getLogger("chdev")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="chdev",
        description="ClickHouse HTTP interface over the embedded chDB engine (development "
                    "stand-in for clickhouse-server; never deploy it).")
    p.add_argument("--path", required=True,
                   help="data directory (created if missing); one server per directory")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8123,
                   help="port to listen on (default 8123; 0 picks a free port)")
    p.add_argument("--port-file", metavar="PATH",
                   help="write the bound port here (atomically) once connections are accepted")
    p.add_argument("--user", help="require this user name (X-ClickHouse-User, user=, Basic auth)")
    p.add_argument("--password", default="", help="password for --user (default empty)")
    p.add_argument("--stream", action="store_true",
                   help="stream SELECT results chunk by chunk (else buffer whole results)")
    p.add_argument("--lz4-responses", action="store_true",
                   help="answer 'Accept-Encoding: lz4' with LZ4-frame compressed bodies")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.password and args.user is None:
        p.error("--password needs --user")
    return args


def _write_port_file(path: str, port: int) -> None:
    # Write then rename, so a reader never sees a partial file.
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s chdev %(levelname)s: %(message)s")
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("chdev.access").setLevel(logging.INFO if args.verbose else logging.WARNING)

    if args.port_file:
        _remove_quietly(args.port_file)  # never leave a stale port for a waiting script

    import chdb  # slow (about 0.5 s): after argument errors have been reported

    from .engine import Engine, EngineStartError
    from .server import DevServer, Options

    try:
        server = DevServer((args.host, args.port), Options(
            stream=args.stream, lz4_responses=args.lz4_responses, user=args.user,
            password=args.password))
    except OSError as exc:
        print(f"chdev: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    try:
        engine = Engine(args.path)
    except EngineStartError as exc:
        server.server_close()
        print(f"chdev: error: {exc}", file=sys.stderr)
        return 1
    server.engine = engine
    port = server.server_address[1]

    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():
            os._exit(128 + signum)  # second signal: stop waiting for requests in flight
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               name="chdev-accept", daemon=True)
    serving.start()
    if args.port_file:
        _write_port_file(args.port_file, port)
    mode = "streaming" if args.stream else "buffered"
    extras = "".join((", LZ4 responses" if args.lz4_responses else "",
                      f", auth as {args.user}" if args.user is not None else ""))
    log.info("ClickHouse %s (chDB %s) listening on http://%s:%d, data directory %s (%s mode%s)",
             engine.version, chdb.__version__, args.host, port, engine.path, mode, extras)

    while not stop.wait(0.5):
        if not serving.is_alive():
            log.error("the accept loop stopped unexpectedly")
            break

    log.info("shutting down")
    server.closing = True
    server.shutdown()
    idle = server.wait_idle(10.0)
    if not idle:
        log.warning("requests still running after 10 s; closing anyway")
    server.server_close()
    engine.close()  # stops the engine once the last connection closes: data is flushed
    if args.port_file:
        _remove_quietly(args.port_file)
    log.info("stopped")
    logging.shutdown()
    if not idle:
        # A request thread is still inside the engine, which therefore cannot stop cleanly;
        # skip interpreter teardown (committed data is on disk, as after kill -9).
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
