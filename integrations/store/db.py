"""The database engine from ``DATABASE_URL``, migrations, and the few dialect differences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from integrations import safejson

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned per dialect: SQLite in WAL mode with a busy timeout, PostgreSQL pooled.

    JSON columns are written by ``safejson.dumps``: no NaN or lone surrogate reaches a row, so
    both databases' JSON functions (and the pages built on them) can always read it."""
    kwargs.setdefault("json_serializer", safejson.dumps)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a crash of the process (not of the machine).
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def insert_ignore(engine: Engine, table: Any, values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the engine's dialect."""
    dialect = postgresql if is_postgres(engine) else sqlite
    return dialect.insert(table).values(**values).on_conflict_do_nothing()


def upsert(s: Session, row: SQLModel) -> None:
    """Insert ``row``, or overwrite the stored row with the same primary key.

    One statement (``ON CONFLICT DO UPDATE``), so two workers writing the same key at once
    cannot fail on each other as ``Session.merge`` (read, then insert) does.
    """
    table = type(row).__table__
    values = {c.name: getattr(row, c.name) for c in table.columns}
    keys = [c.name for c in table.primary_key.columns]
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in values if name not in keys},
    )
    s.execute(statement)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Apply every migration not yet applied."""
    command.upgrade(_alembic_config(engine), "heads")


def is_current(engine: Engine) -> bool:
    """True when the database is reachable and at the newest migrations."""
    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads
