"""Many rows as one JSON parameter, read as a table by PostgreSQL's ``json_to_recordset``.

A multi-row ``INSERT`` with a placeholder per value has a new text for each number of rows:
psycopg caches no query of over 50 parameters and splits each such text again (about 2.5 ms of
CPU for 48 rows of the webhook intake), and the server parses and plans it anew; an
``executemany`` runs one statement a row. With the rows in one JSON text, a statement has one
text whatever the rows: parsed once, and prepared by psycopg after a few runs. The JSON is
joined from strings: JSON columns may hold ``safejson.Checked`` text, written as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from integrations import safejson


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if isinstance(value, safejson.Checked) else encode_basestring_ascii(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # ids, counts and timestamps (finite)
    return safejson.dumps(value)


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one JSON array of objects; their keys are column names (nothing to escape)."""
    return (
        "["
        + ",".join(
            "{" + ",".join(f'"{key}":{_value(value)}' for key, value in row.items()) + "}"
            for row in rows
        )
        + "]"
    )


def recordset(columns: Sequence[tuple[str, str]]) -> str:
    """``json_to_recordset(...) AS r(name type, ...)`` over the ``:rows`` parameter."""
    types = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS r({types})"
