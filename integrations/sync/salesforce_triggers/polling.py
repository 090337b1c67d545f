"""T01-T04: new and changed Salesforce records found by polling, each delivered exactly once.

Each (trigger, object) keeps a watermark: the newest ``CreatedDate`` (T01-T03) or
``SystemModstamp`` (T04) read. A pass re-reads from ``LOOKBACK_SECONDS`` before it, because a
long Salesforce transaction can commit rows stamped earlier than rows already seen; what was
delivered before is recognised by its key. Pages follow a keyset (``F > t OR (F = t AND
Id > id)``) so records sharing a second are neither skipped nor repeated across pages. Every
page's deliveries, their jobs and the watermark are committed together: a restart resumes from
the watermark and the keys, missing nothing and repeating nothing.

Echoes are not delivered: records Callbridge made (``SyncLink``, ``OwnWrite`` created) never
fire T01-T03, and a change stamped within ``ECHO_SECONDS`` of our own write to the record does
not fire T04.

What is watched: T01 (Lead) and T02 (Contact) always; T03 and T04 for each object of
``SALESFORCE_POLL_OBJECTS`` and for each object an enabled T03/T04 automation names
(``dispatch.record_needs``, read every pass). Besides the fields A01 needs, a pass reads the
fields the enabled automations' conditions and ``record.<Field>`` sources name, when the org's
describe has them (a mistyped name is left out rather than failing the poll), and none that
field-level security hides from the integration user (``salesforce.access``). An object no
longer watched forgets its watermark: enabling its automation again starts from now, not from
where polling stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, select

from integrations.errors import RemoteError
from integrations.salesforce import access
from integrations.salesforce.client import SalesforceClient
from integrations.store.db import insert_ignore
from integrations.store.models import SyncLink
from integrations.store.salesforce_sync import (
    OwnWrite,
    PollWatermark,
    SalesforceDelivery,
)
from integrations.sync.automations import dispatch, mapping_store
from integrations.sync.jobs.context import Context
from integrations.sync.salesforce_triggers.delivery import deliver

log = logging.getLogger(__name__)

PAGE = 200
LOOKBACK_SECONDS = 300.0
ECHO_SECONDS = 5.0  # our write and the SystemModstamp it caused, on two clocks
OWN_WRITES_KEPT = 86400.0
NOTIFICATIONS_KEPT = 7 * 86400.0  # Salesforce may send a message again for 24 hours

# Fields A01 needs; other objects are read with their ids and stamps only.
FIELDS = {
    "Account": ["Name", "Phone"],
    "Lead": ["FirstName", "LastName", "Company", "Email", "Phone", "MobilePhone"],
    "Contact": [
        "FirstName",
        "LastName",
        "Account.Name",
        "Email",
        "Phone",
        "MobilePhone",
        "HomePhone",
        "OtherPhone",
        "AssistantPhone",
    ],
}


@dataclass(frozen=True)
class Watch:
    trigger: str
    sobject: str
    field: str  # CreatedDate or SystemModstamp
    wanted: tuple[str, ...] = ()  # fields automations read, besides ``FIELDS`` (unchecked)

    @property
    def created(self) -> bool:
        return self.field == "CreatedDate"


def watches(
    objects: list[str], needs: dict[tuple[str, str], set[str]] | None = None
) -> list[Watch]:
    """What to poll: T01 and T02 always, T03/T04 per object of the settings and per object
    enabled automations name (``needs``: (trigger, object) -> the fields they read)."""
    wanted: dict[tuple[str, str], set[str]] = {("T01", "Lead"): set(), ("T02", "Contact"): set()}
    for sobject in objects:
        wanted.setdefault(("T03", sobject), set())
        wanted.setdefault(("T04", sobject), set())
    for key, fields in (needs or {}).items():
        wanted.setdefault(key, set()).update(fields)
    return [
        Watch(
            trigger,
            sobject,
            "SystemModstamp" if trigger == "T04" else "CreatedDate",
            tuple(sorted(fields)),
        )
        for (trigger, sobject), fields in wanted.items()
    ]


def parse_stamp(value: str) -> dt.datetime:
    """A REST datetime (``2024-03-01T10:15:30.000+0000``) or our ``Z`` form, in UTC."""
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def soql_datetime(moment: dt.datetime) -> str:
    """An unquoted SOQL datetime literal in the ``Z`` form, whole seconds (rounded down)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_fields(watch: Watch) -> list[str]:
    return ["Id", "CreatedDate", "SystemModstamp", *FIELDS.get(watch.sobject, [])]


