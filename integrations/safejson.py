"""Strict JSON for what comes from outside, and JSON that every database and page can read.

Python's ``json`` accepts ``NaN``, ``Infinity``, ``1e999`` (read as infinity), lone surrogate
escapes (``"\\ud800"``), ``"\\u0000"``, integers of any size and nesting until
``RecursionError``. Each got into the store once and broke every page that read the row:
PostgreSQL refuses ``NaN`` in a ``json`` column and cannot turn ``\\u0000`` into text, SQLite's
JSON functions call the row malformed, and a lone surrogate cannot be encoded into a UTF-8
response. ``loads`` refuses all of them with ``BadInput``; ``scrub`` and
``dumps`` make any value storable (the engine serialises JSON columns with ``dumps``).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from integrations.errors import BadInput

MAX_DEPTH = 64  # Aircall's envelopes nest 4 deep; the JSON parser itself recurses
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what a BIGINT column (an id) holds

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL: no PostgreSQL text can hold it
# In ensure_ascii output: an escaped high surrogate not followed by a low one, or a low one
# not preceded by a high one. A false hit only costs a scrub that changes nothing.
_LONE_ESCAPE = re.compile(
    r"\\u0000|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|"
    r"(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _depth(text: str) -> int:
    """How deep arrays and objects nest, counted without recursion (strings left out)."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def _constant(name: str) -> Any:
    raise BadInput(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    value = int(text) if len(text) <= 20 else None
    if value is None or not INT_MIN <= value <= INT_MAX:
        raise BadInput("an integer is outside the signed 64-bit range")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput(f"{text[:20]} is too large a number")
    return value


def _check_strings(value: Any) -> None:
    """Every key and string must be encodable as UTF-8 (no lone surrogate) and storable as text
    (no NUL)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise BadInput("a string holds NUL or a lone surrogate (\\ud800-\\udfff)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# Made once: ``json.loads`` with hooks builds a decoder and its scanner on every call.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_int=_integer, parse_float=_float)


def loads(body: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON that every part of Callbridge can store and show, or raise BadInput."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise BadInput("body is not UTF-8") from None
    # Nesting needs an opening bracket per level: few brackets in all, no need to count depth.
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise BadInput(f"JSON nested deeper than {max_depth} levels")
    try:
        value = _DECODER.decode(text)
    except ValueError:
        raise BadInput("body is not valid JSON") from None
    # Decoded UTF-8 holds no surrogate and strict JSON no raw NUL: then only escapes can.
    if "\\u" in text or not isinstance(body, bytes):
        _check_strings(value)
    return value


def clean_text(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD, so it can be encoded."""
    return _UNSTORABLE.sub("\ufffd", text) if _UNSTORABLE.search(text) else text


def scrub(value: Any) -> Any:
    """``value`` with non-finite numbers as null, NULs and lone surrogates as U+FFFD."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


class Checked(str):
    """JSON text already made from what ``loads`` accepted, so storable as it is: ``dumps``
    passes it through (the webhook intake serialises each delivery once, not once a column)."""

    __slots__ = ()


def dumps(value: Any) -> str:
    """JSON text both databases accept and read back: strict, scrubbed only when needed."""
    if isinstance(value, Checked):
        return value
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:  # NaN or Infinity somewhere
        return json.dumps(scrub(value), allow_nan=False)
    # ensure_ascii output holds a NUL or a surrogate only as an escape: the regex has no literal
    # prefix to skip ahead with, so it runs only where a "\u" is (a substring test is cheap).
    if "\\u" in text and _LONE_ESCAPE.search(text):
        return json.dumps(scrub(value), allow_nan=False)
    return text
