"""multipart/form-data request bodies (RFC 7578), as the clickhouse crate sends parameters.

Each field becomes a request parameter (`query`, `param_<name>`, settings). Values are taken
byte for byte: parameter values are escaped text and may contain raw TABs and line breaks.
File parts (external tables on a server) are not supported.
"""

from __future__ import annotations

import re

from .errors import ClickHouseError

_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
MAX_PARTS = 10000


def _bad(message: str) -> ClickHouseError:
    return ClickHouseError("BAD_ARGUMENTS", f"Cannot parse multipart/form-data body: {message}")


def _header_params(value: str) -> dict[str, str]:
    params = {}
    for m in _PARAM.finditer(value):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[m.group(1).lower()] = v
    return params


def boundary_of(content_type: str) -> str:
    boundary = _header_params(content_type).get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise _bad("the Content-Type header has no valid boundary parameter")
    return boundary


def parse(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The (name, value) fields of a multipart/form-data body."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    # A leading CRLF makes the first delimiter look like every other one.
    parts = (b"\r\n" + body).split(b"\r\n" + delimiter)
    if len(parts) < 2:
        raise _bad("the boundary delimiter does not occur in the body")
    fields = []
    closed = False
    for part in parts[1:]:
        if part.startswith(b"--"):
            closed = True
            break
        if len(fields) >= MAX_PARTS:
            raise _bad(f"more than {MAX_PARTS} parts")
        # Transport padding after the delimiter, then CRLF, headers, empty line, content.
        line_end = part.find(b"\r\n")
        if line_end < 0 or part[:line_end].strip(b" \t"):
            raise _bad("a boundary delimiter is not followed by a line break")
        head_end = part.find(b"\r\n\r\n", line_end)
        if head_end < 0:
            raise _bad("a part has no empty line after its headers")
        if head_end == line_end:
            raise _bad("a part has no Content-Disposition header")
        headers = {}
        for line in part[line_end + 2:head_end].split(b"\r\n"):
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _bad(f"malformed part header line {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise _bad("a part has no 'Content-Disposition: form-data' header")
        params = _header_params(disposition)
        if "name" not in params:
            raise _bad("a part has no field name")
        if "filename" in params:
            raise ClickHouseError(
                "NOT_IMPLEMENTED",
                f"File part '{params['name']}' (external table data) is not supported by the "
                f"dev server")
        content = part[head_end + 4:]
        try:
            value = content.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(f"the value of field '{params['name']}' is not valid UTF-8") from None
        fields.append((params["name"].encode("latin-1").decode("utf-8", "replace"), value))
    if not closed:
        raise _bad("the closing boundary delimiter is missing")
    return fields
