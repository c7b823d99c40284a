"""The ClickHouse HTTP interface on a threaded HTTP/1.1 server.

One thread per connection (keep-alive), one chDB connection per request (or per session).
Request bodies are consumed as they arrive: INSERT data goes straight into the engine's
streaming inserter, chunk by chunk, through optional Content-Encoding and native-frame
decoding. Results are sent whole (buffered mode) or chunk by chunk (--stream).
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import logging
import random
import socket
import string
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Iterator, Optional
from urllib.parse import parse_qsl

from . import compression, multipart, sql as sqlmod
from .engine import Engine, SessionManager
from .errors import ClickHouseError, from_engine

log = logging.getLogger("chdev")
access_log = logging.getLogger("chdev.access")  # one line per request, shown with -v

IDLE_TIMEOUT = 60  # seconds a keep-alive connection may sit idle between requests
BODY_TIMEOUT = 300  # seconds without progress while reading a body or writing a response
MAX_SQL_SIZE = 64 << 20  # SQL text (and multipart bodies) is held in memory; data streams
MAX_INSERT_HEADER = 1 << 20  # how far into a body to look for `INSERT ... FORMAT x`
DRAIN_LIMIT = 16 << 20  # bytes of an unread body to discard after an error to keep the connection
READ_PIECE = 256 << 10
SMALL_RESPONSE = 64 << 10  # responses up to this size go out in one write with their headers

# HTTP protocol parameters: never settings (ClickHouse HTTPHandler's reserved names).
PROTOCOL_PARAMS = frozenset((
    "query", "database", "default_format", "compress", "decompress", "user", "password",
    "quota_key", "query_id", "stacktrace", "role", "session_id", "session_timeout",
    "session_check", "close_session", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "default_database"))
# Settings that only steer the HTTP layer of a server; chDB has no HTTP layer.
HTTP_ONLY_SETTINGS = frozenset((
    "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "add_http_cors_header",
    "cancel_http_readonly_queries_on_client_close"))
# Statements a GET request (readonly) may run.
READONLY_KEYWORDS = frozenset((
    "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "SET", "USE"))
# Output formats whose per-chunk outputs concatenate into one valid result.
STREAMABLE_FORMATS = frozenset(f.lower() for f in (
    "RowBinary", "RowBinaryWithNamesAndTypes", "RowBinaryWithNames", "Native", "JSONEachRow",
    "JSONLines", "NDJSON", "JSONStringsEachRow", "JSONCompactEachRow",
    "JSONCompactStringsEachRow", "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "CSV",
    "TSKV", "RawBLOB"))
# Streamed formats that repeat their header in every chunk: strip it from chunks 2..N.
HEADER_FORMATS = {"rowbinarywithnamesandtypes": 2, "rowbinarywithnames": 1}

_CONTENT_TYPES = (
    ("tabseparated", "text/tab-separated-values; charset=UTF-8"),
    ("tsv", "text/tab-separated-values; charset=UTF-8"),
    ("csv", "text/csv; charset=UTF-8"),
    ("json", "application/json; charset=UTF-8"),
    ("xml", "application/xml; charset=UTF-8"),
    ("pretty", "text/plain; charset=UTF-8"),
    ("vertical", "text/plain; charset=UTF-8"),
    ("markdown", "text/markdown; charset=UTF-8"),
)


@dataclass
class Options:
    stream: bool = False
    lz4_responses: bool = False
    user: Optional[str] = None
    password: str = ""


class DevServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, options: Options):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.options = options
        self.engine: Optional[Engine] = None
        self.closing = False
        self._active = 0
        self._active_cv = threading.Condition()

    def get_request(self):
        sock, addr = super().get_request()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add about 40 ms to every small response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    def request_started(self) -> None:
        with self._active_cv:
            self._active += 1

    def request_finished(self) -> None:
        with self._active_cv:
            self._active -= 1
            self._active_cv.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for requests in flight to finish; False when some are still running."""
        deadline = time.monotonic() + timeout
        with self._active_cv:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._active_cv.wait(left)
        return True


