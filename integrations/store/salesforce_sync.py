"""Tables of the Salesforce triggers (T01-T05) and of the Aircall contacts they cause (A01)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, Session, SQLModel


class SalesforceDelivery(SQLModel, table=True):
    """A Salesforce record that fired a trigger, once: the row is the proof it was delivered.

    Stored in the transaction that queues the work it causes, so a crash or a repeated read
    (polling lookback, an Outbound Message sent again) can neither lose nor repeat it.
    """

    __tablename__ = "salesforce_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    trigger: str = Field(max_length=3)  # T01 … T05
    dedupe_key: str = Field(max_length=120, unique=True)  # T01:<id>, T04:<id>:<stamp>, T05:<n id>
    notification_id: str | None = Field(default=None, max_length=18, unique=True)  # T05 only
    action_id: str | None = Field(default=None, max_length=18)  # T05: the Outbound Message action
    sobject: str = Field(max_length=80)
    record_id: str = Field(max_length=18, index=True)
    stamp: str | None = Field(
        default=None, max_length=20
    )  # polling: the CreatedDate/SystemModstamp
    record: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: float


class PollWatermark(SQLModel, table=True):
    """How far polling has read one trigger's object (the newest stamp seen), and how it went."""

    __tablename__ = "salesforce_poll_watermarks"

    trigger: str = Field(primary_key=True, max_length=3)
    sobject: str = Field(primary_key=True, max_length=80)
    stamp: str | None = Field(default=None, max_length=20)  # 2024-03-01T10:15:30Z
    polled_at: float = 0.0
    last_error: str | None = None


class OwnWrite(SQLModel, table=True):
    """A Salesforce record Callbridge just created or changed: its triggers must not fire back.

    Writers call :func:`note_write`. Records linked to a call (``SyncLink``) count as ours too.
    """

    __tablename__ = "salesforce_own_writes"

    id: int | None = Field(default=None, primary_key=True)
    sobject: str = Field(max_length=80)
    record_id: str = Field(max_length=18, index=True)
    created: bool  # True: we made the record (T01-T03 ignore it); False: we changed it (T04)
    written_at: float = Field(index=True)


class AircallContactLink(SQLModel, table=True):
    """The Aircall contact that stands for a Salesforce record (made by A01, or found by phone)."""

    __tablename__ = "aircall_contact_links"

    record_id: str = Field(primary_key=True, max_length=18)
    sobject: str = Field(max_length=80)
    contact_id: int = Field(sa_type=BigInteger, index=True)
    created: bool  # False: an Aircall contact with the same number already existed
    linked_at: float


class AircallPhoneClaim(SQLModel, table=True):
    """A number an A01 job is creating a contact for: two records sharing it make one contact."""

    __tablename__ = "aircall_phone_claims"

    e164: str = Field(primary_key=True, max_length=20)
    record_id: str = Field(max_length=18)
    claimed_at: float


def note_write(s: Session, sobject: str, record_id: str, *, created: bool) -> None:
    """Remember a write we made (in the writer's transaction) so that polling skips its echo."""
    s.add(OwnWrite(sobject=sobject, record_id=record_id, created=created, written_at=time.time()))
