"""Accepting a webhook: the event, the call's newest snapshot and the jobs it causes, in one
transaction, committed before Aircall gets its 200. Nothing here calls Salesforce or Aircall.
"""

from __future__ import annotations

import time

from sqlalchemy import JSON, BigInteger, Boolean, Engine, String, bindparam, text
from sqlmodel import Session

from integrations.aircall.events import STATUS_RANK, WebhookEvent
from integrations.phones import to_e164
from integrations.store.models import Call
from integrations.sync import live, queue

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
    engine: Engine,
    event: WebhookEvent,
    *,
    region: str = "US",
    priority: int = queue.NORMAL,
    log_delay: float = 0.0,
) -> bool:
    """Store the delivery and its work. False when it was already stored (an Aircall retry).

    ``priority`` is the Task sync's: a backfill's calls go after live work (``queue.BULK``).
    ``log_delay`` holds the Task sync of an ended call a few seconds, so the comments and tags
    that follow ``call.ended`` ride along in the create instead of costing an update each.
    A handful of plain statements in one transaction: this is the webhook's hot path.
    """
    now = time.time()
    with Session(engine) as s:
        event_id = s.execute(
            _INSERT_EVENT,
            {
                "source": "aircall",
                "name": event.event,
                "delivery_key": event.delivery_key,
                "call_id": event.call_id,
                "occurred_at": event.timestamp,
                "received_at": now,
                "payload": event.stored(),
            },
        ).scalar()
        if event_id is None:
            return False  # the same delivery again: stored and acted on once
        call = None
        if event.event.startswith("call."):
            call = _keep_newest(s, engine, event, region, now)
            if event.event == "call.answered" and call.status == "answered":
                queue.enqueue(
                    s,
                    kind=INSIGHT_CARD,
                    key=f"{INSIGHT_CARD}:{call.id}",
                    call_id=call.id,
                    event_id=event_id,
                    priority=queue.LIVE,
                )
            if event.event in _LOGGED_EVENTS and (call.ended or call.snapshot.get("answered_at")):
                delay = log_delay if event.event == "call.ended" else 0.0
                _log(s, call.id, event_id, priority, now + delay)
        elif (
            event.event == "summary.created"
            and event.call_id is not None
            and _keep_summary(s, event)
        ):
            _log(s, event.call_id, event_id, priority)
        # The manager's automations for this trigger (and the disposition rules for a tag).
        from integrations.sync import automations  # here: automations imports this module

        automations.enqueue_for_event(s, event, call, event_id)
        if event.call_id is not None:
            live.notify(s, event.call_id)  # PostgreSQL delivers it to listeners at commit
        s.commit()
    return True


def _log(
    s: Session,
    call_id: int,
    event_id: int | None,
    priority: int = queue.NORMAL,
    run_at: float | None = None,
) -> None:
    queue.enqueue(
        s,
        kind=LOG_CALL,
        key=f"{LOG_CALL}:{call_id}",
        call_id=call_id,
        event_id=event_id,
        priority=priority,
        run_at=run_at,
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
    """Deliveries come unordered and each carries the whole call: keep the newest one.

    One upsert decides in the database, so two deliveries for the same call at once cannot
    both win: a snapshot replaces the stored one only if it is as new or newer.
    """
    data = event.data
    user = data.get("user") or {}
    row = s.execute(
        _UPSERT_CALL,
        {
            "id": data["id"],
            "snapshot": data,
            "snapshot_at": event.timestamp,
            "snapshot_rank": STATUS_RANK[data["status"]],
            "direction": data["direction"],
            "status": data["status"],
            "e164": to_e164(data.get("raw_digits"), region),
            "agent_email": _email(user.get("email")),
            "started_at": data.get("started_at"),
            "duration": data.get("duration") or 0,
            "ended": event.event == "call.ended",
            "updated_at": now,
        },
    ).one()
    return Call(id=row.id, snapshot=row.snapshot, status=row.status, ended=bool(row.ended))


# Plain SQL built once: the same text runs on SQLite and PostgreSQL (both have ON CONFLICT,
# EXCLUDED and RETURNING), and this path runs for every webhook.
_INSERT_EVENT = text(
    "INSERT INTO events (source, name, delivery_key, call_id, occurred_at, received_at, payload) "
    "VALUES (:source, :name, :delivery_key, :call_id, :occurred_at, :received_at, :payload) "
    "ON CONFLICT (delivery_key) DO NOTHING RETURNING id"
).bindparams(bindparam("payload", type_=JSON))

_NEWER = (
    "(excluded.snapshot_at > calls.snapshot_at OR (excluded.snapshot_at = calls.snapshot_at "
    "AND excluded.snapshot_rank >= calls.snapshot_rank))"
)
_KEPT = (
    "snapshot",
    "snapshot_at",
    "snapshot_rank",
    "direction",
    "status",
    "e164",
    "agent_email",
    "started_at",
    "duration",
)
_UPSERT_CALL = (
    text(
        # Column names from the constants above: no input reaches this text.
        "INSERT INTO calls (id, snapshot, snapshot_at, snapshot_rank, direction, status, e164, "  # noqa: S608
        "agent_email, started_at, duration, ended, sf_requests, updated_at) VALUES (:id, "
        ":snapshot, :snapshot_at, :snapshot_rank, :direction, :status, :e164, :agent_email, "
        ":started_at, :duration, :ended, 0, :updated_at) ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(
            f"{name} = CASE WHEN {_NEWER} THEN excluded.{name} ELSE calls.{name} END"
            for name in _KEPT
        )
        + ", ended = (calls.ended OR excluded.ended), updated_at = excluded.updated_at "
        "RETURNING id, snapshot, status, ended"
    )
    .bindparams(bindparam("snapshot", type_=JSON), bindparam("ended", type_=Boolean))
    .columns(id=BigInteger, snapshot=JSON, status=String, ended=Boolean)
)
