"""Unit tests of the pieces that need no server: SQL routing, frames, multipart, errors."""

import os
import sys
import unittest
import zlib

import lz4.frame

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chdev import compression, multipart, sql  # noqa: E402
from chdev.errors import ClickHouseError, from_engine  # noqa: E402
from chdev_testlib import native_frame  # noqa: E402


class SingleStatementTest(unittest.TestCase):
    def test_accepts_one_statement(self):
        for text in ["SELECT 1", "SELECT 1;", "SELECT 1;  \n", "SELECT ';'", 'SELECT ";" AS x',
                     "SELECT `a;b` FROM t", "SELECT 1 -- ;\n", "SELECT 1; -- trailing comment",
                     "SELECT 1 /* ; /* nested ; */ ; */", "SELECT $$;$$", "SELECT $tag$ ; $tag$",
                     "SELECT 'it''s;'", "SELECT 'a\\';'", "SELECT 1 # comment ;", "SELECT 1;;",
                     "INSERT INTO t VALUES ('a;b', 1)", "SELECT a$b FROM t"]:
            with self.subTest(text=text):
                sql.check_single_statement(text)

    def test_rejects_two_statements(self):
        for text in ["SELECT 1; SELECT 2", "SELECT ';'; SELECT 2", "SELECT 1; /* c */ DROP TABLE t",
                     "CREATE TABLE a (x UInt8) ENGINE=Memory;\nCREATE TABLE b (x UInt8) ENGINE=Memory;"]:
            with self.subTest(text=text):
                with self.assertRaises(ClickHouseError) as ctx:
                    sql.check_single_statement(text)
                self.assertEqual(ctx.exception.code, 62)
                self.assertIn("Multi-statements are not allowed", ctx.exception.text())

    def test_unterminated_string_is_left_to_the_engine(self):
        sql.check_single_statement("SELECT 'abc; SELECT 2")


