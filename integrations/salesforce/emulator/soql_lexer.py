"""SOQL's tokens, string literal escapes and Salesforce's "ERROR at Row:Column" messages.

Shared by the SOQL parser and the SOSL parser (whose RETURNING clauses hold SOQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ApiError, bad_request

_KEYWORD_TEXT = """
    SELECT FROM WHERE AND OR NOT IN LIKE ORDER BY ASC DESC NULLS FIRST LAST LIMIT OFFSET NULL TRUE
    FALSE GROUP HAVING WITH FOR USING INCLUDES EXCLUDES TYPEOF RETURNING FIND
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.+\-Z]*)
      | (?P<date>\d{4}-\d{2}-\d{2})(?![0-9A-Za-z_])
      | (?P<number>-?\d+(?:\.\d+)?)(?![0-9A-Za-z_])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op>!=|<>|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<string>')
    """,
    re.VERBOSE,
)
_DATETIME_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass
class Token:
    kind: str  # ident, string, number, date, datetime, op, punct, eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def position(text: str, pos: int) -> tuple[int, int, str]:
    """(row, column, line) of a character offset, 1-based, as Salesforce reports them."""
    before = text[:pos]
    row = before.count("\n") + 1
    col = pos - (before.rfind("\n") + 1) + 1
    return row, col, text.splitlines()[row - 1] if text.strip() else text


def located(text: str, pos: int, code: str, detail: str) -> ApiError:
    row, col, line = position(text, pos)
    message = f"{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{detail}"
    return bad_request(code, message)


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    end = len(text) if end is None else end
    tokens: list[Token] = []
    pos = start
    while pos < end:
        match = _TOKEN.match(text, pos, end)
        if match is None:
            raise located(text, pos, "MALFORMED_QUERY", f"unexpected token: '{text[pos]}'")
        kind = match.lastgroup or ""
        if kind == "space":
            pos = match.end()
            continue
        if kind == "string":
            close = pos + 1
            while close < end and text[close] != "'":
                close += 2 if text[close] == "\\" else 1
            if close >= end:
                raise located(text, pos, "MALFORMED_QUERY", "unterminated string literal")
            tokens.append(Token("string", text[pos + 1 : close], pos))
            pos = close + 1
            continue
        if kind == "datetime" and not _DATETIME_LITERAL.fullmatch(match.group()):
            raise located(text, pos, "MALFORMED_QUERY", f"unexpected token: '{match.group()}'")
        tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", end))
    return tokens


def decode_string(raw: str, *, like: bool) -> list[tuple[str, bool]]:
    """Decode a literal's escapes into (char, is_wildcard) pairs; wildcards only in LIKE."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt in _ESCAPES:
                out.append((_ESCAPES[nxt], False))
            elif like and nxt in "%_":
                out.append((nxt, False))
            else:
                raise ValueError(f"invalid escape sequence \\{nxt}")
            i += 2
            continue
        out.append((char, like and char in "%_"))
        i += 1
    return out