class BodyReader:
    """The request body, read as it arrives (Content-Length or chunked).

    `chunks()` yields raw pieces; `drain()` discards the rest so the connection can be reused.
    `broken` means the framing is lost (bad chunk syntax, early EOF): the connection must close.
    """

    def __init__(self, rfile, length: Optional[int], chunked: bool,
                 error: Optional[ClickHouseError] = None):
        self._rfile = rfile
        self.length = length
        self.chunked = chunked
        self.error = error
        self.broken = error is not None
        self.done = error is None and not chunked and not length
        self.received = 0
        self._iter: Optional[Iterator[bytes]] = None

    @classmethod
    def from_headers(cls, headers, rfile) -> "BodyReader":
        te = headers.get_all("Transfer-Encoding")
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
            if codings != ["chunked"]:
                return cls(rfile, None, False, ClickHouseError(
                    "NOT_IMPLEMENTED", f"Unsupported Transfer-Encoding {', '.join(te)!r}: only "
                    f"'chunked' is supported"))
            return cls(rfile, None, True)
        values = headers.get_all("Content-Length") or []
        if not values:
            return cls(rfile, 0, False)
        distinct = {v.strip() for v in values}
        raw = values[0].strip()
        if len(distinct) > 1 or not raw.isdigit() or len(raw) > 18:
            return cls(rfile, None, False, ClickHouseError(
                "BAD_ARGUMENTS", f"Invalid Content-Length header: {', '.join(values)!r} "
                f"(expected one non-negative decimal integer)"))
        return cls(rfile, int(raw), False)

    def chunks(self) -> Iterator[bytes]:
        if self._iter is None:
            self._iter = self._read_chunked() if self.chunked else self._read_length()
        return self._iter

    def _fail(self, code: str, message: str) -> ClickHouseError:
        self.broken = True
        return ClickHouseError(code, message)

    def _read(self, n: int, exact: bool) -> bytes:
        try:
            data = self._rfile.read(n) if exact else self._rfile.read1(n)
        except TimeoutError:
            raise self._fail("SOCKET_TIMEOUT", f"Timeout ({BODY_TIMEOUT} s) while reading the "
                             f"request body after {self.received} bytes") from None
        except OSError as exc:
            raise self._fail("CANNOT_READ_ALL_DATA", f"Cannot read the request body: {exc}") from None
        if not data or (exact and len(data) < n):
            raise self._fail("CANNOT_READ_ALL_DATA",
                             f"The client closed the connection before the end of the request "
                             f"body ({self.received + len(data)} bytes received)")
        self.received += len(data)
        return data

    def _read_length(self) -> Iterator[bytes]:
        remaining = self.length or 0
        while remaining > 0:
            data = self._read(min(remaining, READ_PIECE), exact=False)
            remaining -= len(data)
            yield data
        self.done = True

    def _readline(self) -> bytes:
        try:
            line = self._rfile.readline(1026)
        except TimeoutError:
            raise self._fail("SOCKET_TIMEOUT", "Timeout while reading the chunked request body") from None
        except OSError as exc:
            raise self._fail("CANNOT_READ_ALL_DATA", f"Cannot read the request body: {exc}") from None
        if not line:
            raise self._fail("CANNOT_READ_ALL_DATA",
                             "The client closed the connection inside the chunked request body")
        if len(line) > 1024 or not line.endswith(b"\n"):
            raise self._fail("BAD_ARGUMENTS", "Malformed chunked request body: line too long")
        return line

    def _read_chunked(self) -> Iterator[bytes]:
        while True:
            line = self._readline()
            size_text = line.split(b";", 1)[0].strip()
            try:
                if not size_text or len(size_text) > 12:
                    raise ValueError
                size = int(size_text, 16)
            except ValueError:
                shown = line[:40].decode("latin-1").rstrip("\r\n")
                raise self._fail("BAD_ARGUMENTS",
                                 f"Malformed chunked request body: invalid chunk size line "
                                 f"{shown!r}") from None
            if size == 0:
                for _ in range(100):  # trailer fields, ignored
                    if self._readline() in (b"\r\n", b"\n"):
                        self.done = True
                        return
                raise self._fail("BAD_ARGUMENTS", "Malformed chunked request body: too many trailers")
            while size > 0:
                data = self._read(min(size, 1 << 20), exact=True)
                size -= len(data)
                yield data
            if self._readline() not in (b"\r\n", b"\n"):
                raise self._fail("BAD_ARGUMENTS",
                                 "Malformed chunked request body: chunk data not followed by CRLF")

    def read_all(self, limit: int, what: str = "request body") -> bytes:
        if self.length is not None and self.length > limit:
            self.broken = True  # we will not read it; the connection cannot be reused
            raise ClickHouseError(
                "QUERY_IS_TOO_LARGE",
                f"The {what} is too large: Content-Length {self.length} exceeds the dev "
                f"server's limit of {limit} bytes. Send data with INSERT ... FORMAT instead")
        out = bytearray()
        for piece in self.chunks():
            out += piece
            if len(out) > limit:
                self.broken = True
                raise ClickHouseError(
                    "QUERY_IS_TOO_LARGE",
                    f"The {what} is too large: more than {limit} bytes")
        return bytes(out)

    def drain(self, limit: int = DRAIN_LIMIT) -> bool:
        """Discard the unread body; True when the connection can carry another request."""
        if self.broken:
            return False
        if self.done:
            return True
        if self.length is not None and self.length - self.received > limit:
            return False
        try:
            for piece in self.chunks():
                limit -= len(piece)
                if limit < 0:
                    return False
        except ClickHouseError:
            return False
        return self.done


