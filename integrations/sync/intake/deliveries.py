"""Accepting webhooks: each event, its call's newest snapshot and the jobs it causes, in one
transaction committed before Aircall gets its 200. Nothing here calls Salesforce or Aircall.

Deliveries that arrive together are accepted together (``accept_many``): one transaction and a
handful of multi-row statements for the lot, with the same outcome as accepting them one by
one, in order. This is the webhook's hot path (``intake_writer`` feeds it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Engine,
    String,
    bindparam,
    select,
    text,
)
from sqlmodel import Session

from integrations.aircall.events import STATUS_RANK, WebhookEvent
from integrations.phones import to_e164
from integrations.store.models import Call
from integrations.sync.automations import dispatch
from integrations.sync.intake import live
from integrations.sync.intake import rows as rows_sql
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.kinds import LOG_CALL

# Events after which a call's Salesforce Task is written or updated (the handler decides whether
# it is time yet: an unanswered call waits for call.ended); the rest only refresh the snapshot.
LOGGED_EVENTS = {
    "call.answered",
    "call.hungup",
    "call.ended",
    "call.tagged",
    "call.untagged",
    "call.commented",
    "call.voicemail_left",
    "call.comm_assets_generated",
}


@dataclass(frozen=True)
class StoredCall:
    """A call as the intake left it: the newest snapshot and whether call.ended was seen."""

    id: int
    snapshot: dict[str, Any]
    status: str
    ended: bool


def accept(
    engine: Engine,
    event: WebhookEvent,
    *,
    region: str = "US",
    priority: int = kinds.NORMAL,
    log_delay: float = 0.0,
) -> bool:
    """Store one delivery and its work. False when it was already stored (an Aircall retry)."""
    return accept_many(engine, [event], region=region, priority=priority, log_delay=log_delay)[0]


def accept_many(
    bind: Engine | Connection,
    events: Sequence[WebhookEvent],
    *,
    region: str = "US",
    priority: int = kinds.NORMAL,
    log_delay: float = 0.0,
) -> list[bool]:
    """Store deliveries and their work in one transaction; for each, False if already stored.

    ``priority`` is the Task sync's: a backfill's calls go after live work (``kinds.BULK``).
    ``log_delay`` holds the Task sync of an ended call a few seconds, so the comments and tags
    that follow ``call.ended`` ride along in the create instead of costing an update each.
    ``bind`` may be a connection the caller keeps (the writer thread's): no pool round trip.
    """
    now = time.time()
    with Session(bind) as s:
        event_ids = _insert_events(s, events, now)
        fresh = [(e, i) for e, i in zip(events, event_ids, strict=True) if i is not None]
        calls = _keep_newest(s, [e for e, _ in fresh if e.event.startswith("call.")], region, now)
        summaries = _keep_summaries(s, [e for e, _ in fresh if e.event == "summary.created"])
        log_conditions = dispatch.call_job_conditions(s, LOG_CALL)
        with queue.batch(s):
            for event, event_id in fresh:
                call = calls.get(event.call_id) if event.event.startswith("call.") else None
                logged = call if call is not None and _logs(event, call) else None
                if event.event == "summary.created":
                    logged = summaries.get(event.call_id)  # type: ignore[arg-type]
                if logged is not None and dispatch.wants_call_job(log_conditions, logged.snapshot):
                    delay = log_delay if event.event == "call.ended" else 0.0
                    queue.enqueue(
                        s,
                        kind=LOG_CALL,
                        key=f"{LOG_CALL}:{logged.id}",
                        call_id=logged.id,
                        event_id=event_id,
                        priority=priority,
                        run_at=now + delay,
                    )
                # The manager's automations for this trigger (and the disposition rules).
                dispatch.enqueue_for_event(s, event, call, event_id)
        # PostgreSQL tells every process's listeners at commit.
        live.notify(s, sorted({e.call_id for e, _ in fresh if e.call_id is not None}))
        s.commit()
    return [i is not None for i in event_ids]


def _logs(event: WebhookEvent, call: StoredCall) -> bool:
    return event.event in LOGGED_EVENTS and bool(call.ended or call.snapshot.get("answered_at"))


def _insert_events(s: Session, events: Sequence[WebhookEvent], now: float) -> list[int | None]:
    """Each delivery's new row id; None for one already stored (or twice in this batch)."""
    rows, seen = [], set()
    for event in events:
        if event.delivery_key not in seen:
            seen.add(event.delivery_key)
            rows.append(
                {
                    "source": "aircall",
                    "name": event.event,
                    "delivery_key": event.delivery_key,
                    "call_id": event.call_id,
                    "occurred_at": event.timestamp,
                    "received_at": now,
                    "payload": event.stored_json(),
                }
            )
    rows.sort(key=lambda row: row["delivery_key"])  # the same lock order in every writer
    inserted = {key: row_id for row_id, key in rows_sql.insert_events(s, rows)}
    # The first of several identical deliveries in the batch is the one stored.
    return [inserted.pop(event.delivery_key, None) for event in events]


def _newer(event: WebhookEvent, than: WebhookEvent) -> bool:
    """As the database decides it: later envelope, or the same second and a later status."""
    mine = (event.timestamp, STATUS_RANK[event.data["status"]])
    theirs = (than.timestamp, STATUS_RANK[than.data["status"]])
    return mine >= theirs


def _email(value: object) -> str | None:
    """An agent's email as we index it; anything that is not one is left out."""
    if isinstance(value, str) and "@" in value and len(value) <= 254 and value.isprintable():
        return value.strip().lower()
    return None


def _keep_newest(
    s: Session, events: list[WebhookEvent], region: str, now: float
) -> dict[int, StoredCall]:
    """Deliveries come unordered and each carries the whole call: keep the newest one.

    The batch's newest snapshot per call is picked here, then one upsert per call decides
    against the stored one in the database, so two writers at once cannot both win.
    """
    newest: dict[int, WebhookEvent] = {}
    ended: set[int] = set()
    for event in events:
        call_id = event.data["id"]
        if call_id not in newest or _newer(event, newest[call_id]):
            newest[call_id] = event
        if event.event == "call.ended":
            ended.add(call_id)
    if not newest:
        return {}
    rows = []  # in id order: concurrent writers lock the calls in the same order
    for call_id, event in sorted(newest.items()):
        data = event.data
        rows.append(
            {
                "id": call_id,
                "snapshot": event.snapshot_json(),
                "snapshot_at": event.timestamp,
                "snapshot_rank": STATUS_RANK[data["status"]],
                "direction": data["direction"],
                "status": data["status"],
                "e164": to_e164(data.get("raw_digits"), region),
                "agent_email": _email((data.get("user") or {}).get("email")),
                "started_at": data.get("started_at"),
                "duration": data.get("duration") or 0,
                "ended": call_id in ended,
                "sf_requests": 0,
                "updated_at": now,
            }
        )
    kept, older = {}, []
    for row in rows_sql.upsert_calls(s, rows):
        event = newest[row.id]
        if (row.snapshot_at, row.snapshot_rank) == (
            event.timestamp,
            STATUS_RANK[event.data["status"]],
        ):
            # Ours is stored (a tie goes to the newcomer): no need to read it back.
            kept[row.id] = StoredCall(row.id, event.data, row.status, bool(row.ended))
        else:
            older.append(row.id)
    if older:  # this batch's snapshots that a newer stored one beat (out-of-order deliveries)
        for row in s.execute(_STORED_CALLS, {"ids": older}):
            kept[row.id] = StoredCall(row.id, row.snapshot, row.status, bool(row.ended))
    return kept


_STORED_CALLS = select(
    Call.__table__.c.id, Call.__table__.c.snapshot, Call.__table__.c.status, Call.__table__.c.ended
).where(Call.__table__.c.id.in_(bindparam("ids", expanding=True)))


def _keep_summaries(s: Session, events: list[WebhookEvent]) -> dict[int, StoredCall]:
    """Aircall AI's summary of a call we know goes into the call's Task: those calls."""
    kept = {}
    for event in events:
        content = event.data.get("content")
        if event.call_id is None or not isinstance(content, str):
            continue
        row = s.execute(_SET_SUMMARY, {"id": event.call_id, "summary": content[:20000]}).first()
        if row is not None:
            kept[row.id] = StoredCall(row.id, row.snapshot, row.status, bool(row.ended))
    return kept


_SET_SUMMARY = text(
    "UPDATE calls SET ai_summary = :summary WHERE id = :id RETURNING id, snapshot, status, ended"
).columns(id=BigInteger, snapshot=JSON, status=String, ended=Boolean)
