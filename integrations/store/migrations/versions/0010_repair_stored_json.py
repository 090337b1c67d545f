"""Repair JSON rows that hold NaN, Infinity, a lone surrogate or NUL (stored before the webhook
door and the engine's serialiser refused them): SQLite's JSON functions call such a row
malformed, PostgreSQL cannot read ``\\u0000`` as text, and every page reading the row answered
500. Non-finite numbers become null (a disposition option is dropped, so its default applies
again), lone surrogates and NULs U+FFFD.

Revision ID: 0010
Revises: 0009
"""

import json
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

from integrations import safejson

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, primary key, JSON column): what came from outside (webhooks, SaaS answers, forms).
COLUMNS = [
    ("events", "id", "payload"),
    ("calls", "id", "snapshot"),
    ("jobs", "id", "payload"),
    ("jobs", "id", "result"),
    ("job_steps", "id", "sent"),
    ("job_steps", "id", "received"),
    ("salesforce_deliveries", "id", "record"),
    ("caller_contexts", "e164", "context"),
    ("disposition_rules", "key", "options"),
]
# Only rows whose text could hold one are read; a lone surrogate is stored as an escape
# (``\\ud800``), and PostgreSQL's LIKE takes a backslash as its escape character.
_SUSPECT = {
    "sqlite": ("%NaN%", "%Infinity%", "%\\ud%", "%\\u0000%"),
    "postgresql": ("%\\\\ud%", "%\\\\u0000%"),
}


def _repaired(table: str, value: Any) -> Any:
    if table == "disposition_rules" and isinstance(value, dict):
        value = {
            k: v for k, v in value.items() if not (isinstance(v, float) and not math.isfinite(v))
        }
    return safejson.scrub(value)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    like = "ILIKE" if postgres else "LIKE"  # SQLite's LIKE ignores ASCII case already
    patterns = _SUSPECT[bind.dialect.name]  # PostgreSQL's json refuses NaN and Infinity
    for table, key, column in COLUMNS:
        text_of = f"CAST({column} AS TEXT)"
        where = " OR ".join(f"{text_of} {like} :p{i}" for i in range(len(patterns)))
        rows = bind.execute(
            sa.text(f"SELECT {key}, {text_of} FROM {table} WHERE {where}"),  # noqa: S608
            {f"p{i}": p for i, p in enumerate(patterns)},
        ).all()
        for row_key, stored in rows:
            value = json.loads(stored)  # Python's json reads NaN, Infinity and lone surrogates
            fixed = safejson.dumps(_repaired(table, value))
            if fixed != json.dumps(value):
                cast = "CAST(:value AS JSON)" if postgres else ":value"
                bind.execute(
                    sa.text(f"UPDATE {table} SET {column} = {cast} WHERE {key} = :key"),  # noqa: S608
                    {"value": fixed, "key": row_key},
                )


def downgrade() -> None:
    """Nothing to undo: the repaired rows are valid JSON either way."""
