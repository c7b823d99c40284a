"""The dev server over HTTP, driven the way the Rust `clickhouse` crate 0.15.3 drives it.

One buffered-mode server serves most tests (each test uses its own database); streaming,
LZ4 responses and authentication get servers of their own.
"""

import json
import os
import statistics
import struct
import sys
import threading
import time
import unittest
import uuid
import zlib

import lz4.frame

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chdev_testlib import (  # noqa: E402
    ERROR_BODY_RE, Client, ServerProcess, http_request, native_frame, new_database, parse_rbwnat,
    raw_exchange, rb_string, varint)

RBWNAT = "RowBinaryWithNamesAndTypes"
NARROW = [("id", "UInt64"), ("v", "UInt32")]


def narrow_rows(start: int, count: int) -> bytes:
    return b"".join(struct.pack("<QI", i, i % 1000) for i in range(start, start + count))


def escape_param(value: str) -> str:
    """Escaped text as the crate writes parameter values."""
    return "".join("\\" + c if c in "\\'`\t\n" else c for c in value)


def multipart_body(fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
             + value.encode() + b"\r\n" for name, value in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class ServerTestCase(unittest.TestCase):
    flags: tuple = ()
    server: ServerProcess

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess(None, *cls.flags).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.client = self.server.client()
        self.db = new_database(self.client)

    def tearDown(self):
        self.client.close()

    def assertError(self, resp, code: int, status: int):
        self.assertEqual(resp.status, status, resp.text)
        self.assertEqual(resp.header("X-ClickHouse-Exception-Code"), str(code))
        m = ERROR_BODY_RE.match(resp.text)
        self.assertIsNotNone(m, f"not a ClickHouse error body: {resp.text!r}")
        self.assertEqual(int(m.group(1)), code)

    def assertOk(self, resp):
        self.assertEqual(resp.status, 200, resp.text)
        self.assertIsNone(resp.header("X-ClickHouse-Exception-Code"))

    def create_narrow(self, name: str = "n") -> str:
        self.client.ok(f"CREATE TABLE {self.db}.{name} (id UInt64, v UInt32) "
                       f"ENGINE = MergeTree ORDER BY id")
        return f"{self.db}.{name}"


class BufferedServerTest(ServerTestCase):
    def test_ping_and_root(self):
        for path in ("/ping", "/"):
            resp = self.client.request("GET", path=path)
            self.assertEqual((resp.status, resp.body), (200, b"Ok.\n"))

    def test_select_row_binary_with_names_and_types(self):
        resp = self.client.query("SELECT number AS n, toString(number) AS s FROM numbers(3)",
                                 default_format=RBWNAT)
        self.assertOk(resp)
        self.assertEqual(resp.header("X-ClickHouse-Format"), RBWNAT)
        columns, rows = parse_rbwnat(resp.body)
        self.assertEqual(columns, [("n", "UInt64"), ("s", "String")])
        self.assertEqual(rows, [(0, b"0"), (1, b"1"), (2, b"2")])

    def test_format_clause_wins_and_default_is_tsv(self):
        resp = self.client.query("SELECT 1 AS x FORMAT JSONEachRow", default_format=RBWNAT)
        self.assertEqual((resp.body, resp.header("X-ClickHouse-Format")), (b'{"x":1}\n', "JSONEachRow"))
        resp = self.client.query("SELECT 'a', 2")
        self.assertEqual((resp.body, resp.header("X-ClickHouse-Format")), (b"a\t2\n", "TabSeparated"))

    def test_describe_table_returns_seven_string_columns(self):
        self.client.ok(f"CREATE TABLE {self.db}.d (id UInt64, s LowCardinality(String), "
                       f"t DateTime TTL t + INTERVAL 1 DAY) ENGINE = MergeTree ORDER BY id")
        resp = self.client.query("DESCRIBE TABLE `d`", database=self.db, default_format=RBWNAT,
                                 describe_include_subcolumns="0")
        self.assertOk(resp)
        columns, rows = parse_rbwnat(resp.body)
        self.assertEqual(columns, [(n, "String") for n in (
            "name", "type", "default_type", "default_expression", "comment", "codec_expression",
            "ttl_expression")])
        self.assertEqual([(r[0], r[1]) for r in rows],
                         [(b"id", b"UInt64"), (b"s", b"LowCardinality(String)"), (b"t", b"DateTime")])
        self.assertEqual(rows[2][6], b"t + toIntervalDay(1)")

    def test_insert_chunked_row_binary_with_names_and_types(self):
        table = self.create_narrow()
        # 100003-byte pieces cut rows in the middle, as the crate's 256 KiB buffers do.
        resp = self.client.insert(table, NARROW, narrow_rows(0, 50_000), chunk_size=100_003)
        self.assertOk(resp)
        summary = json.loads(resp.header("X-ClickHouse-Summary"))
        self.assertEqual((summary["written_rows"], summary["written_bytes"]), ("50000", "600000"))
        self.assertEqual(self.client.scalar(f"SELECT count(), sum(id), max(v) FROM {table}"),
                         f"50000\t{sum(range(50_000))}\t999")

    def test_insert_with_native_lz4_frames(self):
        table = self.create_narrow()
        resp = self.client.insert(table, NARROW, narrow_rows(0, 30_000), chunk_size=65_536,
                                  compress=True)
        self.assertOk(resp)
        self.assertEqual(self.client.scalar(f"SELECT count(), sum(id) FROM {table}"),
                         f"30000\t{sum(range(30_000))}")
        # Frames need not line up with HTTP chunks.
        data = native_frame(b"\x02\x02id\x01v\x06UInt64\x06UInt32") + native_frame(narrow_rows(7, 3))
        pieces = [data[i:i + 5] for i in range(0, len(data), 5)]
        resp = self.client.request("POST", {
            "query": f"INSERT INTO {table}(`id`,`v`) FORMAT {RBWNAT}", "decompress": "1"},
            pieces, chunked=True)
        self.assertOk(resp)
        self.assertEqual(self.client.scalar(f"SELECT count() FROM {table}"), "30003")

    def test_insert_with_bad_frames(self):
        table = self.create_narrow()
        header = b"\x02\x02id\x01v\x06UInt64\x06UInt32"
        good = native_frame(header + narrow_rows(0, 10))
        unknown = bytearray(native_frame(header + narrow_rows(0, 10), method=0x02))
        unknown[16] = 0x42  # method byte; fix the checksum so only the method is wrong
        unknown = native_frame(bytes(unknown[25:]), method=0x42)
        cases = [
            (native_frame(header + narrow_rows(0, 10), corrupt=True), 40),
            (unknown, 89),
            (good[:-4], 32),
        ]
        for body, code in cases:
            with self.subTest(code=code):
                resp = self.client.request("POST", {
                    "query": f"INSERT INTO {table}(`id`,`v`) FORMAT {RBWNAT}", "decompress": "1"},
                    [body], chunked=True)
                self.assertError(resp, code, 500)
        self.assertEqual(self.client.scalar(f"SELECT count() FROM {table}"), "0")
        self.assertEqual(self.client.scalar("SELECT 1"), "1")  # same keep-alive connection

    def test_insert_statement_in_body_and_values(self):
        table = self.create_narrow()
        self.assertOk(self.client.request("POST", body=f"INSERT INTO {table} FORMAT TSV\n1\t2\n3\t4\n".encode()))
        self.assertOk(self.client.request("POST", {"query": f"INSERT INTO {table} FORMAT CSV"},
                                          b"5,6\n"))
        self.assertOk(self.client.query(f"INSERT INTO {table} VALUES (7, 8), (9, 10);"))
        self.assertOk(self.client.request("POST", {"query": f"INSERT INTO {table} VALUES"}, b"(11, 12)"))
        self.assertEqual(self.client.scalar(f"SELECT groupArray(id) FROM (SELECT id FROM {table} ORDER BY id)"),
                         "[1,3,5,7,9,11]")

    def test_insert_errors_keep_the_connection_usable(self):
        table = self.create_narrow()
        resp = self.client.insert(f"{self.db}.missing", NARROW, narrow_rows(0, 1000))
        self.assertError(resp, 60, 404)
        resp = self.client.request("POST", {
            "query": f"INSERT INTO {table}(`id`,`v`) FORMAT {RBWNAT}"},
            [b"\x02\x02id\x01v\x06UInt64\x06UInt32" + narrow_rows(0, 5) + b"\x01\x02"], chunked=True)
        self.assertError(resp, 33, 500)
        self.assertEqual(self.client.scalar(f"SELECT count() FROM {table}"), "0")

    def test_parameters_round_trip_byte_for_byte(self):
        value = "a?it's\t\\ok\n"
        body, ctype = multipart_body({
            "query": "SELECT {s:String} AS s, {n:UInt32} AS n, {a:Array(String)} AS a, "
                     "{z:Nullable(String)} AS z",
            "param_s": escape_param(value), "param_n": "42", "param_a": "['x','y\\'z']",
            "param_z": "\\N"})
        resp = self.client.request("POST", {"default_format": RBWNAT}, body,
                                   headers={"Content-Type": ctype})
        self.assertOk(resp)
        columns, rows = parse_rbwnat(resp.body)
        self.assertEqual([t for _, t in columns], ["String", "UInt32", "Array(String)", "Nullable(String)"])
        self.assertEqual(rows, [(value.encode(), 42, [b"x", b"y'z"], None)])
        # The same value as a URL parameter.
        resp = self.client.query("SELECT {s:String}", param_s=escape_param(value), default_format=RBWNAT)
        self.assertEqual(parse_rbwnat(resp.body)[1], [(value.encode(),)])

    def test_missing_parameter(self):
        body, ctype = multipart_body({"query": "SELECT {x:UInt8}", "param_y": "1"})
        resp = self.client.request("POST", {}, body, headers={"Content-Type": ctype})
        self.assertError(resp, 456, 500)

    def test_errors_have_code_header_status_and_body(self):
        self.assertError(self.client.query("SELECT * FROM no_such_table_xyz"), 60, 404)
        self.assertError(self.client.query("SELEC 1"), 62, 400)
        self.assertError(self.client.query("SELECT 1", no_such_setting_xyz="1"), 115, 404)
        self.assertError(self.client.query("SET wait_end_of_query = 1"), 115, 404)
        self.assertError(self.client.query("SELECT 1", database="no_such_db_xyz"), 81, 404)
        self.assertError(self.client.query("SELECT 1", max_threads="abc"), 27, 400)
        self.assertError(self.client.query(""), 62, 400)
        resp = self.client.query("SELECT sleep(1) SETTINGS max_execution_time = 0.2")
        self.assertError(resp, 159, 408)

    def test_summary_and_wait_end_of_query(self):
        self.client.ok(f"CREATE TABLE {self.db}.h (x UInt64) ENGINE = MergeTree ORDER BY x")
        self.client.ok(f"INSERT INTO {self.db}.h SELECT number FROM numbers(100)")
        resp = self.client.query(f"SELECT x FROM {self.db}.h", wait_end_of_query="1",
                                 default_format="RowBinary")
        self.assertOk(resp)
        summary = json.loads(resp.header("X-ClickHouse-Summary"))
        self.assertTrue(all(isinstance(v, str) for v in summary.values()), summary)
        self.assertEqual(set(summary), {"read_rows", "read_bytes", "written_rows", "written_bytes",
                                        "total_rows_to_read", "result_rows", "result_bytes", "elapsed_ns"})
        self.assertEqual((summary["read_rows"], summary["result_rows"], summary["read_bytes"]),
                         ("100", "100", "800"))

    def test_settings_apply_per_request(self):
        self.assertEqual(self.client.scalar("SELECT getSetting('max_threads')", max_threads="1"), "1")
        self.assertNotEqual(self.client.scalar("SELECT getSetting('max_threads')"), "1")
        self.assertEqual(self.client.scalar("SELECT 1", enable_http_compression="1",
                                            send_progress_in_http_headers="1",
                                            http_headers_progress_interval_ms="100"), "1")

    def test_sessions(self):
        sid = uuid.uuid4().hex
        self.client.ok("CREATE TEMPORARY TABLE tmp (x UInt8)", session_id=sid)
        self.client.ok("INSERT INTO tmp VALUES (1), (2)", session_id=sid)
        self.assertEqual(self.client.scalar("SELECT count() FROM tmp", session_id=sid), "2")
        self.assertError(self.client.query("SELECT count() FROM tmp"), 60, 404)
        self.assertEqual(self.client.scalar("SELECT 1", session_id=sid, close_session="1"), "1")
        self.assertError(self.client.query("SELECT 1", session_id=sid, session_check="1"), 372, 500)
        self.assertError(self.client.query("SELECT 1", session_id=sid, session_timeout="x"), 374, 500)

    def test_session_requests_wait_for_each_other(self):
        sid = uuid.uuid4().hex
        other = self.server.client()
        first = {}
        thread = threading.Thread(target=lambda: first.update(resp=other.query(
            "SELECT sleep(1)", session_id=sid)))
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        self.assertEqual(self.client.scalar("SELECT 'second'", session_id=sid), "second")
        self.assertGreater(time.monotonic() - started, 0.4)  # waited for the lock, did not fail
        thread.join()
        other.close()
        self.assertOk(first["resp"])

    def test_get_is_read_only(self):
        resp = self.client.request("GET", {"query": f"CREATE TABLE {self.db}.g (x UInt8) ENGINE = Memory"})
        self.assertError(resp, 164, 500)
        resp = self.client.request("GET", {"query": f"INSERT INTO {self.db}.g FORMAT TSV"})
        self.assertError(resp, 164, 500)
        resp = self.client.request("GET", {"query": "SELECT 1 + 1"})
        self.assertEqual((resp.status, resp.body), (200, b"2\n"))
        # readonly=1 on a POST (some client versions send it for fetches) also only reads.
        self.assertError(self.client.query(f"DROP DATABASE {self.db}", readonly="1"), 164, 500)
        self.assertEqual(self.client.scalar("SELECT 5", readonly="1"), "5")

    def test_multi_statements_rejected(self):
        resp = self.client.query(f"CREATE TABLE {self.db}.m1 (x UInt8) ENGINE = Memory; "
                                 f"CREATE TABLE {self.db}.m2 (x UInt8) ENGINE = Memory")
        self.assertError(resp, 62, 400)
        self.assertIn("Multi-statements are not allowed", resp.text)
        self.assertEqual(self.client.scalar(f"EXISTS TABLE {self.db}.m1"), "0")
        for sql in ("SELECT ';'", "SELECT 1;", "SELECT 1 -- ; SELECT 2\n", "SELECT 1; -- done",
                    "SELECT 1 /* ; */"):
            with self.subTest(sql=sql):
                self.assertOk(self.client.query(sql))

    def test_short_query_is_fast_while_a_long_one_runs(self):
        long_client = self.server.client()
        result = {}

        def run_long():
            started = time.monotonic()
            result["resp"] = long_client.query(
                "SELECT sleepEachRow(0.5) FROM numbers(5) SETTINGS max_block_size = 1")
            result["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=run_long)
        thread.start()
        time.sleep(0.3)
        timings = []
        for _ in range(5):
            started = time.monotonic()
            self.assertEqual(self.client.scalar("SELECT 1"), "1")
            timings.append(time.monotonic() - started)
            time.sleep(0.05)
        self.assertTrue(thread.is_alive(), "the long query ended too early to prove anything")
        thread.join()
        long_client.close()
        self.assertOk(result["resp"])
        self.assertGreater(result["seconds"], 2.0)
        self.assertLess(statistics.median(timings), 0.1, timings)

    def test_mv_into_aggregating_merge_tree_with_dedup_token(self):
        db = self.db
        self.client.ok(f"CREATE TABLE {db}.raw (k String, v UInt64) ENGINE = MergeTree ORDER BY k "
                       f"SETTINGS non_replicated_deduplication_window = 100")
        self.client.ok(f"CREATE TABLE {db}.agg (k String, c AggregateFunction(count), "
                       f"s AggregateFunction(sum, UInt64), u AggregateFunction(uniq, UInt64)) "
                       f"ENGINE = AggregatingMergeTree ORDER BY k "
                       f"SETTINGS non_replicated_deduplication_window = 100")
        self.client.ok(f"CREATE MATERIALIZED VIEW {db}.mv TO {db}.agg AS SELECT k, countState() AS c, "
                       f"sumState(v) AS s, uniqState(v) AS u FROM {db}.raw GROUP BY k")
        columns = [("k", "String"), ("v", "UInt64")]
        rows = b"".join(rb_string(f"k{i % 3}") + struct.pack("<Q", i) for i in range(1000))
        for _ in range(2):  # a retried batch
            resp = self.client.insert(f"{db}.raw", columns, rows, insert_deduplication_token="batch-1",
                                      deduplicate_blocks_in_dependent_materialized_views="1")
            self.assertOk(resp)
        self.assertEqual(self.client.scalar(f"SELECT count(), sum(v) FROM {db}.raw"), f"1000\t{sum(range(1000))}")
        self.assertEqual(self.client.scalar(
            f"SELECT countMerge(c), sumMerge(s), uniqMerge(u) FROM {db}.agg"), f"1000\t{sum(range(1000))}\t1000")
        resp = self.client.insert(f"{db}.raw", columns, rows, insert_deduplication_token="batch-2",
                                  deduplicate_blocks_in_dependent_materialized_views="1")
        self.assertOk(resp)
        self.assertEqual(self.client.scalar(f"SELECT countMerge(c) FROM {db}.agg"), "2000")

    def test_compress_1_gives_native_frames(self):
        from chdev_testlib import decode_native_frames
        resp = self.client.query("SELECT number FROM numbers(1000)", compress="1", default_format="RowBinary")
        self.assertOk(resp)
        self.assertEqual(decode_native_frames(resp.body), b"".join(struct.pack("<Q", i) for i in range(1000)))

    def test_request_content_encoding(self):
        gz = zlib.compressobj(wbits=31)
        body = gz.compress(b"SELECT 40 + 2") + gz.flush()
        resp = self.client.request("POST", {}, body, headers={"Content-Encoding": "gzip"})
        self.assertEqual(resp.body, b"42\n")
        resp = self.client.request("POST", {}, lz4.frame.compress(b"SELECT 43"),
                                   headers={"Content-Encoding": "lz4"})
        self.assertEqual(resp.body, b"43\n")

    # -- hostile input: each gets a ClickHouse-style error, the server keeps serving --------

    def _still_serving(self):
        client = Client(self.server.port)
        try:
            self.assertEqual(client.scalar("SELECT 'alive'"), "alive")
        finally:
            client.close()

    def test_invalid_content_length(self):
        for value in ("abc", "-5", "1, 2"):
            with self.subTest(value=value):
                status, headers, chunks, closed = raw_exchange(self.server.port, http_request(
                    "POST", "/", b"SELECT 1", [("Content-Length", value)], content_length=False))
                self.assertEqual((status, headers["x-clickhouse-exception-code"]), (400, "36"))
                self.assertRegex(chunks[0].decode(), r"^Code: 36\. DB::Exception: Invalid Content-Length")
                self.assertTrue(closed)
        self._still_serving()

    def test_oversized_content_length(self):
        status, headers, chunks, closed = raw_exchange(self.server.port, http_request(
            "POST", "/", b"SELECT 1", [("Content-Length", "99999999999999")], content_length=False))
        self.assertEqual((status, headers["x-clickhouse-exception-code"]), (413, "229"))
        self.assertTrue(closed)
        status, headers, chunks, closed = raw_exchange(self.server.port, http_request(
            "POST", "/?query=SELECT%201", b"x", [("Content-Length", "99999999999999")],
            content_length=False))
        self.assertEqual(status, 413)
        self._still_serving()

    def test_garbage_chunked_encoding(self):
        for body in (b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"\r\n\r\n"):
            with self.subTest(body=body):
                status, headers, chunks, closed = raw_exchange(self.server.port, http_request(
                    "POST", "/?query=SELECT%201", body, [("Transfer-Encoding", "chunked")],
                    content_length=False))
                self.assertEqual((status, headers["x-clickhouse-exception-code"]), (400, "36"))
                self.assertIn("Malformed chunked request body", chunks[0].decode())
                self.assertTrue(closed)
        self._still_serving()

    def test_invalid_multipart(self):
        resp = self.client.request("POST", {}, b"this is not multipart",
                                   headers={"Content-Type": "multipart/form-data; boundary=abc"})
        self.assertError(resp, 36, 400)
        self.assertIn("multipart/form-data", resp.text)
        self.assertEqual(self.client.scalar("SELECT 2"), "2")

    def test_unknown_content_encoding(self):
        resp = self.client.request("POST", {}, b"SELECT 1", headers={"Content-Encoding": "br2"})
        self.assertError(resp, 48, 501)
        self.assertIn("Unknown compression method 'br2'", resp.text)
        self.assertEqual(self.client.scalar("SELECT 3"), "3")

    def test_unknown_transfer_encoding(self):
        status, headers, _, closed = raw_exchange(self.server.port, http_request(
            "POST", "/", b"SELECT 1", [("Transfer-Encoding", "gzip, chunked")], content_length=False))
        self.assertEqual((status, headers["x-clickhouse-exception-code"], closed), (501, "48", True))
        self._still_serving()


class StreamingServerTest(ServerTestCase):
    flags = ("--stream", "--lz4-responses")

    def request_raw(self, sql: str, params: str = "", headers=()):
        return raw_exchange(self.server.port, http_request(
            "POST", "/?" + params, sql.encode(), headers))

    def test_large_select_streams_with_one_header(self):
        status, headers, chunks, _ = self.request_raw(
            "SELECT number AS n, toString(number) AS s FROM numbers(200000) "
            "SETTINGS max_block_size = 10000", f"default_format={RBWNAT}")
        self.assertEqual(status, 200)
        self.assertEqual(headers["transfer-encoding"], "chunked")
        self.assertEqual(len(headers["x-clickhouse-exception-tag"]), 16)
        self.assertGreater(len(chunks), 1)
        columns, rows = parse_rbwnat(b"".join(chunks))
        self.assertEqual(columns, [("n", "UInt64"), ("s", "String")])
        self.assertEqual(len(rows), 200000)
        self.assertEqual(rows[-1], (199999, b"199999"))

    def test_empty_result_still_has_the_header(self):
        resp = self.client.query("SELECT number FROM numbers(10) WHERE number > 100", default_format=RBWNAT)
        self.assertOk(resp)
        self.assertEqual(resp.body, varint(1) + rb_string("number") + rb_string("UInt64"))

    def test_mid_stream_exception_trailer(self):
        status, headers, chunks, closed = self.request_raw(
            "SELECT number, repeat('x', 200) FROM numbers(1000000) WHERE throwIf(number = 60000) = 0 "
            "SETTINGS max_block_size = 1000", "default_format=RowBinary")
        self.assertEqual(status, 200)
        tag = headers["x-clickhouse-exception-tag"]
        self.assertGreater(sum(len(c) for c in chunks[:-1]), 2_000_000)  # several MB before the error
        trailer = chunks[-1]  # the whole trailer is one chunk
        prefix = b"\r\n__exception__\r\n" + tag.encode() + b"\r\n"
        self.assertTrue(trailer.startswith(prefix), trailer[:80])
        suffix = f" {tag}\r\n__exception__\r\n".encode()
        self.assertTrue(trailer.endswith(suffix), trailer[-80:])
        message, _, length = trailer[len(prefix):-len(suffix)].rpartition(b"\n")
        self.assertEqual(int(length), len(message) + 1)
        self.assertRegex(message.decode(), r"^Code: 395\. DB::Exception: .*\(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO\) "
                                           r"\(version 26\.9\.2\.1 \(official build\)\)$")
        self.assertEqual(self.client.scalar("SELECT 'next'"), "next")

    def test_error_before_data_is_a_normal_error(self):
        resp = self.client.query("SELECT * FROM no_such_table_xyz", default_format=RBWNAT)
        self.assertError(resp, 60, 404)

    def test_wait_end_of_query_buffers(self):
        resp = self.client.query("SELECT number FROM numbers(100)", wait_end_of_query="1",
                                 default_format="RowBinary")
        self.assertOk(resp)
        self.assertEqual(resp.header("Content-Length"), "800")
        self.assertEqual(json.loads(resp.header("X-ClickHouse-Summary"))["read_rows"], "100")

    def test_lz4_responses(self):
        sql = "SELECT number, toString(number) FROM numbers(100000) SETTINGS max_block_size = 10000"
        plain = self.client.query(sql, default_format="RowBinary").body
        resp = self.client.request("POST", {"default_format": "RowBinary"}, sql.encode(),
                                   headers={"Accept-Encoding": "lz4"})
        self.assertOk(resp)
        self.assertEqual(resp.header("Content-Encoding"), "lz4")
        self.assertEqual(_decode_lz4_frames(resp.body), plain)
        self.assertLess(len(resp.body), len(plain))
        resp = self.client.request("POST", {"wait_end_of_query": "1"}, b"SELECT 1",
                                   headers={"Accept-Encoding": "lz4"})
        self.assertEqual(_decode_lz4_frames(resp.body), b"1\n")

    def test_lz4_mid_stream_exception_is_one_frame(self):
        status, headers, chunks, _ = self.request_raw(
            "SELECT number FROM numbers(1000000) WHERE throwIf(number = 500000) = 0 "
            "SETTINGS max_block_size = 10000", "default_format=RowBinary",
            headers=[("Accept-Encoding", "lz4")])
        self.assertEqual((status, headers["content-encoding"]), (200, "lz4"))
        last = lz4.frame.decompress(chunks[-1])
        self.assertTrue(last.endswith(f" {headers['x-clickhouse-exception-tag']}\r\n__exception__\r\n".encode()))
        self.assertIn(b"Code: 395. DB::Exception:", last)


class AuthTest(ServerTestCase):
    flags = ("--user", "alice", "--password", "s3cret")

    def setUp(self):
        self.client = self.server.client()

    def test_credentials(self):
        self.assertError(self.client.query("SELECT 1"), 516, 403)
        resp = self.client.request("POST", {}, b"SELECT 1",
                                   headers={"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "nope"})
        self.assertError(resp, 516, 403)
        self.assertIn("alice: Authentication failed", resp.text)
        resp = self.client.request("POST", {}, b"SELECT 1",
                                   headers={"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "s3cret"})
        self.assertEqual(resp.body, b"1\n")
        self.assertEqual(self.client.scalar("SELECT 2", user="alice", password="s3cret"), "2")
        import base64
        basic = base64.b64encode(b"alice:s3cret").decode()
        resp = self.client.request("POST", {}, b"SELECT 3", headers={"Authorization": f"Basic {basic}"})
        self.assertEqual(resp.body, b"3\n")
        self.assertEqual(self.client.request("GET", path="/ping").status, 200)


def _decode_lz4_frames(data: bytes) -> bytes:
    out = bytearray()
    while data:
        dec = lz4.frame.LZ4FrameDecompressor()
        out += dec.decompress(data)
        assert dec.eof, "truncated LZ4 frame"
        data = dec.unused_data
    return bytes(out)


if __name__ == "__main__":
    unittest.main()
