"""Compression on the wire.

* Native compressed frames (`decompress=1` request bodies, `compress=1` responses):
  [16 B CityHash128 v1.0.2 checksum][1 B method][u32 LE size incl. 9-byte header]
  [u32 LE uncompressed size][payload]. The checksum covers header and payload; the first
  little-endian u64 on the wire is the hash's HIGH half, the second its low half.
* HTTP Content-Encoding for request bodies (gzip, deflate, lz4 frames, zstd when available)
  and LZ4 frames for `Content-Encoding: lz4` responses.

Decoders are incremental: feed() takes whatever arrived and returns complete output pieces,
so inserts stream through without buffering the whole body.
"""

from __future__ import annotations

import struct
import zlib

import lz4.block
import lz4.frame
from clickhouse_cityhash.cityhash import CityHash128

from .errors import ClickHouseError

try:  # Python >= 3.14 ships zstd; older interpreters have no zstd in the standard library.
    from compression import zstd as _zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the interpreter
    _zstd = None

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90
HEADER_SIZE = 9
CHECKSUM_SIZE = 16
# ClickHouse refuses frames above 1 GiB (DBMS_MAX_COMPRESSED_SIZE); so do we, before allocating.
MAX_FRAME_SIZE = 0x40000000
# Response blocks of 1 MiB, like the server's max_compress_block_size.
RESPONSE_BLOCK_SIZE = 1 << 20

_U64 = (1 << 64) - 1
_HEADER = struct.Struct("<BII")


def checksum(data) -> bytes:
    """The 16 checksum bytes ClickHouse writes before a compressed frame."""
    # clickhouse-cityhash never releases buffers it borrows from memoryviews (the exporter
    # then cannot be resized or released), so always hand it bytes.
    h = CityHash128(data if isinstance(data, bytes) else bytes(data))
    return struct.pack("<QQ", h >> 64, h & _U64)


def encode_native_frame(data: bytes, method: int = METHOD_LZ4) -> bytes:
    """One native compressed frame holding data."""
    if method == METHOD_LZ4:
        payload = lz4.block.compress(data, store_size=False)
    elif method == METHOD_NONE:
        payload = bytes(data)
    else:
        raise ValueError(f"unsupported method 0x{method:02x}")
    header = _HEADER.pack(method, HEADER_SIZE + len(payload), len(data))
    return checksum(header + payload) + header + payload


def encode_native_blocks(data, block_size: int = RESPONSE_BLOCK_SIZE) -> bytes:
    """data as a sequence of LZ4 native frames of at most block_size uncompressed bytes."""
    view = memoryview(data)
    return b"".join(encode_native_frame(bytes(view[i:i + block_size]))
                    for i in range(0, len(view), block_size)) if len(view) else b""


