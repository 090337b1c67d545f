"""Make a database ready to serve: migrations applied, then the default automations present."""

from __future__ import annotations

from sqlalchemy import Engine

from integrations.store import db
from integrations.sync import automations


def prepare(engine: Engine) -> None:
    """Idempotent: safe on every start of every process."""
    db.migrate(engine)
    automations.seed_defaults(engine)