async def columns(ctx: Context, watch: Watch) -> list[str]:
    """The fields a pass reads: ``base_fields`` and those automations want that the org has
    (one cached describe, only when some are wanted)."""
    fields = base_fields(watch)
    have = {name.lower() for name in fields}
    extra = [name for name in watch.wanted if name.lower() not in have]
    if not extra:
        return fields
    described = mapping_store.fields_by_name(
        await ctx.sf(mapping_store.describe, ctx.salesforce, watch.sobject)
    )
    found = [described[name.lower()]["name"] for name in extra if name.lower() in described]
    return fields + list(dict.fromkeys(found))


def page_query(
    watch: Watch,
    after: tuple[dt.datetime, str] | None,
    start: dt.datetime,
    fields: list[str] | None = None,
) -> tuple:
    """SOQL (and its escaped arguments) for the page after the keyset ``after``."""
    fields = fields or base_fields(watch)
    # Names come from FIELDS, from settings and definitions checked to be API names, and from
    # the org's describe; values are escaped.
    head = f"SELECT {', '.join(dict.fromkeys(fields))} FROM {watch.sobject} WHERE "  # noqa: S608
    tail = f" ORDER BY {watch.field}, Id LIMIT {PAGE}"
    f = watch.field
    if after is None:
        return (head + f"{f} >= {{:literal}}" + tail, soql_datetime(start))
    stamp, last_id = after
    literal = soql_datetime(stamp)
    return (
        head + f"{f} > {{:literal}} OR ({f} = {{:literal}} AND Id > {{}})" + tail,
        literal,
        literal,
        last_id,
    )


def read_page(
    sf: SalesforceClient,
    watch: Watch,
    after: tuple[dt.datetime, str] | None,
    start: dt.datetime,
    fields: list[str],
) -> list[dict[str, Any]]:
    """One page, without the fields the integration user cannot see (``access``): a field
    hidden by field-level security must not stop the trigger."""
    return access.retry_once(
        sf,
        lambda: sf.query(
            *page_query(watch, after, start, access.visible(sf, watch.sobject, fields))
        ),
        watch.sobject,
    )


def _start(engine: Engine, watch: Watch) -> dt.datetime:
    with Session(engine) as s:
        mark = s.get(PollWatermark, (watch.trigger, watch.sobject))
        stamp = mark.stamp if mark and mark.stamp else None
    base = parse_stamp(stamp) if stamp else dt.datetime.now(dt.UTC)
    return base - dt.timedelta(seconds=LOOKBACK_SECONDS)


def _ours(s: Session, watch: Watch, rows: list[dict[str, Any]]) -> set[str]:
    """Ids among ``rows`` whose creation or change (per the trigger) Callbridge made."""
    ids = [row["Id"] for row in rows]
    mine = set(s.exec(select(SyncLink.record_id).where(SyncLink.record_id.in_(ids))))
    writes = s.exec(select(OwnWrite).where(OwnWrite.record_id.in_(ids))).all()
    stamps = {row["Id"]: parse_stamp(row["SystemModstamp"]).timestamp() for row in rows}
    for write in writes:
        if watch.created:
            echo = write.created
        else:
            echo = abs(stamps[write.record_id] - write.written_at) <= ECHO_SECONDS
        if echo:
            mine.add(write.record_id)
    return mine


def _save_page(engine: Engine, watch: Watch, rows: list[dict[str, Any]]) -> int:
    """Deliver a page's new records and move the watermark, in one transaction."""
    delivered = 0
    newest = soql_datetime(parse_stamp(rows[-1][watch.field]))
    with Session(engine) as s:
        ours = _ours(s, watch, rows)
        for row in rows:
            if row["Id"] in ours:
                continue
            if not watch.created and row["SystemModstamp"] == row["CreatedDate"]:
                continue  # never changed since it was made: T03's to report, not T04's
            stamp = soql_datetime(parse_stamp(row[watch.field]))
            key = f"{watch.trigger}:{row['Id']}" + ("" if watch.created else f":{stamp}")
            record = {k: v for k, v in row.items() if k != "attributes"}
            delivered += deliver(
                s,
                engine,
                trigger=watch.trigger,
                dedupe_key=key,
                sobject=watch.sobject,
                record_id=row["Id"],
                record=record,
                stamp=stamp,
            )
        _mark(s, engine, watch, newest, None)
        s.commit()
    return delivered


