"""A Salesforce trigger fired (T01-T05): record the delivery once and queue what it causes.

What a trigger causes is its enabled automations (``integrations.sync.automations``) whose
object and ``record`` condition match: each becomes one ``automation`` job carrying the record,
queued in the transaction that stores the delivery. An automation that is only a plain Aircall
A01 (the shipped T01/T02/T05 defaults) queues the record's ``aircall_contact`` job instead, one
per record whichever trigger asked first. Disabling those defaults stops Aircall contacts.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.salesforce.outbound import OutboundMessage
from integrations.store.db import insert_ignore
from integrations.store.salesforce_sync import SalesforceDelivery
from integrations.sync.automations import actions, conditions, dispatch
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.kinds import AIRCALL_CONTACT, AUTOMATION


def deliver(
    s: Session,
    engine: Engine,
    *,
    trigger: str,
    dedupe_key: str,
    sobject: str,
    record_id: str,
    record: dict[str, Any],
    stamp: str | None = None,
    notification_id: str | None = None,
    action_id: str | None = None,
) -> bool:
    """Store the delivery and queue its jobs, in the caller's transaction; False if known."""
    inserted = s.execute(
        insert_ignore(
            engine,
            SalesforceDelivery.__table__,
            {
                "trigger": trigger,
                "dedupe_key": dedupe_key,
                "notification_id": notification_id,
                "action_id": action_id,
                "sobject": sobject,
                "record_id": record_id,
                "stamp": stamp,
                "record": record,
                "received_at": time.time(),
            },
        ).returning(SalesforceDelivery.id)
    ).first()
    if inserted is None:
        return False
    delivered = {"trigger": trigger, "sobject": sobject, "id": record_id, "record": record}
    for automation, current in dispatch.for_record(s, trigger, sobject):
        if conditions.unmet_record(current.get("conditions") or {}, record) is not None:
            continue
        if all(actions.record_delegate(step) for step in current["actions"]):
            queue.enqueue(
                s,
                kind=AIRCALL_CONTACT,
                key=f"{AIRCALL_CONTACT}:{record_id}",
                payload={**delivered, "automation": automation.id},
            )
            continue
        queue.enqueue(
            s,
            kind=AUTOMATION,
            key=f"{AUTOMATION}:{automation.id}:sf{inserted.id}",
            payload={
                **delivered,
                "automation": automation.id,
                "version": automation.version,
                "delivery": inserted.id,
                "notification_id": notification_id,
            },
            priority=kinds.BACKGROUND,
        )
    return True


def accept_notifications(engine: Engine, message: OutboundMessage) -> int:
    """T05: every new notification and its jobs in one transaction, committed before the Ack.

    Returns how many were new; a message Salesforce sends again stores nothing.
    """
    stored = 0
    with Session(engine) as s:
        for notification in message.notifications:
            stored += deliver(
                s,
                engine,
                trigger="T05",
                dedupe_key=f"T05:{notification.id}",
                sobject=notification.sobject,
                record_id=notification.record_id,
                record=notification.fields,
                notification_id=notification.id,
                action_id=message.action_id,
            )
        s.commit()
    return stored
