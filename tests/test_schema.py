"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from integrations.store import (  # noqa: F401  (every module with tables)
    accounts,
    automation_models,
    connections,
    db,
    models,
    salesforce_sync,
)
from integrations.sync.review import resync  # noqa: F401  (resync_batches)


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.migrate(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []
