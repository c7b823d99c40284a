"""Helpers for the dev server tests: a server process, an HTTP client and wire encoders.

The client speaks to the server the way the Rust `clickhouse` crate 0.15.3 does: POST with the
SQL as body, settings as URL parameters, chunked INSERT bodies, multipart/form-data for
server-side parameters.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Iterable, Optional
from urllib.parse import urlencode

import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

HERE = os.path.dirname(os.path.abspath(__file__))
DEV_SERVER_DIR = os.path.dirname(HERE)
ENTRY = os.path.join(DEV_SERVER_DIR, "chdev-server.py")
VERSION = "26.9.2.1"
ERROR_BODY_RE = re.compile(
    r"^Code: (\d+)\. DB::Exception: .+ \(([A-Z][A-Z0-9_]*)\) "
    r"\(version " + re.escape(VERSION) + r" \(official build\)\)\n$", re.S)


class ServerProcess:
    """A dev server subprocess on a free port (found through --port-file)."""

    def __init__(self, path: Optional[str] = None, *flags: str):
        self.owns_path = path is None
        self.path = path or tempfile.mkdtemp(prefix="chdev-test-")
        self.flags = list(flags)
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self._stderr = None
        self._final_stderr = ""
        self.port_file = ""

    def start(self, wait: bool = True, timeout: float = 30.0) -> "ServerProcess":
        fd, self.port_file = tempfile.mkstemp(prefix="chdev-port-")
        os.close(fd)
        os.unlink(self.port_file)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, ENTRY, "--path", self.path, "--port", "0",
             "--port-file", self.port_file, *self.flags],
            stdout=subprocess.DEVNULL, stderr=self._stderr)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dev server exited with {self.proc.returncode}: {self.stderr()}")
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return
            time.sleep(0.02)
        raise RuntimeError(f"dev server did not start within {timeout} s: {self.stderr()}")

    def stderr(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return self._final_stderr
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def client(self) -> "Client":
        return Client(self.port)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        if self._stderr is not None and not self._stderr.closed:
            self._final_stderr = self.stderr()
            self._stderr.close()
        if self.port_file and os.path.exists(self.port_file):
            os.unlink(self.port_file)  # left behind when the server was killed
        if self.owns_path:
            shutil.rmtree(self.path, ignore_errors=True)


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:300]!r})"


class Client:
    """Keep-alive HTTP/1.1 client (one connection, reopened when the server closes it)."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.port = port
        self.timeout = timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, params: Optional[dict] = None, body=None,
                headers: Optional[dict] = None, path: str = "/", chunked: bool = False) -> Response:
        url = path + ("?" + urlencode(params) if params else "")
        headers = dict(headers or {})
        headers.setdefault("User-Agent", "clickhouse-rs/0.15.3 (lv:rust/1.95, os:linux)")
        conn = self._connection()
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            conn.request(method, url, body=iter(body), headers=headers, encode_chunked=True)
        else:
            conn.request(method, url, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.close()
        return Response(resp.status, resp.headers, data)

    def query(self, sql: str, **params) -> Response:
        return self.request("POST", params, sql.encode())

    def ok(self, sql: str, **params) -> bytes:
        """Run sql and return the body; fail loudly on an error response."""
        resp = self.query(sql, **params)
        if resp.status != 200:
            raise AssertionError(f"{sql!r} failed: {resp.status} {resp.text}")
        return resp.body

    def scalar(self, sql: str, **params) -> str:
        return self.ok(sql, **params).decode().strip()

    def insert(self, table_sql: str, columns: list[tuple[str, str]], rows_rb: bytes,
               chunk_size: int = 256 << 10, compress: bool = False, **params) -> Response:
        """An INSERT exactly like the crate's: query in the URL, chunked RowBinaryWithNamesAndTypes."""
        cols = ",".join(f"`{name}`" for name, _ in columns)
        params = {"query": f"INSERT INTO {table_sql}({cols}) FORMAT RowBinaryWithNamesAndTypes",
                  **params}
        data = rbwnat_header(columns) + rows_rb
        if compress:
            params["decompress"] = "1"
            pieces = [native_frame(data[i:i + chunk_size]) for i in range(0, len(data), chunk_size)]
        else:
            pieces = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
        return self.request("POST", params, pieces, chunked=True)


def new_database(client: Client, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    client.ok(f"CREATE DATABASE {name}")
    return name


# --- RowBinary ---------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(value) -> bytes:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return varint(len(raw)) + raw


def rbwnat_header(columns: list[tuple[str, str]]) -> bytes:
    return (varint(len(columns)) + b"".join(rb_string(n) for n, _ in columns)
            + b"".join(rb_string(t) for _, t in columns))


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


_FIXED = {"UInt8": "<B", "UInt16": "<H", "UInt32": "<I", "UInt64": "<Q", "Int8": "<b",
          "Int16": "<h", "Int32": "<i", "Int64": "<q", "Float32": "<f", "Float64": "<d"}


def _read_value(buf: bytes, pos: int, typ: str):
    if typ in _FIXED:
        fmt = _FIXED[typ]
        return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)
    if typ == "String":
        n, pos = _read_varint(buf, pos)
        return bytes(buf[pos:pos + n]), pos + n
    if typ.startswith("Nullable("):
        if buf[pos]:
            return None, pos + 1
        return _read_value(buf, pos + 1, typ[9:-1])
    if typ.startswith("Array("):
        n, pos = _read_varint(buf, pos)
        items = []
        for _ in range(n):
            item, pos = _read_value(buf, pos, typ[6:-1])
            items.append(item)
        return items, pos
    raise ValueError(f"test decoder does not know type {typ}")


def parse_rbwnat(buf: bytes) -> tuple[list[tuple[str, str]], list[tuple]]:
    """Decode a RowBinaryWithNamesAndTypes body (the simple types the tests use)."""
    count, pos = _read_varint(buf, 0)
    names, types = [], []
    for target in (names, types):
        for _ in range(count):
            value, pos = _read_value(buf, pos, "String")
            target.append(value.decode())
    rows = []
    while pos < len(buf):
        row = []
        for typ in types:
            value, pos = _read_value(buf, pos, typ)
            row.append(value)
        rows.append(tuple(row))
    return list(zip(names, types)), rows


# --- native compressed frames --------------------------------------------------------------------

def native_frame(data: bytes, method: int = 0x82, corrupt: bool = False) -> bytes:
    """[CityHash128: high u64, low u64][method][compressed size][uncompressed size][payload]."""
    payload = lz4.block.compress(data, store_size=False) if method == 0x82 else data
    header = struct.pack("<BII", method, 9 + len(payload), len(data))
    h = CityHash128(header + payload)
    checksum = struct.pack("<QQ", h >> 64, h & ((1 << 64) - 1))
    if corrupt:
        checksum = bytes([checksum[0] ^ 0xFF]) + checksum[1:]
    return checksum + header + payload


def decode_native_frames(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(data):
        method, size, raw = struct.unpack_from("<BII", data, pos + 16)
        frame = data[pos + 16:pos + 16 + size]
        h = CityHash128(frame)
        assert data[pos:pos + 16] == struct.pack("<QQ", h >> 64, h & ((1 << 64) - 1))
        out += lz4.block.decompress(frame[9:], uncompressed_size=raw) if method == 0x82 else frame[9:]
        pos += 16 + size
    return bytes(out)


# --- raw HTTP, to see chunk boundaries and to send malformed requests ------------------------------

def raw_exchange(port: int, request: bytes, timeout: float = 30.0) -> tuple[int, dict, list[bytes], bool]:
    """Send raw bytes; return (status, headers, body chunks, connection_closed).

    Chunked bodies are returned chunk by chunk, exactly as framed by the server.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        f = sock.makefile("rb")
        status_line = f.readline()
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = f.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        chunks = []
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(f.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    f.readline()
                    break
                chunks.append(f.read(size))
                assert f.read(2) == b"\r\n"
        else:
            n = int(headers.get("content-length", "0"))
            chunks.append(f.read(n))
        closed = headers.get("connection", "").lower() == "close"
        return status, headers, chunks, closed


def http_request(method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = (),
                 content_length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