class NativeFrameDecoder:
    """Incremental decoder for a stream of native compressed frames."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= CHECKSUM_SIZE + HEADER_SIZE:
            method, size, raw_size = _HEADER.unpack_from(buf, pos + CHECKSUM_SIZE)
            if size < HEADER_SIZE or size > MAX_FRAME_SIZE or raw_size > MAX_FRAME_SIZE:
                raise ClickHouseError(
                    "CANNOT_DECOMPRESS",
                    f"Too large or invalid size of compressed block {self.frames}: "
                    f"compressed {size}, uncompressed {raw_size} (limit {MAX_FRAME_SIZE})")
            end = pos + CHECKSUM_SIZE + size
            if len(buf) < end:
                break
            with memoryview(buf) as view:
                frame = view[pos + CHECKSUM_SIZE:end]
                payload = frame[HEADER_SIZE:]
                try:
                    expected = bytes(view[pos:pos + CHECKSUM_SIZE])
                    actual = checksum(frame)
                    if actual != expected:
                        raise ClickHouseError(
                            "CHECKSUM_DOESNT_MATCH",
                            f"Checksum doesn't match: corrupted data in compressed block "
                            f"{self.frames}. Reference: {_hex128(expected)}. "
                            f"Actual: {_hex128(actual)}. Size of compressed block: {size}")
                    out.append(self._decompress(method, payload, raw_size))
                finally:
                    # Release the views so the bytearray can shrink below.
                    payload.release()
                    frame.release()
            self.frames += 1
            pos = end
        if pos:
            del buf[:pos]
        return out

    def finish(self) -> None:
        """Call at the end of the body: a partial frame left over means truncated input."""
        if self._buf:
            raise ClickHouseError(
                "ATTEMPT_TO_READ_AFTER_EOF",
                f"Attempt to read after eof: the compressed request body ends inside block "
                f"{self.frames} ({len(self._buf)} bytes of an incomplete frame)")

    def _decompress(self, method: int, payload: memoryview, raw_size: int) -> bytes:
        if method == METHOD_LZ4:
            try:
                out = lz4.block.decompress(payload, uncompressed_size=raw_size)
            except Exception as exc:  # lz4 raises LZ4BlockError (a RuntimeError)
                raise ClickHouseError(
                    "CANNOT_DECOMPRESS",
                    f"Cannot decompress LZ4 block {self.frames}: {exc}") from None
        elif method == METHOD_NONE:
            out = bytes(payload)
        elif method == METHOD_ZSTD:
            if _zstd is None:
                raise ClickHouseError(
                    "NOT_IMPLEMENTED",
                    "ZSTD-compressed blocks (method 0x90) need Python >= 3.14 in the dev server; "
                    "use LZ4 or no compression")
            try:
                out = _zstd.decompress(bytes(payload))
            except Exception as exc:
                raise ClickHouseError(
                    "CANNOT_DECOMPRESS", f"Cannot decompress ZSTD block {self.frames}: {exc}") from None
        else:
            raise ClickHouseError(
                "UNKNOWN_COMPRESSION_METHOD",
                f"Unknown compression method 0x{method:02x} in compressed block {self.frames}")
        if len(out) != raw_size:
            raise ClickHouseError(
                "CANNOT_DECOMPRESS",
                f"Block {self.frames} decompressed to {len(out)} bytes, header says {raw_size}")
        return out


def _hex128(b: bytes) -> str:
    hi, lo = struct.unpack("<QQ", b)
    return f"({hi:#018x}, {lo:#018x})"


# --- HTTP Content-Encoding -------------------------------------------------------------------

class _ZlibDecoder:
    """gzip or zlib ('deflate'); also handles concatenated gzip members."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=47)  # 32 + 15: detect the gzip or zlib header
        self._mid_stream = False

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        while data:
            try:
                out.append(self._d.decompress(data))
            except zlib.error as exc:
                raise ClickHouseError("CANNOT_DECOMPRESS", f"Cannot decompress request body: {exc}") from None
            self._mid_stream = not self._d.eof
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = zlib.decompressobj(wbits=47)
        return [b for b in out if b]

    def finish(self) -> None:
        if self._mid_stream:
            raise ClickHouseError("ATTEMPT_TO_READ_AFTER_EOF", "Compressed request body is truncated")


class _Lz4FrameDecoder:
    """Concatenated LZ4 frames (Content-Encoding: lz4)."""

    def __init__(self) -> None:
        self._d = lz4.frame.LZ4FrameDecompressor()
        self._mid_frame = False

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        while data:
            try:
                out.append(self._d.decompress(data))
            except RuntimeError as exc:
                raise ClickHouseError("CANNOT_DECOMPRESS", f"Cannot decompress LZ4 request body: {exc}") from None
            self._mid_frame = not self._d.eof
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = lz4.frame.LZ4FrameDecompressor()
        return [b for b in out if b]

    def finish(self) -> None:
        if self._mid_frame:
            raise ClickHouseError("ATTEMPT_TO_READ_AFTER_EOF", "LZ4 request body ends inside a frame")


class _ZstdDecoder:
    def __init__(self) -> None:
        self._d = _zstd.ZstdDecompressor()
        self._mid_stream = False

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        while data:
            try:
                out.append(self._d.decompress(data))
            except Exception as exc:
                raise ClickHouseError("CANNOT_DECOMPRESS", f"Cannot decompress ZSTD request body: {exc}") from None
            self._mid_stream = not self._d.eof
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = _zstd.ZstdDecompressor()
        return [b for b in out if b]

    def finish(self) -> None:
        if self._mid_stream:
            raise ClickHouseError("ATTEMPT_TO_READ_AFTER_EOF", "ZSTD request body is truncated")


SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate", "lz4") + (("zstd",) if _zstd else ())


def body_decoder(content_encoding: str):
    """A decoder for the request's Content-Encoding, or None for an identity body."""
    enc = content_encoding.strip().lower()
    if enc in ("", "identity", "none"):
        return None
    if enc in ("gzip", "x-gzip", "deflate"):
        return _ZlibDecoder()
    if enc == "lz4":
        return _Lz4FrameDecoder()
    if enc in ("zstd", "zst") and _zstd is not None:
        return _ZstdDecoder()
    # Same code and wording as the server's chooseCompressionMethod().
    raise ClickHouseError(
        "NOT_IMPLEMENTED",
        f"Unknown compression method '{content_encoding}'. The dev server supports "
        f"{', '.join(repr(e) for e in SUPPORTED_ENCODINGS)} as Content-Encoding "
        f"(a server also accepts 'br', 'xz', 'zstd', 'bz2', 'snappy')")


def lz4_frame(data) -> bytes:
    """One standard LZ4 frame (the response body for Content-Encoding: lz4)."""
    return lz4.frame.compress(data)
