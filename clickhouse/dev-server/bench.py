#!/usr/bin/env python3
"""Quick performance check of the dev server (compare with the spec's section 7).

    /tmp/chvenv/bin/python clickhouse/dev-server/bench.py            # starts its own server
    /tmp/chvenv/bin/python clickhouse/dev-server/bench.py --port 8123  # uses a running one

Measures the `SELECT 1` round trip over keep-alive, a 1M-row insert of narrow rows
(id UInt64, v UInt32: 12 bytes in RowBinary) sent like the Rust crate sends it, plain and as
native LZ4 frames, and reading 2M rows back.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))

import numpy  # noqa: E402  (a chDB dependency; builds the 12 MB body quickly)

from chdev_testlib import Client, ServerProcess, native_frame, rbwnat_header  # noqa: E402

CHUNK = 256 << 10
ROWS = 1_000_000


def narrow_body(rows: int) -> bytes:
    arr = numpy.zeros(rows, dtype=[("id", "<u8"), ("v", "<u4")])
    arr["id"] = numpy.arange(rows, dtype="<u8")
    arr["v"] = arr["id"] % 1000
    return rbwnat_header([("id", "UInt64"), ("v", "UInt32")]) + arr.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="use a server already listening on this port")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each bulk measurement")
    args = parser.parse_args()

    server = None
    if args.port is None:
        server = ServerProcess(None).start()
        port = server.port
    else:
        port = args.port
    client = Client(port)
    try:
        for _ in range(50):  # warm up
            client.ok("SELECT 1", default_format="RowBinaryWithNamesAndTypes")
        times = []
        for _ in range(1000):
            started = time.perf_counter()
            client.ok("SELECT 1", default_format="RowBinaryWithNamesAndTypes")
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"SELECT 1 round trip over keep-alive (1000 requests): median {statistics.median(times):.2f} ms, "
              f"p95 {times[949]:.2f} ms, p99 {times[989]:.2f} ms")

        client.ok("DROP DATABASE IF EXISTS bench")
        client.ok("CREATE DATABASE bench")
        client.ok("CREATE TABLE bench.narrow (id UInt64, v UInt32) ENGINE = MergeTree ORDER BY id")
        body = narrow_body(ROWS)
        plain = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]
        framed = [native_frame(piece) for piece in plain]  # compressed up front: not timed
        query = {"query": "INSERT INTO bench.narrow(`id`,`v`) FORMAT RowBinaryWithNamesAndTypes"}
        for label, pieces, extra in (("none", plain, {}), ("lz4 frames", framed, {"decompress": "1"})):
            runs = []
            for _ in range(args.repeat):
                client.ok("TRUNCATE TABLE bench.narrow")
                started = time.perf_counter()
                resp = client.request("POST", {**query, **extra}, pieces, chunked=True)
                runs.append(time.perf_counter() - started)
                assert resp.status == 200, resp.text
            assert client.scalar("SELECT count() FROM bench.narrow") == str(ROWS)
            best, med = min(runs) * 1000, statistics.median(runs) * 1000
            print(f"1M narrow rows, one INSERT, compression {label}: best {best:.0f} ms, median "
                  f"{med:.0f} ms ({ROWS / min(runs) / 1e6:.1f} M rows/s best)")

        client.ok("TRUNCATE TABLE bench.narrow")
        client.ok("INSERT INTO bench.narrow SELECT number, number % 1000 FROM numbers(2000000)")
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            data = client.ok("SELECT id, v FROM bench.narrow", default_format="RowBinaryWithNamesAndTypes")
            runs.append(time.perf_counter() - started)
        print(f"read 2M narrow rows (RowBinaryWithNamesAndTypes, {len(data) / 1e6:.0f} MB): "
              f"best {min(runs) * 1000:.0f} ms, median {statistics.median(runs) * 1000:.0f} ms")
        client.ok("DROP DATABASE bench")
    finally:
        client.close()
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
