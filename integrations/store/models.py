"""The tables. Every piece of work is a row, so a restart or a killed worker loses nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Event(SQLModel, table=True):
    """A webhook delivery as received (minus its token), stored before we answer 200."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20)  # aircall | salesforce
    name: str = Field(max_length=80)  # call.ended, contact.created, ...
    delivery_key: str = Field(max_length=64, unique=True)  # sha256 of the delivery: retries collide
    call_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    occurred_at: int = Field(default=0, sa_type=BigInteger)  # the envelope's timestamp (UNIX s)
    received_at: float
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Call(SQLModel, table=True):
    """The newest snapshot of an Aircall call, plus what we derived from it."""

    __tablename__ = "calls"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    snapshot_at: int = Field(default=0, sa_type=BigInteger)  # envelope timestamp of the snapshot
    snapshot_rank: int = 0  # status order, breaks ties between events of the same second
    direction: str = Field(default="", max_length=10)
    status: str = Field(default="", max_length=10)
    e164: str | None = Field(default=None, max_length=20, index=True)
    agent_email: str | None = Field(default=None, max_length=254, index=True)
    started_at: int | None = Field(default=None, sa_type=BigInteger, index=True)
    duration: int = 0
    ended: bool = False  # call.ended seen: the call's data is complete and it can be logged
    ai_summary: str | None = None  # Aircall AI's summary.created text, when it came
    sf_requests: int = 0  # Salesforce API requests spent on this call
    updated_at: float = 0.0


class Job(SQLModel, table=True):
    """Durable work: claimed with a lease, retried with backoff, parked with the remote's error."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "priority", "run_at"),
        # At most one unfinished job per key (e.g. one Task sync per call at a time).
        Index(
            "uq_jobs_active_key",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    dedupe_key: str = Field(max_length=120)
    call_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    event_id: int | None = Field(default=None, foreign_key="events.id")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    priority: int = 5  # 0 = live-call work first; 9 = bulk re-sync
    status: str = Field(default="queued", max_length=10)  # queued | running | done | failed
    rerun: bool = False  # new data arrived while running: run once more after this attempt
    attempts: int = 0
    run_at: float = 0.0
    lease_until: float | None = None
    worker: str | None = Field(default=None, max_length=80)
    error_code: str | None = Field(default=None, max_length=80)
    last_error: str | None = None  # the remote's body, verbatim, for the manager
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: float = 0.0
    finished_at: float | None = None


class JobStep(SQLModel, table=True):
    """What one job attempt sent to a SaaS and what came back: the call's timeline."""

    __tablename__ = "job_steps"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="jobs.id", index=True)
    call_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    at: float
    service: str = Field(max_length=20)
    action: str = Field(max_length=80)
    sent: Any = Field(default=None, sa_column=Column(JSON))
    received: Any = Field(default=None, sa_column=Column(JSON))
    ok: bool = True


class SyncLink(SQLModel, table=True):
    """The Salesforce record an action made for a call: the proof it must not be made again."""

    __tablename__ = "sync_links"
    __table_args__ = (UniqueConstraint("call_id", "action", name="uq_sync_links_call_action"),)

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(sa_type=BigInteger)
    action: str = Field(max_length=10)  # catalogue code, e.g. A09
    sobject: str = Field(max_length=80)
    record_id: str = Field(max_length=18)
    created_at: float
    # The values we last wrote: an update sends only what changed on our side, so edits made
    # in Salesforce (an agent's notes, a corrected subject) are never overwritten.
    written: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class CallerMatch(SQLModel, table=True):
    """Salesforce records found for a caller's E.164 number, cached so later events skip SOSL."""

    __tablename__ = "caller_matches"

    e164: str = Field(primary_key=True, max_length=20)
    matches: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    fetched_at: float
    pinned: bool = False  # a person picked the record for this number: it never expires


class AgentUser(SQLModel, table=True):
    """The Salesforce User whose email is an Aircall agent's (None: no such user)."""

    __tablename__ = "agent_users"

    email: str = Field(primary_key=True, max_length=254)
    sf_user_id: str | None = Field(default=None, max_length=18)
    fetched_at: float
    name: str | None = Field(default=None, max_length=255)  # the Aircall agent's name
    manual: bool = False  # set by a manager: never replaced by the lookup by email


class RateWindow(SQLModel, table=True):
    """Requests spent in one minute of a shared budget (Aircall: 120/min for the company)."""

    __tablename__ = "rate_windows"

    name: str = Field(primary_key=True, max_length=40)
    window: int = Field(primary_key=True, sa_type=BigInteger)  # UNIX minute
    used: int = 0
    blocked_until: float = 0.0  # the service told us to wait (429 + reset)


class ApiUsage(SQLModel, table=True):
    """The org's daily API usage as last reported by ``Sforce-Limit-Info``."""

    __tablename__ = "api_usage"

    service: str = Field(primary_key=True, max_length=20)
    used: int = 0
    max: int = 0
    updated_at: float = 0.0


class OrgFact(SQLModel, table=True):
    """Facts about the Salesforce org read once and reused (e.g. its time zone)."""

    __tablename__ = "org_facts"

    key: str = Field(primary_key=True, max_length=80)
    value: str = Field(max_length=255)
    fetched_at: float


class CreationLock(SQLModel, table=True):
    """Who may create a Salesforce record for a number right now (creation is serialised)."""

    __tablename__ = "creation_locks"

    key: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=80)
    until: float
