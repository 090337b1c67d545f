"""The intake's two multi-row statements: the events inserted, the calls' snapshots upserted.

PostgreSQL gets the rows as one JSON parameter (``json_rows``: one statement text whatever the
batch). SQLite keeps SQLAlchemy's multi-row ``INSERT``: ``json_each`` costs it more than the
placeholders do (60 against 40 us of CPU a delivery in batches of 48).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, case, or_, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from integrations.store.json_rows import as_json, recordset
from integrations.store.models import Call, Event

# (column, PostgreSQL type): the keys of the rows' objects.
EVENT_COLUMNS = (
    ("source", "text"),
    ("name", "text"),
    ("delivery_key", "text"),
    ("call_id", "bigint"),
    ("occurred_at", "bigint"),
    ("received_at", "double precision"),
    ("payload", "json"),
)
CALL_COLUMNS = (
    ("id", "bigint"),
    ("snapshot", "json"),
    ("snapshot_at", "bigint"),
    ("snapshot_rank", "integer"),
    ("direction", "text"),
    ("status", "text"),
    ("e164", "text"),
    ("agent_email", "text"),
    ("started_at", "bigint"),
    ("duration", "integer"),
    ("ended", "boolean"),
    ("sf_requests", "integer"),
    ("updated_at", "double precision"),
)
# A stored call's columns that a newer (or as new) snapshot replaces.
KEPT = (
    "snapshot",
    "snapshot_at",
    "snapshot_rank",
    "direction",
    "status",
    "e164",
    "agent_email",
    "started_at",
    "duration",
)


def _pg_insert_events() -> Any:
    names = ", ".join(name for name, _ in EVENT_COLUMNS)
    return text(
        f"INSERT INTO events ({names}) SELECT {names} FROM {recordset(EVENT_COLUMNS)} "  # noqa: S608 (our names)
        "ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key"
    )


NEWER = (
    "(excluded.snapshot_at > calls.snapshot_at OR (excluded.snapshot_at = calls.snapshot_at "
    "AND excluded.snapshot_rank >= calls.snapshot_rank))"
)


def _pg_upsert_calls() -> Any:
    names = ", ".join(name for name, _ in CALL_COLUMNS)
    kept = ", ".join(
        f"{name} = CASE WHEN {NEWER} THEN excluded.{name} ELSE calls.{name} END" for name in KEPT
    )
    return text(
        f"INSERT INTO calls ({names}) SELECT {names} FROM {recordset(CALL_COLUMNS)} "  # noqa: S608 (our names)
        f"ON CONFLICT (id) DO UPDATE SET {kept}, ended = (calls.ended OR excluded.ended), "
        "updated_at = excluded.updated_at "
        "RETURNING id, snapshot_at, snapshot_rank, status, ended"
    )


def _sqlite_insert_events() -> Any:
    table = Event.__table__
    return (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=["delivery_key"])
        .returning(table.c.id, table.c.delivery_key)
    )


def _sqlite_upsert_calls() -> Any:
    table = Call.__table__
    statement = sqlite.insert(table)
    new = statement.excluded
    newer = or_(
        new.snapshot_at > table.c.snapshot_at,
        and_(new.snapshot_at == table.c.snapshot_at, new.snapshot_rank >= table.c.snapshot_rank),
    )
    kept = {column: case((newer, new[column]), else_=table.c[column]) for column in KEPT}
    return statement.on_conflict_do_update(
        index_elements=["id"],
        set_={**kept, "ended": or_(table.c.ended, new.ended), "updated_at": new.updated_at},
    ).returning(
        table.c.id, table.c.snapshot_at, table.c.snapshot_rank, table.c.status, table.c.ended
    )


# Built once: this is every webhook's path.
_PG = {"events": _pg_insert_events(), "calls": _pg_upsert_calls()}
_SQLITE = {"events": _sqlite_insert_events(), "calls": _sqlite_upsert_calls()}


def _run(s: Session, name: str, rows: Sequence[dict[str, Any]]) -> list[Row[Any]]:
    if s.get_bind().dialect.name == "postgresql":
        return list(s.execute(_PG[name], {"rows": as_json(rows)}))
    return list(s.execute(_SQLITE[name], rows))


def insert_events(s: Session, rows: Sequence[dict[str, Any]]) -> list[Row[Any]]:
    """``(id, delivery_key)`` of each row stored; a key already stored is skipped. The rows
    hold ``EVENT_COLUMNS``."""
    return _run(s, "events", rows)


def upsert_calls(s: Session, rows: Sequence[dict[str, Any]]) -> list[Row[Any]]:
    """``(id, snapshot_at, snapshot_rank, status, ended)`` of each call as it now stands. The
    rows hold ``CALL_COLUMNS``."""
    return _run(s, "calls", rows)
