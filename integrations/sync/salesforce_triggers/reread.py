"""T05: the records an Outbound Message names, read fresh from Salesforce before anything acts.

The endpoint's URL secret keeps strangers out; this keeps out what a leaked URL could still
send: a notification for a record that does not exist (or no longer does) is dropped, and the
fields are Salesforce's values now, not the message's. One SELECT per object in the message (an
Outbound Message is defined on one object: one query), ids escaped by ``format_soql``.

The endpoint only stores the message as an ``outbound_message`` job and acks it: the read is
the worker's, so Salesforce being slow or down never fails a delivery (the job retries), and
the web tier calls no SaaS.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import BadInput
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.outbound import Notification, OutboundMessage
from integrations.salesforce.soql import api_name
from integrations.store.models import Job
from integrations.sync.jobs import queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import OUTBOUND_MESSAGE
from integrations.sync.salesforce_triggers import delivery


def _as_sent(value: Any) -> str | None:
    """A REST value as an Outbound Message writes it (text; ``Z`` datetimes; nulls as None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.endswith("+0000") and "T" in text:
        return text[:-5] + "Z"
    return text


def _select(sobject: str, notifications: list[Notification]) -> str:
    """The SELECT of the fields the message carries (names checked: the message is input)."""
    names = {name.lower(): name for n in notifications for name in n.fields}
    try:
        fields = [api_name(name) for name in names.values() if name.lower() != "id"]
        api_name(sobject)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    select = ", ".join(["Id", *fields])
    return f"SELECT {select} FROM {sobject} WHERE Id IN {{}}"  # noqa: S608  (names checked)


def fresh(sf: SalesforceClient, message: OutboundMessage) -> OutboundMessage:
    """``message`` with only the notifications whose record exists, holding today's values."""
    by_object: dict[str, list[Notification]] = {}
    for notification in message.notifications:
        by_object.setdefault(notification.sobject, []).append(notification)
    kept: list[Notification] = []
    for sobject, notifications in by_object.items():
        soql = _select(sobject, notifications)
        ids = sorted({n.record_id for n in notifications})
        rows = {row["Id"]: row for row in sf.query(soql, ids)}
        for notification in notifications:
            row = rows.get(notification.record_id)
            if row is None:
                continue  # no such record (or deleted): nothing to sync
            values = {name.lower(): value for name, value in row.items()}
            current = {name: _as_sent(values.get(name.lower())) for name in notification.fields}
            kept.append(replace(notification, fields=current))
    return replace(message, notifications=kept)


def queue_message(engine: Engine, message: OutboundMessage) -> None:
    """Store ``message`` as the job that reads its records, committed before the Ack.

    Salesforce sends a message again until acked: the same notifications make the same key, so
    a copy arriving while the first waits is one job; one arriving later re-reads, and the
    deliveries' own keys store nothing twice."""
    names = ",".join(sorted(n.id for n in message.notifications))
    key = f"{OUTBOUND_MESSAGE}:{hashlib.sha256(names.encode()).hexdigest()[:40]}"
    with Session(engine) as s:
        queue.enqueue(s, kind=OUTBOUND_MESSAGE, key=key, payload=asdict(message))
        s.commit()


def _message(payload: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage(
        organization_id=payload["organization_id"],
        action_id=payload.get("action_id"),
        notifications=[Notification(**n) for n in payload.get("notifications") or []],
    )


async def outbound_message(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: read the message's records (one query per object), then deliver those that exist."""
    message = _message(job.payload)
    current = await ctx.sf(fresh, ctx.salesforce, message)
    stored = await ctx.db(delivery.accept_notifications, ctx.engine, current)
    return {
        "notifications": len(message.notifications),
        "existing": len(current.notifications),
        "new": stored,
    }
