"""Connections made from the browser (Salesforce's refresh token, Aircall's API key, the token
of the webhook Callbridge registered): one row each, the secret part sealed by ``SecretBox``.

``details`` holds what may be shown (who connected, the org, the instance): never a secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, Engine
from sqlmodel import Field, Session, SQLModel

from integrations.secrets import SecretBox
from integrations.store.db import upsert

SALESFORCE = "salesforce"
AIRCALL = "aircall"
AIRCALL_WEBHOOK = "aircall_webhook"


class StoredConnection(SQLModel, table=True):
    __tablename__ = "connections"

    name: str = Field(primary_key=True, max_length=40)
    sealed: str = ""  # the SecretBox text of the secret part; "" when there is none
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: float = 0.0
    updated_by: str = Field(default="", max_length=254)


@dataclass(frozen=True)
class Connection:
    name: str
    secret: dict[str, Any]
    details: dict[str, Any]
    updated_at: float
    updated_by: str

    def __repr__(self) -> str:  # never print the secret
        return f"Connection(name={self.name!r}, details={self.details!r})"


def save(
    engine: Engine,
    box: SecretBox,
    name: str,
    secret: dict[str, Any],
    details: dict[str, Any],
    by: str = "",
) -> None:
    row = StoredConnection(
        name=name,
        sealed=box.seal(secret) if secret else "",
        details=details,
        updated_at=time.time(),
        updated_by=by,
    )
    with Session(engine) as s:
        upsert(s, row)
        s.commit()


def update_details(engine: Engine, name: str, **changes: Any) -> None:
    """Merge ``changes`` into a stored connection's details (no decryption needed)."""
    with Session(engine) as s:
        row = s.get(StoredConnection, name)
        if row is not None:
            row.details = {**row.details, **changes}
            s.add(row)
            s.commit()


def details(engine: Engine, name: str) -> dict[str, Any] | None:
    """What may be shown of a connection, or None when there is none."""
    with Session(engine) as s:
        row = s.get(StoredConnection, name)
        return dict(row.details) if row is not None else None


def load(engine: Engine, box: SecretBox, name: str) -> Connection | None:
    with Session(engine) as s:
        row = s.get(StoredConnection, name)
        if row is None:
            return None
        secret = box.open(row.sealed) if row.sealed else {}
        return Connection(row.name, secret, dict(row.details), row.updated_at, row.updated_by)


def delete(engine: Engine, name: str) -> None:
    with Session(engine) as s:
        row = s.get(StoredConnection, name)
        if row is not None:
            s.delete(row)
            s.commit()
