"""Integers from paths, query strings and forms, bounded before they reach the database.

``str.isdigit`` is true for ``"²"`` and ``int()`` reads Arabic-Indic digits; a path's 30 digits
overflow a BIGINT. Each of those was a 500: here a row id that cannot exist is a 404, any other
number that is not one a 400 with a short reason.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request

from integrations.safejson import INT_MAX

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only


def bounded_int(text: object, *, low: int = 0, high: int = INT_MAX) -> int | None:
    """``text`` as an integer within [low, high], or None when it is not one."""
    if not isinstance(text, str) or not _DIGITS.fullmatch(text.strip()):
        return None
    value = int(text.strip())
    return value if low <= value <= high else None


def path_id(request: Request, name: str) -> int:
    """A row id of the path (Starlette's ``int`` convertor takes any length): 404 if it cannot be
    one, as for any other id that does not exist."""
    value = bounded_int(str(request.path_params[name]), low=0)
    if value is None:
        raise HTTPException(404, "Not found.")
    return value


def number(text: object, what: str, *, low: int = 0, high: int = INT_MAX) -> int:
    """A number a person typed or a link carries: 400 naming ``what`` when it is not one."""
    value = bounded_int(text, low=low, high=high)
    if value is None:
        raise HTTPException(400, f"{what} must be a whole number from {low} to {high}.")
    return value
