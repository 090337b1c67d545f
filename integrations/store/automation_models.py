"""Tables of automations, field mappings and disposition rules: what a manager edits.

Automations keep every saved version (who, when, what), so a change can be read back and undone.
Each run is a ``Job`` (kind ``automation``) whose ``JobStep`` rows say what was sent and what came
back; ``AutomationEffect`` remembers what a step already did, so a retried run does not do it
twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Automation(SQLModel, table=True):
    """One automation; its definition is the current ``AutomationVersion``."""

    __tablename__ = "automations"

    id: int | None = Field(default=None, primary_key=True)
    # Set on the defaults that ship, so seeding finds them again (and never adds them twice).
    builtin: str | None = Field(default=None, max_length=40, unique=True)
    name: str = Field(max_length=120)
    trigger: str = Field(max_length=40, index=True)  # E12, E13, call.created, T01, ...
    enabled: bool = True
    version: int = 1  # the current version
    updated_at: float = 0.0


class AutomationVersion(SQLModel, table=True):
    """A saved definition: name, trigger, enabled, conditions and ordered actions."""

    __tablename__ = "automation_versions"
    __table_args__ = (
        UniqueConstraint("automation_id", "version", name="uq_automation_versions_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    automation_id: int = Field(foreign_key="automations.id", index=True)
    version: int
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    saved_by: str = Field(max_length=254)
    saved_at: float
    note: str | None = Field(default=None, max_length=255)  # e.g. "restored version 2"


class AutomationEffect(SQLModel, table=True):
    """What one step of a run (or of a disposition) already did: a retry reuses it."""

    __tablename__ = "automation_effects"
    __table_args__ = (UniqueConstraint("scope", "step", name="uq_automation_effects_step"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=120)  # run:<automation>:<event>, disposition:<call>:<key>
    step: str = Field(max_length=40)
    result: Any = Field(default=None, sa_column=Column(JSON))
    created_at: float


class FieldMapping(SQLModel, table=True):
    """The manager's field mapping for one Salesforce object (absent: the shipped default)."""

    __tablename__ = "field_mappings"

    sobject: str = Field(primary_key=True, max_length=80)
    mapping: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=254)
    updated_at: float


class DispositionRule(SQLModel, table=True):
    """A disposition: which call tags mean it, and the org's values it writes."""

    __tablename__ = "disposition_rules"

    key: str = Field(primary_key=True, max_length=40)  # interested, booked, dnc, ...
    name: str = Field(max_length=80)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    lead_status: str | None = Field(default=None, max_length=255)
    contact_status: str | None = Field(default=None, max_length=255)
    opportunity_stage: str | None = Field(default=None, max_length=255)
    # Per disposition: delay_seconds (re-queue), due_days (Task), event_minutes, event_hour, ...
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    updated_by: str = Field(default="callbridge", max_length=254)
    updated_at: float = 0.0


class SuppressedNumber(SQLModel, table=True):
    """A number that asked not to be called (DNC): no outbound action may use it again."""

    __tablename__ = "suppressed_numbers"

    e164: str = Field(primary_key=True, max_length=20)
    record_id: str | None = Field(default=None, max_length=18)
    call_id: int | None = Field(default=None, sa_type=BigInteger)
    reason: str = Field(max_length=80)
    created_at: float
