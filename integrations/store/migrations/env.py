"""Alembic environment: the engine comes from Callbridge (``db.migrate``), never from a URL here."""

from alembic import context
from sqlmodel import SQLModel

from integrations.store import connections, models, salesforce_sync  # noqa: F401  (tables)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
