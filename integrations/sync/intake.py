"""Accepting a webhook: the event, the call's newest snapshot and the jobs it causes, in one
transaction, committed before Aircall gets its 200. Nothing here calls Salesforce or Aircall.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from integrations.aircall.events import STATUS_RANK, WebhookEvent
from integrations.phones import to_e164
from integrations.store.db import insert_ignore, is_postgres
from integrations.store.models import Call, Event
from integrations.sync import queue

LOG_CALL = "log_call"
INSIGHT_CARD = "insight_card"
# Events after which a call's Salesforce Task is written or updated (the handler decides whether
# it is time yet: an unanswered call waits for call.ended); the rest only refresh the snapshot.
_LOGGED_EVENTS = {
    "call.answered",
    "call.hungup",
    "call.ended",
    "call.tagged",
    "call.untagged",
    "call.commented",
    "call.voicemail_left",
    "call.comm_assets_generated",
}


def accept(
    engine: Engine, event: WebhookEvent, *, region: str = "US", priority: int = queue.NORMAL
) -> bool:
    """Store the delivery and its work. False when it was already stored (an Aircall retry).

    ``priority`` is the Task sync's: a backfill's calls go after live work (``queue.BULK``).
    """
    now = time.time()
    with Session(engine) as s:
        row = Event(
            source="aircall",
            name=event.event,
            delivery_key=event.delivery_key,
            call_id=event.call_id,
            occurred_at=event.timestamp,
            received_at=now,
            payload=event.stored(),
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
            return False
        if event.event.startswith("call."):
            call = _keep_newest(s, engine, event, region, now)
            if event.event == "call.answered" and call.status == "answered":
                queue.enqueue(
                    s,
                    kind=INSIGHT_CARD,
                    key=f"{INSIGHT_CARD}:{call.id}",
                    call_id=call.id,
                    event_id=row.id,
                    priority=queue.LIVE,
                )
            if event.event in _LOGGED_EVENTS and (call.ended or call.snapshot.get("answered_at")):
                _log(s, call.id, row.id, priority)
        elif (
            event.event == "summary.created"
            and event.call_id is not None
            and _keep_summary(s, event)
        ):
            _log(s, event.call_id, row.id, priority)
        # The manager's automations for this trigger (and the disposition rules for a tag).
        from integrations.sync import automations  # here: automations imports this module

        call_row = s.get(Call, event.call_id) if event.event.startswith("call.") else None
        automations.enqueue_for_event(s, event, call_row, row.id)
        s.commit()
    return True


def _log(s: Session, call_id: int, event_id: int | None, priority: int = queue.NORMAL) -> None:
    queue.enqueue(
        s,
        kind=LOG_CALL,
        key=f"{LOG_CALL}:{call_id}",
        call_id=call_id,
        event_id=event_id,
        priority=priority,
    )


def _keep_summary(s: Session, event: WebhookEvent) -> bool:
    """Aircall AI's summary of a call we know: it goes into the call's Task."""
    content = event.data.get("content")
    call = s.get(Call, event.call_id)
    if call is None or not isinstance(content, str):
        return False
    call.ai_summary = content[:20000]
    s.add(call)
    return True


def _email(value: object) -> str | None:
    """An agent's email as we index it; anything that is not one is left out."""
    if isinstance(value, str) and "@" in value and len(value) <= 254 and value.isprintable():
        return value.strip().lower()
    return None


def _keep_newest(s: Session, engine: Engine, event: WebhookEvent, region: str, now: float) -> Call:
    """Deliveries come unordered and each carries the whole call: keep the newest one."""
    data = event.data
    rank = STATUS_RANK[data["status"]]
    s.execute(
        insert_ignore(
            engine,
            Call.__table__,
            {"id": data["id"], "snapshot": data, "snapshot_at": -1, "updated_at": now},
        )
    )
    query = select(Call).where(Call.id == data["id"])
    if is_postgres(engine):
        query = query.with_for_update()
    call = s.execute(query).scalar_one()
    if event.event == "call.ended":
        call.ended = True
    if (event.timestamp, rank) >= (call.snapshot_at, call.snapshot_rank):
        user = data.get("user") or {}
        call.snapshot = data
        call.snapshot_at, call.snapshot_rank = event.timestamp, rank
        call.direction, call.status = data["direction"], data["status"]
        call.e164 = to_e164(data.get("raw_digits"), region)
        call.agent_email = _email(user.get("email"))
        call.started_at = data.get("started_at")
        call.duration = data.get("duration") or 0
    call.updated_at = now
    s.add(call)
    return call