class _Request:
    """Everything parsed from one HTTP request before it reaches the engine."""

    def __init__(self, handler: "Handler", method: str, path: str, query_string: str):
        self.method = method
        self.path = path
        self.params: dict[str, str] = {}
        self.roles: list[str] = []
        for name, value in parse_qsl(query_string, keep_blank_values=True):
            self.add_param(name, value)
        self.headers = handler.headers
        self.query_id = ""
        self.sql_preview = ""

    def add_param(self, name: str, value: str) -> None:
        if name == "role":
            self.roles.append(value)
        else:
            self.params[name] = value

    def flag(self, name: str) -> bool:
        return self.params.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _summary(read_rows=0, read_bytes=0, written_rows=0, written_bytes=0, result_rows=0,
             result_bytes=0, elapsed_ns=0, total_rows_to_read=None) -> str:
    values = {
        "read_rows": read_rows, "read_bytes": read_bytes,
        "written_rows": written_rows, "written_bytes": written_bytes,
        "total_rows_to_read": read_rows if total_rows_to_read is None else total_rows_to_read,
        "result_rows": result_rows, "result_bytes": result_bytes, "elapsed_ns": elapsed_ns,
    }
    # The crate expects every value as a string, like the server sends them.
    return json.dumps({k: str(int(v)) for k, v in values.items()}, separators=(",", ":"))


def _content_type(fmt: str) -> str:
    low = fmt.lower()
    for prefix, ctype in _CONTENT_TYPES:
        if low.startswith(prefix):
            return ctype
    return "application/octet-stream"


def _read_varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _rowbinary_header_length(buf: bytes, strings_per_column: int) -> int:
    """Length of a RowBinaryWithNames[AndTypes] header: column count, then names (and types)."""
    count, pos = _read_varint(buf, 0)
    for _ in range(count * strings_per_column):
        size, pos = _read_varint(buf, pos)
        pos += size
    if pos > len(buf):
        raise ValueError("truncated header")
    return pos


