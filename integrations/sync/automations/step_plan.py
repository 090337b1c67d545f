"""What every step is made of: its plan (what it would send), how it executes, and the inputs
the actions share.

A step is planned first, without sending anything (the dry run shows exactly the plan), then
executed with the plan; ``Env`` is what planning needs besides the scope.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import BadInput
from integrations.settings import Settings
from integrations.store.models import Job
from integrations.sync.automations import fieldmap, mapping_store
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.jobs import queue
from integrations.sync.jobs.context import Context

PERSON_PREFIXES = {"003": "Contact", "00Q": "Lead"}


SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


@dataclass
class Env:
    """What planning needs besides the scope: the store (mappings) and the settings."""

    engine: Engine
    settings: Settings
    call_id: int | None = None


@dataclass
class Plan:
    """What a step will send: the service, a short operation name, and the payload."""

    service: str
    operation: str
    sent: Any
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # execution details, not shown


def mapped_fields(params: dict[str, Any], sobject: str, scope: Scope, env: Env) -> dict[str, Any]:
    mapping = (
        mapping_store.load_mapping(env.engine, sobject) if params.get("use_mapping", True) else {}
    )
    fields = fieldmap.apply_mapping(mapping, scope)
    fields.update(fieldmap.apply_mapping(params.get("fields") or {}, scope))
    return fields


def record_id_param(params: dict[str, Any], key: str, scope: Scope) -> Any:
    value = fieldmap.evaluate(params.get(key), scope)
    if isinstance(value, str) and value.startswith("<"):
        return value  # a dry run: an earlier step's id
    if value is None:
        return None
    if not isinstance(value, str) or not SALESFORCE_ID.fullmatch(value):
        raise BadInput(f"{key} is not a Salesforce id: {value!r}")
    return value


def person_sobject(record: Any) -> str | None:
    return PERSON_PREFIXES.get(record[:3]) if isinstance(record, str) else None


def step_call_id(params: dict[str, Any], scope: Scope, env: Env) -> Any:
    """The event's call, or the one the step's ``call`` source names (an Aircall call id)."""
    if "call" not in params:
        return env.call_id
    value = fieldmap.evaluate(params["call"], scope)
    if value is None or (isinstance(value, str) and value.startswith("<")):
        return value  # none, or a dry run's earlier step
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise BadInput(f"call is not an Aircall call id: {value!r}")
    return int(text)


Execute = Callable[[Context, Job, Plan, Env], Awaitable[dict[str, Any]]]


async def enqueue_job(ctx: Context, env: Env, kind: str, key: str, **kwargs: Any) -> None:
    def write() -> None:
        with Session(env.engine) as s:
            queue.enqueue(s, kind=kind, key=key, **kwargs)
            s.commit()

    await ctx.db(write)


def delegate_key(kind: str, call_id: int) -> str:
    return f"{kind}:{call_id}"
