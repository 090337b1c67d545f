"""A Salesforce trigger fired (T01-T05): record the delivery once and queue what it causes.

Until the automation builder lands, what a trigger causes is the brief's defaults: T01 (new
Lead), T02 (new Contact) and T05 (Outbound Message) create the record's Aircall contact (A01).
T03 and T04 deliveries are recorded for the automations that will use them.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.salesforce.outbound import OutboundMessage
from integrations.store.db import insert_ignore
from integrations.store.salesforce_sync import SalesforceDelivery
from integrations.sync import queue

AIRCALL_CONTACT = "aircall_contact"
DEFAULT_ACTIONS: dict[str, tuple[str, ...]] = {
    "T01": (AIRCALL_CONTACT,),
    "T02": (AIRCALL_CONTACT,),
    "T05": (AIRCALL_CONTACT,),
}


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
    for kind in DEFAULT_ACTIONS.get(trigger, ()):
        queue.enqueue(
            s,
            kind=kind,
            key=f"{kind}:{record_id}",
            payload={"trigger": trigger, "sobject": sobject, "id": record_id, "record": record},
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