def _mark(s: Session, engine: Engine, watch: Watch, stamp: str | None, error: str | None) -> None:
    """Record a pass; the stamp only ever moves forward (two pollers may race)."""
    now = time.time()
    s.execute(
        insert_ignore(
            engine,
            PollWatermark.__table__,
            {"trigger": watch.trigger, "sobject": watch.sobject, "stamp": None, "polled_at": now},
        )
    )
    key = (PollWatermark.trigger == watch.trigger) & (PollWatermark.sobject == watch.sobject)
    s.execute(update(PollWatermark).where(key).values(polled_at=now, last_error=error))
    if stamp is not None:
        s.execute(
            update(PollWatermark)
            .where(key, (PollWatermark.stamp.is_(None)) | (PollWatermark.stamp < stamp))
            .values(stamp=stamp)
        )


def _finish(engine: Engine, watch: Watch, error: str | None) -> None:
    """Note how the pass ended and forget keys no later pass can read again."""
    with Session(engine) as s:
        _mark(s, engine, watch, None, error)
        mark = s.get(PollWatermark, (watch.trigger, watch.sobject))
        if mark is not None and mark.stamp:
            horizon = soql_datetime(
                parse_stamp(mark.stamp) - dt.timedelta(seconds=2 * LOOKBACK_SECONDS)
            )
            s.execute(
                delete(SalesforceDelivery).where(
                    SalesforceDelivery.trigger == watch.trigger,
                    SalesforceDelivery.sobject == watch.sobject,
                    SalesforceDelivery.stamp < horizon,
                )
            )
        s.commit()


def _prune(engine: Engine) -> None:
    now = time.time()
    with Session(engine) as s:
        s.execute(delete(OwnWrite).where(OwnWrite.written_at < now - OWN_WRITES_KEPT))
        s.execute(
            delete(SalesforceDelivery).where(
                SalesforceDelivery.trigger == "T05",
                SalesforceDelivery.received_at < now - NOTIFICATIONS_KEPT,
            )
        )
        s.commit()


async def poll_watch(ctx: Context, watch: Watch) -> int:
    """One pass over one (trigger, object), every page up to now; returns deliveries made.

    A failure ends the pass and is kept on the watermark; pages already saved stay delivered
    and the next pass carries on from them.
    """
    delivered, error = 0, None
    try:
        start = await ctx.db(_start, ctx.engine, watch)
        fields = await columns(ctx, watch)
        after: tuple[dt.datetime, str] | None = None
        while True:
            rows = await ctx.sf(read_page, ctx.salesforce, watch, after, start, fields)
            if not rows:
                break
            delivered += await ctx.db(_save_page, ctx.engine, watch, rows)
            last = (parse_stamp(rows[-1][watch.field]), rows[-1]["Id"])
            if len(rows) < PAGE or last == after:
                break
            after = last
    except Exception as exc:  # kept on the watermark; the next pass tries again
        error = f"{type(exc).__name__}: {exc}"[:2000]
        unexpected = not isinstance(exc, RemoteError)
        log.warning(
            "poll.failed",
            extra={"trigger": watch.trigger, "sobject": watch.sobject, "error": error},
            exc_info=unexpected,
        )
    await ctx.db(_finish, ctx.engine, watch, error)
    return delivered


def _forget_unwatched(engine: Engine, watched: set[tuple[str, str]]) -> None:
    """Drop the watermarks (and delivery keys) of T03/T04 objects nothing watches any more."""
    with Session(engine) as s:
        marks = s.exec(select(PollWatermark).where(PollWatermark.trigger.in_(("T03", "T04"))))
        for mark in [m for m in marks if (m.trigger, m.sobject) not in watched]:
            s.execute(
                delete(SalesforceDelivery).where(
                    SalesforceDelivery.trigger == mark.trigger,
                    SalesforceDelivery.sobject == mark.sobject,
                )
            )
            s.delete(mark)
        s.commit()


async def poll_once(ctx: Context) -> dict[str, int]:
    """Poll every watched (trigger, object) once; one failing does not stop the others."""
    needs = await ctx.db(dispatch.record_needs, ctx.engine)
    found = watches(ctx.settings.salesforce_poll_objects, needs)
    await ctx.db(_forget_unwatched, ctx.engine, {(w.trigger, w.sobject) for w in found})
    counts = {f"{watch.trigger}:{watch.sobject}": await poll_watch(ctx, watch) for watch in found}
    await ctx.db(_prune, ctx.engine)
    return counts


async def run(ctx: Context, stopping: asyncio.Event) -> None:
    """Poll every ``SALESFORCE_POLL_SECONDS`` until ``stopping`` is set (started by the worker)."""
    interval = ctx.settings.salesforce_poll_seconds
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
        if not stopping.is_set():
            await poll_once(ctx)
