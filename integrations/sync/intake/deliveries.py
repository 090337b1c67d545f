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

from sqlalchemy import JSON, BigInteger, Boolean, Engine, String, and_, case, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from integrations.aircall.events import STATUS_RANK, WebhookEvent
from integrations.phones import to_e164
from integrations.store.models import Call, Event
from integrations.sync.automations import dispatch
from integrations.sync.intake import live
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
    engine: Engine,
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
    """
    now = time.time()
    with Session(engine) as s:
        event_ids = _insert_events(s, events, now)
        fresh = [(e, i) for e, i in zip(events, event_ids, strict=True) if i is not None]
        calls = _keep_newest(s, [e for e, _ in fresh if e.event.startswith("call.")], region, now)
        summaries = _keep_summaries(s, [e for e, _ in fresh if e.event == "summary.created"])
        with queue.batch(s):
            for event, event_id in fresh:
                call = calls.get(event.call_id) if event.event.startswith("call.") else None
                logged = call if call is not None and _logs(event, call) else None
                if event.event == "summary.created":
                    logged = summaries.get(event.call_id)  # type: ignore[arg-type]
                if logged is not None and dispatch.wants_call_job(s, LOG_CALL, logged.snapshot):
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


def _dialect(s: Session) -> Any:
    return postgresql if s.get_bind().dialect.name == "postgresql" else sqlite


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
                    "payload": event.stored(),
                }
            )
    rows.sort(key=lambda row: row["delivery_key"])  # the same lock order in every writer
    inserted = dict((key, row_id) for row_id, key in s.execute(_insert(_dialect(s)), rows))
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
                "snapshot": data,
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
    result = s.execute(_upsert_calls(_dialect(s)), rows)
    return {row.id: StoredCall(row.id, row.snapshot, row.status, bool(row.ended)) for row in result}


_STATEMENTS: dict[tuple[str, str], Any] = {}  # built once per dialect: this path is hot


def _insert(dialect: Any) -> Any:
    """``INSERT ... ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key``."""
    key = ("insert_events", dialect.__name__)
    if key not in _STATEMENTS:
        table = Event.__table__
        _STATEMENTS[key] = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["delivery_key"])
            .returning(table.c.id, table.c.delivery_key)
        )
    return _STATEMENTS[key]


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


def _upsert_calls(dialect: Any) -> Any:
    """``INSERT ... ON CONFLICT (id) DO UPDATE``: a snapshot replaces the stored one only if
    it is as new or newer; ``ended`` once seen stays. Built once per dialect."""
    key = ("upsert_calls", dialect.__name__)
    if key not in _STATEMENTS:
        table = Call.__table__
        statement = dialect.insert(table)
        new = statement.excluded
        newer = or_(
            new.snapshot_at > table.c.snapshot_at,
            and_(
                new.snapshot_at == table.c.snapshot_at,
                new.snapshot_rank >= table.c.snapshot_rank,
            ),
        )
        kept = {column: case((newer, new[column]), else_=table.c[column]) for column in _KEPT}
        _STATEMENTS[key] = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={**kept, "ended": or_(table.c.ended, new.ended), "updated_at": new.updated_at},
        ).returning(table.c.id, table.c.snapshot, table.c.status, table.c.ended)
    return _STATEMENTS[key]


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
