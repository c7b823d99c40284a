"""ClickHouse-style exceptions: codes, HTTP statuses and the wire text.

Every failure the server reports, whether raised by the engine or by the HTTP layer,
becomes a ClickHouseError so clients see the same `Code: N. DB::Exception: ...` body,
`X-ClickHouse-Exception-Code` header and HTTP status as from a real server.
"""

from __future__ import annotations

import re

# Codes the HTTP layer raises itself (numbers from ClickHouse's ErrorCodes.cpp).
CODES = {
    "CANNOT_PARSE_INPUT_ASSERTION_FAILED": 27,
    "ATTEMPT_TO_READ_AFTER_EOF": 32,
    "CANNOT_READ_ALL_DATA": 33,
    "BAD_ARGUMENTS": 36,
    "CHECKSUM_DOESNT_MATCH": 40,
    "NOT_IMPLEMENTED": 48,
    "SYNTAX_ERROR": 62,
    "UNKNOWN_COMPRESSION_METHOD": 89,
    "UNKNOWN_SETTING": 115,
    "READONLY": 164,
    "SOCKET_TIMEOUT": 209,
    "QUERY_IS_TOO_LARGE": 229,
    "CANNOT_DECOMPRESS": 271,
    "SESSION_NOT_FOUND": 372,
    "SESSION_IS_LOCKED": 373,
    "INVALID_SESSION_TIMEOUT": 374,
    "HTTP_LENGTH_REQUIRED": 381,
    "UNKNOWN_QUERY_PARAMETER": 456,
    "AUTHENTICATION_FAILED": 516,
    "STD_EXCEPTION": 1001,
}
NAMES = {code: name for name, code in CODES.items()}

# HTTP status by exception name, after ClickHouse src/Server/HTTP/exceptionCodeToHTTPStatus.cpp.
_STATUS_GROUPS = {
    401: ("REQUIRED_PASSWORD",),
    403: ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
          "ACCESS_DENIED"),
    400: ("BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
          "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
          "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
          "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"),
    404: ("UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
          "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
          "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
          "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"),
    413: ("QUERY_IS_TOO_LARGE",),
    501: ("NOT_IMPLEMENTED",),
    503: ("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"),
    411: ("HTTP_LENGTH_REQUIRED",),
    408: ("TIMEOUT_EXCEEDED",),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
}
_STATUS_BY_NAME = {name: status for status, names in _STATUS_GROUPS.items() for name in names}

# The engine's text: optional Python prefix ("Streaming query failed: "), then the exception.
_ENGINE_RE = re.compile(r"Code: (\d+)\. (DB::\w*Exception): (.*)", re.S)
_VERSION_RE = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?[^()]*\)")
_NAME_TAIL_RE = re.compile(r"\(([A-Z][A-Z0-9_]*)\)\s*$")

# Filled in at start-up from the engine (`SELECT version()`), used for the version suffix.
server_version = "unknown"


class ClickHouseError(Exception):
    """An exception with a ClickHouse code, formatted like the server formats it."""

    def __init__(self, code: int | str, message: str, name: str | None = None,
                 kind: str = "DB::Exception"):
        if isinstance(code, str):
            name, code = code, CODES[code]
        self.code = int(code)
        self.name = name or NAMES.get(self.code)
        self.message = message.rstrip()
        self.kind = kind
        super().__init__(self.text())

    @property
    def status(self) -> int:
        return _STATUS_BY_NAME.get(self.name or "", 500)

    def text(self) -> str:
        """`Code: N. DB::Exception: <message> (NAME) (version V (official build))`"""
        msg = self.message
        if self.name and not msg.endswith(f"({self.name})"):
            if not msg.endswith((".", "?", "!")):
                msg += "."
            msg = f"{msg} ({self.name})"
        return f"Code: {self.code}. {self.kind}: {msg} (version {server_version} (official build))"


def register_names(code_to_name: dict[int, str]) -> None:
    """Learn every code's name from the engine, for messages that lack the (NAME) tail."""
    for code, name in code_to_name.items():
        NAMES.setdefault(int(code), name)


def from_engine(exc: BaseException) -> ClickHouseError:
    """Turn a chDB exception into a ClickHouseError with a clean, server-like message."""
    text = str(exc)
    m = _ENGINE_RE.search(text)
    if m is None:
        return ClickHouseError("STD_EXCEPTION", f"Engine error: {text or type(exc).__name__}")
    code, kind, rest = int(m.group(1)), m.group(2), m.group(3).strip()
    # chDB sometimes nests the same exception ("Code: 73. DB::Exception: Code: 73. ...").
    nested = f"Code: {code}. {kind}: "
    while rest.startswith(nested):
        rest = rest[len(nested):]
    rest = _VERSION_RE.sub("", rest).rstrip()
    name = None
    tail = _NAME_TAIL_RE.search(rest)
    if tail:
        name = tail.group(1)
        # Collapse the repeated ". (NAME). (NAME)" tails the nesting leaves behind.
        rest = re.sub(r"(?:\.?\s*\(" + re.escape(name) + r"\))+\s*$", "", rest).rstrip()
    return ClickHouseError(code, rest, name=name, kind=kind)