def _exception_trailer(tag: str, err: ClickHouseError) -> bytes:
    """The mid-stream exception block a server writes after data (25.11+ format)."""
    message = (err.text() + "\n").encode()
    return (b"\r\n__exception__\r\n" + tag.encode() + b"\r\n" + message
            + f"{len(message)} {tag}\r\n__exception__\r\n".encode())


def _chunk(data) -> bytes:
    return b"%x\r\n" % len(data) + bytes(data) + b"\r\n"


class _ClientGone(Exception):
    """Writing to the client failed: it went away."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdev"
    sys_version = ""
    rbufsize = 1 << 16
    server: DevServer

    # -- plumbing ---------------------------------------------------------------------------

    def handle_one_request(self):
        self.connection.settimeout(IDLE_TIMEOUT)
        super().handle_one_request()

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_HEAD(self):
        path = self.path.partition("?")[0]
        if path in ("/", "/ping"):
            self._send(200, [("Content-Type", "text/html; charset=UTF-8")], b"Ok.\n", head_only=True)
        else:
            self._send(404, [("Content-Type", "text/plain; charset=UTF-8")], b"", head_only=True)

    def _write(self, data) -> None:
        try:
            self.wfile.write(data)
        except (OSError, ValueError) as exc:
            self.close_connection = True
            raise _ClientGone(str(exc)) from None

    def _head(self, status: int, headers: list[tuple[str, str]], length: Optional[int]) -> bytes:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                 f"Date: {self.date_time_string()}"]
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        else:
            lines.append("Connection: Keep-Alive")
            lines.append(f"Keep-Alive: timeout={IDLE_TIMEOUT}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, status: int, headers: list[tuple[str, str]], body, head_only=False) -> None:
        self._status = status
        head = self._head(status, headers, len(body))
        if head_only:
            self._write(head)
        elif len(body) <= SMALL_RESPONSE:
            self._write(head + bytes(body))
        else:
            self._write(head)
            self._write(body)

    def _base_headers(self, req: Optional[_Request]) -> list[tuple[str, str]]:
        headers = [("X-ClickHouse-Server-Display-Name", "chdev")]
        if req is not None and req.query_id:
            headers.append(("X-ClickHouse-Query-Id", req.query_id))
        engine = self.server.engine
        if engine is not None:
            headers.append(("X-ClickHouse-Timezone", engine.timezone))
        return headers

    def _send_error(self, err: ClickHouseError, req: Optional[_Request],
                    body: Optional[BodyReader]) -> None:
        # The body may be unread (early errors): discard it so the client, which may still be
        # sending, gets the response, or close the connection when that is not possible.
        if body is not None and not body.drain():
            self.close_connection = True
        headers = self._base_headers(req) + [
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("X-ClickHouse-Exception-Code", str(err.code)),
        ]
        self._error_text = err.text()
        self._send(err.status, headers, (err.text() + "\n").encode())

    # -- request entry --------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        started = time.monotonic()
        self._status = 0
        self._error_text = ""
        self._headers_sent = False
        self.connection.settimeout(BODY_TIMEOUT)
        path, _, query_string = self.path.partition("?")
        req: Optional[_Request] = None
        body: Optional[BodyReader] = None
        self.server.request_started()
        try:
            body = BodyReader.from_headers(self.headers, self.rfile)
            if body.error is not None:
                self.close_connection = True
                raise body.error
            if self.server.closing:
                self.close_connection = True
                raise ClickHouseError(236, "The dev server is shutting down", name="ABORTED")
            if path in ("/ping", "/replicas_status") and method == "GET":
                body.drain()
                self._send(200, [("Content-Type", "text/html; charset=UTF-8")], b"Ok.\n")
                return
            req = _Request(self, method, path, query_string)
            if method == "GET" and "query" not in req.params:
                body.drain()
                if path == "/":
                    self._send(200, [("Content-Type", "text/html; charset=UTF-8")], b"Ok.\n")
                else:
                    self._send(404, [("Content-Type", "text/plain; charset=UTF-8")],
                               f"There is no handle {path}\n\nUse / or /ping for health checks.\n"
                               f"Send queries with POST or GET /?query=...\n".encode())
                return
            self._handle_query(req, body)
            if not body.done and not body.drain():
                self.close_connection = True
        except ClickHouseError as err:
            self._respond_error(err, req, body)
        except _ClientGone:
            self.close_connection = True
        except Exception as exc:  # a bug: report it ClickHouse-style and keep serving
            log.exception("internal error while serving %s %s", method, path)
            self.close_connection = True
            self._respond_error(ClickHouseError(
                "STD_EXCEPTION", f"Internal error in the dev server: {type(exc).__name__}: {exc}"),
                req, body)
        finally:
            self.server.request_finished()
            self._log_request(method, path, req, started)

    def _respond_error(self, err, req, body) -> None:
        if self._headers_sent:
            self.close_connection = True
            return
        try:
            self._send_error(err, req, body)
        except _ClientGone:
            pass

    def _log_request(self, method: str, path: str, req: Optional[_Request], started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        ms = (time.monotonic() - started) * 1000
        preview = req.sql_preview if req is not None else ""
        access_log.info("%s %s %s %.1f ms %s%s", method, path, self._status or "-", ms, preview,
                        f" -> {self._error_text}" if self._error_text else "")

    # -- the query path -------------------------------------------------------------------

    def _handle_query(self, req: _Request, body: BodyReader) -> None:
        engine = self.server.engine
        decoder = compression.body_decoder(self.headers.get("Content-Encoding", ""))
        self._authenticate(req)

        ctype = self.headers.get("Content-Type", "")
        if _method_has_body(req) and ctype.lower().startswith("multipart/form-data"):
            raw = body.read_all(MAX_SQL_SIZE, "multipart/form-data body")
            if decoder is not None:
                raw = b"".join(_decode_all([raw], decoder))
            for name, value in multipart.parse(raw, ctype):
                req.add_param(name, value)
            data: Iterator[bytes] = iter(())
        else:
            data = body.chunks() if _method_has_body(req) else iter(())
            if decoder is not None:
                data = _decode_all(data, decoder)
            if req.flag("decompress"):
                data = _decode_all(data, compression.NativeFrameDecoder())

        req.query_id = req.params.get("query_id") or str(uuid.uuid4())
        settings, query_params = self._settings(req, engine)
        url_query = req.params.get("query")
        if url_query is not None:
            split = sqlmod.split_insert(url_query + "\n", final=True)
            if isinstance(split, sqlmod.InsertSplit):
                rest = (url_query + "\n")[split.data_start:].encode()
                stream = itertools.chain([rest], data) if rest else data
                return self._insert(req, settings, split.sql, split.fmt, stream)
            _check_sql_length(body)
            tail = _read_sql(data)
            sql_text = url_query + ("\n" + tail if tail else "")
        else:
            split, head, data = _peek_insert(data)
            if isinstance(split, sqlmod.InsertSplit):
                stream = itertools.chain([head[split.data_start:]], data)
                return self._insert(req, settings, _utf8(split.sql), split.fmt, stream)
            _check_sql_length(body)
            sql_text = _read_sql(itertools.chain([head], data))
        self._query(req, settings, query_params, sql_text)

    def _authenticate(self, req: _Request) -> None:
        opts = self.server.options
        if opts.user is None:
            return
        user = self.headers.get("X-ClickHouse-User") or req.params.get("user")
        key = self.headers.get("X-ClickHouse-Key") or req.params.get("password")
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                basic_user, _, basic_key = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                basic_user, basic_key = "", ""
            user = user or basic_user
            key = key if key is not None else basic_key
        elif auth[:7].lower() == "bearer ":
            raise ClickHouseError(
                "AUTHENTICATION_FAILED",
                "JWT (Authorization: Bearer) authentication is not supported by the dev server; "
                "use a user name and password")
        user = user or "default"
        key = key or ""
        ok_user = hmac.compare_digest(user.encode(), opts.user.encode())
        ok_key = hmac.compare_digest(key.encode(), opts.password.encode())
        if not (ok_user and ok_key):
            raise ClickHouseError(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                f"with such name")

    def _settings(self, req: _Request, engine: Engine) -> tuple[dict[str, str], dict[str, str]]:
        settings: dict[str, str] = {}
        params: dict[str, str] = {}
        for name, value in req.params.items():
            if name.startswith("param_"):
                params[name[6:]] = value
            elif name in PROTOCOL_PARAMS or name in HTTP_ONLY_SETTINGS or name.startswith("http_"):
                continue
            elif name in engine.settings:
                settings[name] = value
            else:
                raise ClickHouseError("UNKNOWN_SETTING", f"Unknown setting '{name}'")
        return settings, params

    @staticmethod
    def _is_readonly(req: _Request, settings: dict[str, str]) -> bool:
        """GET requests and requests with readonly=1|2 may only read."""
        return req.method == "GET" or settings.get("readonly", "0").strip() not in ("", "0")

    def _prepare(self, conn, req: _Request, settings: dict[str, str], in_session: bool) -> None:
        """USE the request's database and SET its settings on the request's connection."""
        settings = dict(settings)
        readonly = settings.pop("readonly", None)
        # A connection cannot leave readonly mode again, so a session's connection never gets
        # it (the statement check in _query/_insert enforces it); elsewhere it is set last,
        # after the other settings, which readonly=1 would refuse.
        if not in_session and self._is_readonly(req, {"readonly": readonly or "0"}):
            settings["readonly"] = "1" if readonly == "1" else "2"
        statements = []
        database = req.params.get("database") or self.headers.get("X-ClickHouse-Database")
        if database:
            statements.append("USE " + sqlmod.quote_identifier(database))
        if settings:
            statements.append("SET " + ", ".join(
                f"{name} = {sqlmod.quote_string(value)}" for name, value in settings.items()))
        if statements:
            try:
                conn.query("; ".join(statements), "TabSeparated")
            except Exception as exc:
                raise from_engine(exc) from None

    def _session_args(self, req: _Request) -> dict:
        session_id = req.params.get("session_id") or None
        if session_id is None:
            return {"session_id": None}
        timeout = None
        if "session_timeout" in req.params:
            timeout = SessionManager.parse_timeout(req.params["session_timeout"])
        return {"session_id": session_id, "check": req.flag("session_check"),
                "timeout": timeout, "close": req.flag("close_session")}

    # -- INSERT ... FORMAT: stream the body into the engine ------------------------------------

    def _insert(self, req: _Request, settings, sql: str, fmt: str, data: Iterable[bytes]) -> None:
        req.sql_preview = _preview(sql)
        sqlmod.check_single_statement(sql)
        if self._is_readonly(req, settings):
            raise _readonly_error()
        session = self._session_args(req)
        started = time.monotonic()
        with self.server.engine.connection(**session) as conn:
            self._prepare(conn, req, settings, session["session_id"] is not None)
            try:
                inserter = conn.send_insert(sql, fmt)
            except Exception as exc:
                raise from_engine(exc) from None
            try:
                for piece in data:
                    if piece:
                        inserter.append(piece)
                result = inserter.finish()
            except ClickHouseError:
                _cancel_quietly(inserter)
                raise
            except Exception as exc:
                _cancel_quietly(inserter)
                raise from_engine(exc) from None
        summary = _summary(written_rows=result.rows_written, written_bytes=result.bytes_written,
                           total_rows_to_read=0,
                           elapsed_ns=(time.monotonic() - started) * 1e9)
        headers = self._base_headers(req) + [
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("X-ClickHouse-Summary", summary)]
        self._send(200, headers, b"")

    # -- queries ----------------------------------------------------------------------------------

    def _query(self, req: _Request, settings, params, sql_text) -> None:
        if isinstance(sql_text, bytes):
            sql_query = sql_text
            sql_text = sql_text.decode("latin-1")  # for analysis only; offsets are what matter
        else:
            sql_query = sql_text
        req.sql_preview = _preview(sql_text)
        if not sql_text.strip():
            raise ClickHouseError("SYNTAX_ERROR", "Empty query")
        sqlmod.check_single_statement(sql_text)
        keyword = sqlmod.leading_keyword(sql_text)
        if self._is_readonly(req, settings) and keyword not in READONLY_KEYWORDS:
            raise _readonly_error()
        fmt = (sqlmod.output_format(sql_text)
               or req.params.get("default_format")
               or self.headers.get("X-ClickHouse-Format")
               or "TabSeparated")
        requested_fmt = (req.params.get("default_format")
                         or self.headers.get("X-ClickHouse-Format") or "TabSeparated")
        encoding = self._response_encoding(req)
        stream = (self.server.options.stream and keyword in ("SELECT", "WITH")
                  and not req.flag("wait_end_of_query") and fmt.lower() in STREAMABLE_FORMATS
                  and self.request_version == "HTTP/1.1")
        session = self._session_args(req)
        with self.server.engine.connection(**session) as conn:
            self._prepare(conn, req, settings, session["session_id"] is not None)
            if stream:
                self._stream(req, conn, sql_query, requested_fmt, fmt, params, encoding)
            else:
                self._buffered(req, conn, sql_query, requested_fmt, fmt, params, encoding)

    def _response_encoding(self, req: _Request) -> Optional[str]:
        if req.flag("compress"):
            return "native"  # older clients ask for native compressed blocks with compress=1
        if self.server.options.lz4_responses:
            accepted = {part.split(";")[0].strip().lower()
                        for part in self.headers.get("Accept-Encoding", "").split(",")}
            if "lz4" in accepted:
                return "lz4"
        return None

    @staticmethod
    def _encode(data, encoding: Optional[str]):
        if encoding == "lz4":
            return compression.lz4_frame(data)
        if encoding == "native":
            return compression.encode_native_blocks(data)
        return data

    def _result_headers(self, req: _Request, fmt: str, encoding: Optional[str], summary: str):
        headers = self._base_headers(req) + [
            ("Content-Type", _content_type(fmt)),
            ("X-ClickHouse-Format", fmt),
            ("X-ClickHouse-Summary", summary)]
        if encoding == "lz4":
            headers.append(("Content-Encoding", "lz4"))
        return headers

    def _buffered(self, req, conn, sql, requested_fmt, fmt, params, encoding) -> None:
        try:
            result = conn.query(sql, requested_fmt, params=params)
        except Exception as exc:
            raise from_engine(exc) from None
        holder = result.get_memview()
        data = holder.view()  # zero-copy view of the result; `result` keeps it alive
        summary = _summary(
            read_rows=result.storage_rows_read(), read_bytes=result.storage_bytes_read(),
            written_rows=result.rows_written(), written_bytes=result.bytes_written(),
            result_rows=result.rows_read(), result_bytes=result.bytes_read(),
            elapsed_ns=result.elapsed() * 1e9)
        body = self._encode(data, encoding) if len(data) else b""
        self._send(200, self._result_headers(req, fmt, encoding if len(data) else None, summary), body)
        del data, holder, result

    def _stream(self, req, conn, sql, requested_fmt, fmt, params, encoding) -> None:
        try:
            stream = conn.send_query(sql, requested_fmt, params=params)
        except Exception as exc:
            raise from_engine(exc) from None
        try:
            self._send_stream(req, stream, conn, sql, requested_fmt, fmt, params, encoding)
        finally:
            # An open stream blanks every later result on its connection (a session's, too).
            try:
                stream.cancel()  # a no-op once the stream is exhausted
            except Exception:
                log.debug("cancelling a stream failed", exc_info=True)

    def _send_stream(self, req, stream, conn, sql, requested_fmt, fmt, params, encoding) -> None:
        try:
            first = stream.fetch()
        except Exception as exc:
            raise from_engine(exc) from None
        if first is None:
            # An empty stream sends nothing, not even the header clients need: run it buffered.
            return self._buffered(req, conn, sql, requested_fmt, fmt, params, encoding)
        tag = "".join(random.choices(string.ascii_lowercase, k=16))
        headers = self._result_headers(req, fmt, encoding, _summary())  # totals unknown yet
        headers.append(("X-ClickHouse-Exception-Tag", tag))
        self._status = 200
        self._write(self._head(200, headers, None))
        self._headers_sent = True
        strings_per_column = HEADER_FORMATS.get(fmt.lower())
        header = None
        chunk = first
        while chunk is not None:
            data = chunk.bytes()
            if strings_per_column:
                if header is None:
                    try:
                        header = data[:_rowbinary_header_length(data, strings_per_column)]
                    except ValueError:
                        strings_per_column = None
                elif data.startswith(header):
                    data = data[len(header):]
            if data:
                self._write(_chunk(self._encode(data, encoding)))
            try:
                chunk = stream.fetch()
            except Exception as exc:
                err = from_engine(exc)
                self._error_text = err.text()
                # One chunk (one LZ4 frame) for the whole trailer: the client inspects the end
                # of each decoded chunk.
                self._write(_chunk(self._encode(_exception_trailer(tag, err), encoding)))
                break
        self._write(b"0\r\n\r\n")  # framing stays intact, so keep-alive is fine


def _method_has_body(req: _Request) -> bool:
    return req.method != "GET"


def _decode_all(pieces: Iterable[bytes], decoder) -> Iterator[bytes]:
    for piece in pieces:
        yield from decoder.feed(piece)
    decoder.finish()


def _peek_insert(data: Iterator[bytes]):
    """Read just enough of a body to tell whether it starts with `INSERT ... FORMAT x`."""
    head = bytearray()
    for piece in data:
        head += piece
        split = sqlmod.split_insert(head.decode("latin-1"), final=False)
        if split != sqlmod.NEED_MORE or len(head) > MAX_INSERT_HEADER:
            return split, bytes(head), data
    return sqlmod.split_insert(head.decode("latin-1"), final=True), bytes(head), data


def _check_sql_length(body: BodyReader) -> None:
    """Refuse an SQL body announced as too large before waiting for it to arrive."""
    if body.length is not None and body.length > MAX_SQL_SIZE:
        body.broken = True  # we will not read it; the connection cannot be reused
        raise ClickHouseError(
            "QUERY_IS_TOO_LARGE",
            f"The query text is too large: Content-Length {body.length} exceeds the dev "
            f"server's limit of {MAX_SQL_SIZE} bytes; send data with INSERT ... FORMAT instead")


def _read_sql(pieces: Iterable[bytes]):
    """The rest of the SQL text; str when it is UTF-8, else the raw bytes for the engine."""
    out = bytearray()
    for piece in pieces:
        out += piece
        if len(out) > MAX_SQL_SIZE:
            raise ClickHouseError(
                "QUERY_IS_TOO_LARGE",
                f"The query text is larger than the dev server's limit of {MAX_SQL_SIZE} bytes; "
                f"send data with INSERT ... FORMAT instead")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(out)


def _utf8(latin1_text: str) -> str:
    raw = latin1_text.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ClickHouseError("BAD_ARGUMENTS", "The INSERT statement is not valid UTF-8") from None


def _preview(sql: str) -> str:
    text = " ".join(sql[:200].split())
    return text[:120] + ("..." if len(text) > 120 else "")


def _readonly_error() -> ClickHouseError:
    return ClickHouseError(
        "READONLY", "default: Cannot execute query in readonly mode. "
        "GET requests and requests with readonly=1|2 may only read; use POST")


def _cancel_quietly(inserter) -> None:
    try:
        inserter.cancel()
    except Exception:
        log.debug("cancelling an insert failed", exc_info=True)
