"""Salesforce record ids: 15-char case-sensitive form, 18-char checksummed form.

The 18-char form appends three characters that encode which of the first 15 characters are upper
case, so the id survives case-insensitive handling. The REST API answers with 18 chars and accepts
both forms; compare ids only after :func:`normalize`.
"""

from __future__ import annotations

import itertools
import re
import threading

__all__ = ["InvalidId", "is_id", "key_prefix", "new_id", "normalize", "to18"]

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Digits, then upper, then lower case: ASCII order, so later serials sort after earlier ones.
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID15 = re.compile(r"[A-Za-z0-9]{15}")
_ID18 = re.compile(r"[A-Za-z0-9]{18}")
_POD = "Ka"  # the two "instance" characters after the key prefix in generated ids

_serial = itertools.count(1)
_serial_lock = threading.Lock()


class InvalidId(ValueError):
    """The string is not a 15- or 18-character Salesforce id."""


def _checksum(id15: str) -> str:
    out = []
    for start in (0, 5, 10):
        bits = sum(1 << n for n, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z")
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def to18(id15: str) -> str:
    """Append the checksum to a 15-char id (an 18-char id is normalised instead)."""
    if len(id15) == 18:
        return normalize(id15)
    if not _ID15.fullmatch(id15):
        raise InvalidId(id15)
    return id15 + _checksum(id15)


def normalize(value: str) -> str:
    """Return the canonical 18-char id for a 15-char id or an 18-char id in any letter case.

    The checksum of an 18-char id tells which letters are upper case, which is how Salesforce reads
    ids that went through case-insensitive systems. A checksum that does not fit raises InvalidId.
    """
    if len(value) == 15:
        return to18(value)
    if not _ID18.fullmatch(value):
        raise InvalidId(value)
    suffix = value[15:].upper()
    restored = []
    for chunk, code in enumerate(suffix):
        if code not in _CHECKSUM_ALPHABET:
            raise InvalidId(value)
        bits = _CHECKSUM_ALPHABET.index(code)
        for n, char in enumerate(value[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits >> n & 1)
            if upper and not char.isalpha():
                raise InvalidId(value)
            restored.append(char.upper() if upper else char.lower())
    id15 = "".join(restored)
    if _checksum(id15) != suffix:
        raise InvalidId(value)
    return id15 + suffix


def is_id(value: object) -> bool:
    """True when ``value`` is a well-formed 15- or 18-char id (checksum included)."""
    if not isinstance(value, str):
        return False
    try:
        normalize(value)
    except InvalidId:
        return False
    return True


def key_prefix(value: str) -> str:
    """The three-character object prefix of an id (``001`` Account, ``00T`` Task...)."""
    return value[:3]


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    text = "".join(reversed(digits)).rjust(width, "0")
    if len(text) > width:
        raise OverflowError("id serial space exhausted")
    return text


def new_id(prefix: str) -> str:
    """A fresh 18-char id with the given 3-char key prefix, unique within this process.

    Serials grow monotonically, so ids sort (ASCII, first 15 chars) in creation order.
    """
    if len(prefix) != 3 or not prefix.isalnum():
        raise ValueError(f"key prefix must be 3 alphanumeric characters: {prefix!r}")
    with _serial_lock:
        serial = next(_serial)
    return to18(prefix + _POD + _base62(serial, 10))
