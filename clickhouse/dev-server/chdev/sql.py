"""Just enough of ClickHouse's lexer to route a request.

The engine parses the SQL; this module only answers what the HTTP layer must know first:
is there more than one statement (a server rejects that, chDB does not), which keyword does the
statement start with, which output FORMAT does it name, and where does an INSERT's data start.
Quotes ('...', "...", `...`, $tag$...$tag$) and comments (--, `# `, `#!`, nested /* */) are
honoured the way ClickHouse's lexer honours them, so a ';' inside them never counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from .errors import ClickHouseError

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_.]*")
_HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")
_SPACE = re.compile(r"\s+")
_QUOTE_STOP = {q: re.compile(r"[\\" + q + r"]") for q in ("'", '"', "`")}
# Characters that may start a string, a comment or a statement separator.
_INTERESTING = re.compile(r"[;'\"`$#/-]")


def _skip_quoted(s: str, i: int) -> tuple[int, bool]:
    """End of the quoted token starting at s[i]; backslash escapes and doubled quotes."""
    q = s[i]
    stop = _QUOTE_STOP[q]
    j = i + 1
    n = len(s)
    while True:
        m = stop.search(s, j)
        if m is None:
            return n, False
        k = m.start()
        if s[k] == "\\":
            j = k + 2
        elif k + 1 < n and s[k + 1] == q:
            j = k + 2
        else:
            return k + 1, True


def _skip_block_comment(s: str, i: int) -> tuple[int, bool]:
    """End of a /* ... */ comment at s[i]; ClickHouse allows nesting."""
    depth = 0
    j = i
    n = len(s)
    while j < n:
        if s.startswith("/*", j):
            depth += 1
            j += 2
        elif s.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j, True
        else:
            nxt = min((p for p in (s.find("/*", j), s.find("*/", j)) if p >= 0), default=-1)
            if nxt < 0:
                return n, False
            j = nxt
    return n, False


def _heredoc_at(s: str, i: int) -> Optional[tuple[int, bool]]:
    """End of a $tag$...$tag$ string at s[i], or None when '$' is part of an identifier."""
    if i > 0 and (s[i - 1].isalnum() or s[i - 1] in "_$"):
        return None
    m = _HEREDOC.match(s, i)
    if m is None:
        return None
    close = s.find(m.group(0), m.end())
    if close < 0:
        return len(s), False
    return close + len(m.group(0)), True


def _comment_at(s: str, i: int) -> Optional[tuple[int, bool]]:
    """End of a comment starting at s[i], or None when s[i] does not start one."""
    c = s[i]
    nxt = s[i + 1] if i + 1 < len(s) else ""
    if (c == "-" and nxt == "-") or (c == "#" and nxt in (" ", "!")):
        end = s.find("\n", i)
        return (len(s), True) if end < 0 else (end + 1, True)
    if c == "/" and nxt == "*":
        return _skip_block_comment(s, i)
    return None


@dataclass(frozen=True)
class Token:
    kind: str  # word, number, string, ident (quoted identifier), heredoc, punct
    start: int
    end: int
    closed: bool = True  # False when a string or comment runs to the end of the input

    def text(self, s: str) -> str:
        return s[self.start:self.end]

    def is_word(self, s: str, *words: str) -> bool:
        return self.kind == "word" and s[self.start:self.end].upper() in words


def tokens(s: str, pos: int = 0) -> Iterator[Token]:
    """Significant tokens of s, skipping whitespace and comments."""
    n = len(s)
    while pos < n:
        m = _SPACE.match(s, pos)
        if m:
            pos = m.end()
            continue
        c = s[pos]
        comment = _comment_at(s, pos)
        if comment is not None:
            end, closed = comment
            if not closed:
                yield Token("comment", pos, end, False)
                return
            pos = end
            continue
        if c in "'\"`":
            end, closed = _skip_quoted(s, pos)
            yield Token("string" if c == "'" else "ident", pos, end, closed)
            pos = end
            continue
        if c == "$":
            here = _heredoc_at(s, pos)
            if here is not None:
                yield Token("heredoc", pos, here[0], here[1])
                pos = here[0]
                continue
        m = _WORD.match(s, pos)
        if m:
            yield Token("word", pos, m.end())
            pos = m.end()
            continue
        m = _NUMBER.match(s, pos)
        if m:
            yield Token("number", pos, m.end())
            pos = m.end()
            continue
        yield Token("punct", pos, pos + 1)
        pos += 1


def check_single_statement(sql: str) -> None:
    """Reject more than one statement, like the server's HTTP interface does.

    A trailing ';' and separators followed only by whitespace or comments are fine.
    Scans with str/regex searches instead of full tokens, so large INSERT ... VALUES
    bodies stay cheap.
    """
    pos = 0
    n = len(sql)
    has_content = False
    statements = 0
    first_separator = -1
    while True:
        m = _INTERESTING.search(sql, pos)
        stop = m.start() if m else n
        if not has_content and not sql[pos:stop].isspace() and stop > pos:
            has_content = True
        if m is None:
            break
        i = m.start()
        c = sql[i]
        if c == ";":
            if has_content:
                statements += 1
                if statements == 1:
                    first_separator = i
            has_content = False
            pos = i + 1
            continue
        if c in "'\"`":
            has_content = True
            pos = _skip_quoted(sql, i)[0]
            continue
        if c == "$":
            here = _heredoc_at(sql, i)
            has_content = True
            pos = here[0] if here else i + 1
            continue
        comment = _comment_at(sql, i)
        if comment is not None:
            pos = comment[0]
            continue
        has_content = True
        pos = i + 1
    if has_content:
        statements += 1
    if statements > 1:
        rest = sql[first_separator:first_separator + 60].replace("\n", " ")
        raise ClickHouseError(
            "SYNTAX_ERROR",
            f"Syntax error (Multi-statements are not allowed): failed at position "
            f"{first_separator + 1} (';'): {rest}. The HTTP interface accepts one statement "
            f"per request.")


def leading_keyword(sql: str) -> str:
    """The statement's first keyword in upper case ('' when there is none); skips '('."""
    for tok in tokens(sql):
        if tok.kind == "punct" and sql[tok.start] == "(":
            continue
        return tok.text(sql).upper() if tok.kind == "word" else ""
    return ""


def output_format(sql: str, limit: int = 1 << 20) -> Optional[str]:
    """The name in a top-level `FORMAT name` clause that ends the statement, if any.

    The clause counts only when followed by the end, ';' or a SETTINGS clause, so columns
    or functions named `format` are not mistaken for it. Returns None for very long SQL.
    """
    if len(sql) > limit:
        return None
    toks = [t for t in tokens(sql) if t.kind != "comment"]
    depth = 0
    found = None
    for i, tok in enumerate(toks):
        ch = sql[tok.start] if tok.kind == "punct" else ""
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and tok.is_word(sql, "FORMAT") and i + 1 < len(toks):
            name = toks[i + 1]
            if name.kind not in ("word", "ident"):
                continue
            after = toks[i + 2] if i + 2 < len(toks) else None
            if (after is None or (after.kind == "punct" and sql[after.start] == ";")
                    or after.is_word(sql, "SETTINGS")):
                found = _unquote(name.text(sql))
    return found


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] in "\"`" and name[-1] == name[0]:
        return name[1:-1].replace(name[0] * 2, name[0]).replace("\\" + name[0], name[0])
    return name