class FormatAndKeywordTest(unittest.TestCase):
    def test_output_format(self):
        cases = {
            "SELECT 1 FORMAT JSONEachRow": "JSONEachRow",
            "SELECT 1 FORMAT JSON;": "JSON",
            "SELECT 1 FORMAT `Native`": "Native",
            "SELECT 1 AS format": None,
            "SELECT format FROM t": None,
            "SELECT format('{}', 1)": None,
            "SELECT 1 FORMAT CSV SETTINGS max_threads = 1": "CSV",
            "SELECT (SELECT 1 FORMAT TSV)": None,
            "SELECT 'FORMAT JSON'": None,
            "SELECT 1 -- FORMAT JSON": None,
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                self.assertEqual(sql.output_format(text), expected)

    def test_leading_keyword(self):
        self.assertEqual(sql.leading_keyword("  -- c\n/* x */ select 1"), "SELECT")
        self.assertEqual(sql.leading_keyword("(SELECT 1) UNION ALL (SELECT 2)"), "SELECT")
        self.assertEqual(sql.leading_keyword("with x as (select 1) select * from x"), "WITH")
        self.assertEqual(sql.leading_keyword(""), "")


class SplitInsertTest(unittest.TestCase):
    def test_url_query_form(self):
        text = "INSERT INTO `t`(`a`,`b`) FORMAT RowBinaryWithNamesAndTypes\n"
        split = sql.split_insert(text, final=True)
        self.assertEqual(split, sql.InsertSplit("INSERT INTO `t`(`a`,`b`)",
                                                "RowBinaryWithNamesAndTypes", len(text)))

    def test_body_form_with_data(self):
        text = "INSERT INTO t FORMAT TSV \r\n1\ta\n"
        split = sql.split_insert(text, final=False)
        self.assertEqual(split.sql, "INSERT INTO t")
        self.assertEqual(text[split.data_start:], "1\ta\n")

    def test_settings_before_and_after_format(self):
        split = sql.split_insert("INSERT INTO t SETTINGS async_insert=0 FORMAT CSV\n1\n", final=True)
        self.assertEqual(split.sql, "INSERT INTO t SETTINGS async_insert=0")
        text = "INSERT INTO t FORMAT CSV SETTINGS format_csv_delimiter = ';' 1;2\n"
        split = sql.split_insert(text, final=True)
        self.assertEqual(split.fmt, "CSV")
        self.assertEqual(split.sql, "INSERT INTO t SETTINGS format_csv_delimiter = ';'")
        self.assertEqual(text[split.data_start:], "1;2\n")

    def test_not_an_insert_with_data(self):
        for text in ["SELECT 1", "INSERT INTO t VALUES (1)", "INSERT INTO t SELECT 1",
                     "INSERT INTO t (a) WITH 1 AS x SELECT x",
                     "INSERT INTO FUNCTION file('x', 'TSV', 'a UInt8') VALUES (1)"]:
            with self.subTest(text=text):
                self.assertIsNone(sql.split_insert(text, final=True))

    def test_needs_more_input(self):
        for text in ["", "INS", "INSERT INTO t FORM", "INSERT INTO t FORMAT Row",
                     "INSERT INTO t FORMAT TSV"]:
            with self.subTest(text=text):
                self.assertEqual(sql.split_insert(text, final=False), sql.NEED_MORE)

    def test_format_inside_strings_and_parens(self):
        text = "INSERT INTO FUNCTION file('FORMAT x', 'TSV') FORMAT TSV\n1\n"
        split = sql.split_insert(text, final=True)
        self.assertEqual(split.sql, "INSERT INTO FUNCTION file('FORMAT x', 'TSV')")


class NativeFrameTest(unittest.TestCase):
    def test_crate_vector(self):
        # clickhouse-rs `it_compresses`: the high half of CityHash128 comes first on the wire.
        source = bytes([1, 0, 2, 255, 255, 255, 255, 0, 1, 1, 1, 115, 6, 83, 116, 114, 105, 110,
                        103, 3, 97, 98, 99])
        expected = bytes([245, 5, 222, 235, 225, 158, 59, 108, 225, 31, 65, 215, 66, 66, 36, 92,
                          130, 34, 0, 0, 0, 23, 0, 0, 0, 240, 8, 1, 0, 2, 255, 255, 255, 255, 0,
                          1, 1, 1, 115, 6, 83, 116, 114, 105, 110, 103, 3, 97, 98, 99])
        self.assertEqual(compression.encode_native_frame(source), expected)
        self.assertEqual(compression.NativeFrameDecoder().feed(expected), [source])

    def test_frames_split_anywhere(self):
        blocks = [os.urandom(1000) + b"x" * 5000, b"", b"abc" * 70000]
        stream = b"".join(native_frame(b) for b in blocks) + native_frame(b"raw", method=0x02)
        for step in (1, 7, 4096, len(stream)):
            dec = compression.NativeFrameDecoder()
            out = []
            for i in range(0, len(stream), step):
                out += dec.feed(stream[i:i + step])
            dec.finish()
            self.assertEqual(b"".join(out), b"".join(blocks) + b"raw")

    def test_errors(self):
        cases = [
            (native_frame(b"hello" * 100, corrupt=True), 40),
            (native_frame(b"hello", method=0x42), 89),
        ]
        for data, code in cases:
            with self.assertRaises(ClickHouseError) as ctx:
                compression.NativeFrameDecoder().feed(data)
            self.assertEqual(ctx.exception.code, code)
        dec = compression.NativeFrameDecoder()
        dec.feed(native_frame(b"hello" * 100)[:-3])
        with self.assertRaises(ClickHouseError) as ctx:
            dec.finish()
        self.assertEqual(ctx.exception.code, 32)


class ContentEncodingTest(unittest.TestCase):
    def _roundtrip(self, encoding, data):
        dec = compression.body_decoder(encoding)
        out = []
        for i in range(0, len(data), 100):
            out += dec.feed(data[i:i + 100])
        dec.finish()
        return b"".join(out)

    def test_gzip_deflate_lz4(self):
        payload = b"1\thello\n" * 1000
        gz = zlib.compressobj(wbits=31)
        gzipped = gz.compress(payload) + gz.flush()
        self.assertEqual(self._roundtrip("gzip", gzipped + gzipped), payload * 2)
        self.assertEqual(self._roundtrip("deflate", zlib.compress(payload)), payload)
        frames = lz4.frame.compress(payload) + lz4.frame.compress(b"tail")
        self.assertEqual(self._roundtrip("lz4", frames), payload + b"tail")
        self.assertIsNone(compression.body_decoder(""))

    def test_unknown_and_truncated(self):
        with self.assertRaises(ClickHouseError) as ctx:
            compression.body_decoder("br2")
        self.assertEqual(ctx.exception.code, 48)
        dec = compression.body_decoder("lz4")
        dec.feed(lz4.frame.compress(b"x" * 10000)[:-5])
        with self.assertRaises(ClickHouseError):
            dec.finish()


class MultipartTest(unittest.TestCase):
    def test_fields_byte_for_byte(self):
        body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nSELECT 1\r\n"
                b"--XyZ\r\nContent-Disposition: form-data; name=\"param_s\"\r\n\r\na\\\t\r\n\\\nb\r\n"
                b"--XyZ--")
        fields = multipart.parse(body, 'multipart/form-data; boundary="XyZ"')
        self.assertEqual(fields, [("query", "SELECT 1"), ("param_s", "a\\\t\r\n\\\nb")])

    def test_malformed(self):
        for body, ctype in [(b"not multipart", "multipart/form-data; boundary=abc"),
                            (b"--abc\r\nno headers", "multipart/form-data; boundary=abc"),
                            (b"--abc\r\nContent-Disposition: form-data; name=q\r\n\r\nx",
                             "multipart/form-data; boundary=abc"),
                            (b"", "multipart/form-data")]:
            with self.subTest(body=body):
                with self.assertRaises(ClickHouseError) as ctx:
                    multipart.parse(body, ctype)
                self.assertEqual(ctx.exception.code, 36)