NEED_MORE = "need-more"


@dataclass(frozen=True)
class InsertSplit:
    """`INSERT ... FORMAT name <data>`: the SQL to stream into and where the data starts."""
    sql: str  # the statement without its FORMAT clause (a SETTINGS clause is kept)
    fmt: str
    data_start: int


def split_insert(text: str, final: bool) -> "InsertSplit | str | None":
    """Locate the data of an `INSERT ... FORMAT name` statement at the start of text.

    text may be only a prefix of the request (decoded as latin-1 so offsets are byte offsets).
    Returns None when text is not an INSERT with a FORMAT clause (VALUES, SELECT or not an
    INSERT at all: run it as ordinary SQL), NEED_MORE when the prefix ends too early to tell,
    or an InsertSplit. Data starts after the format name (and an optional SETTINGS clause),
    skipping spaces and tabs and then one line break, exactly as ClickHouse's parser does.
    """
    it = tokens(text)
    first = next(it, None)
    if first is None:
        return None if final else NEED_MORE
    if not first.closed:
        return None if final else NEED_MORE
    if not first.is_word(text, "INSERT"):
        if first.end == len(text) and not final:
            return NEED_MORE  # "INS" might still become INSERT
        return None
    depth = 0
    toks = iter(it)
    for tok in toks:
        if not tok.closed or (tok.end == len(text) and not final):
            return NEED_MORE
        ch = text[tok.start] if tok.kind == "punct" else ""
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and tok.is_word(text, "VALUES", "SELECT", "WITH"):
            return None
        elif depth == 0 and tok.is_word(text, "FORMAT"):
            name = next(toks, None)
            if name is None or not name.closed or (name.end == len(text) and not final):
                return None if final else NEED_MORE
            if name.kind not in ("word", "ident"):
                return None
            sql = text[:tok.start].rstrip()
            data = name.end
            settings = _settings_clause(text, name.end)
            if settings is NEED_MORE:
                return None if final else NEED_MORE
            if settings is not None:
                sql = f"{sql} {text[settings[0]:settings[1]]}"
                data = settings[1]
            if data < len(text) and text[data] == ";":
                raise ClickHouseError(
                    "SYNTAX_ERROR", "You have excessive ';' symbol before data for INSERT. "
                    "Put at least one whitespace symbol between the format name and the data.")
            while data < len(text) and text[data] in " \t\f":
                data += 1
            if data < len(text) and text[data] == "\r":
                data += 1
            if data < len(text) and text[data] == "\n":
                data += 1
            if data >= len(text) and not final:
                return NEED_MORE  # cannot tell yet whether a line break follows
            return InsertSplit(sql=sql, fmt=_unquote(name.text(text)), data_start=data)
    return None if final else NEED_MORE


def _settings_clause(text: str, pos: int):
    """(start, end) of `SETTINGS a = 1, b = 'x'` right after pos, None if absent."""
    it = tokens(text, pos)
    kw = next(it, None)
    if kw is None or not kw.is_word(text, "SETTINGS"):
        return None
    end = kw.end
    while True:
        name, eq, value = next(it, None), next(it, None), next(it, None)
        if value is None or not value.closed:
            return NEED_MORE
        if name.kind not in ("word", "ident") or text[eq.start:eq.end] != "=":
            return (kw.start, end) if end > kw.end else None
        if value.kind == "punct" and text[value.start] in "+-":
            value = next(it, None)
            if value is None:
                return NEED_MORE
        end = value.end
        sep = next(it, None)
        if sep is None or text[sep.start:sep.end] != ",":
            return kw.start, end


def quote_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """A ClickHouse back-quoted identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