class EngineErrorTextTest(unittest.TestCase):
    def test_nested_and_prefixed(self):
        err = from_engine(RuntimeError(
            "Code: 73. DB::Exception: Code: 73. DB::Exception: Code: 73. DB::Exception: Unknown "
            "format Foo. (UNKNOWN_FORMAT) (version 26.9.2.1). (UNKNOWN_FORMAT) (version 26.9.2.1)."
            " (UNKNOWN_FORMAT)"))
        self.assertEqual((err.code, err.name, err.status), (73, "UNKNOWN_FORMAT", 404))
        self.assertTrue(err.text().startswith("Code: 73. DB::Exception: Unknown format Foo. "
                                              "(UNKNOWN_FORMAT) (version "))
        err = from_engine(RuntimeError("Streaming query failed: Code: 395. DB::Exception: Value "
                                       "passed to 'throwIf' function is non-zero. "
                                       "(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)"))
        self.assertEqual(err.code, 395)
        self.assertTrue(err.text().startswith("Code: 395. DB::Exception: Value passed"))

    def test_statuses(self):
        self.assertEqual(ClickHouseError("SYNTAX_ERROR", "x").status, 400)
        self.assertEqual(ClickHouseError("AUTHENTICATION_FAILED", "x").status, 403)
        self.assertEqual(ClickHouseError("UNKNOWN_SETTING", "x").status, 404)
        self.assertEqual(ClickHouseError("NOT_IMPLEMENTED", "x").status, 501)
        self.assertEqual(ClickHouseError("CHECKSUM_DOESNT_MATCH", "x").status, 500)


if __name__ == "__main__":
    unittest.main()
