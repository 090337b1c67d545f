"""A01: the Aircall contact of a Salesforce record, made once and remembered.

Run as a step of an automation on a Salesforce trigger (``aircall:A01``), or as the
``aircall_contact`` job such a step delegates to when it has nothing to customise (the shipped
T01/T02/T05 automations). A record is linked to one Aircall contact (``AircallContactLink``).
Before creating, every number the record has is claimed in the database, so two records sharing
a number (a Lead and its Contact, polled together) do not race each other into two contacts:
the second waits, then finds the first one's contact by phone.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from integrations.aircall import actions
from integrations.errors import RemoteRejected, RemoteUnavailable
from integrations.store.db import insert_ignore
from integrations.store.models import Job
from integrations.store.salesforce_sync import AircallContactLink, AircallPhoneClaim
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import AIRCALL_CONTACT, KINDS

ACTION = KINDS[AIRCALL_CONTACT].code  # "A01"
# What an automation step may set on the contact besides the record's numbers and id.
CONTACT_FIELDS = ("first_name", "last_name", "company_name", "email")
CLAIM_SECONDS = 60.0  # a claim older than this belongs to a job that died: it may be taken over
WAIT_SECONDS = 2.0  # how long a job waits for another record's create on a shared number


def _linked(ctx: Context, record_id: str) -> int | None:
    with Session(ctx.engine) as s:
        link = s.get(AircallContactLink, record_id)
        return link.contact_id if link else None


def _claim(ctx: Context, record_id: str, numbers: list[str]) -> str | None:
    """Claim the numbers for this record; a number another live job holds is returned."""
    now = time.time()
    with Session(ctx.engine) as s:
        for number in numbers:
            s.execute(
                insert_ignore(
                    ctx.engine,
                    AircallPhoneClaim.__table__,
                    {"e164": number, "record_id": record_id, "claimed_at": now},
                )
            )
        s.execute(  # take over claims whose job died
            update(AircallPhoneClaim)
            .where(
                AircallPhoneClaim.e164.in_(numbers),
                AircallPhoneClaim.claimed_at < now - CLAIM_SECONDS,
            )
            .values(record_id=record_id, claimed_at=now)
        )
        busy = s.exec(
            select(AircallPhoneClaim.e164).where(
                AircallPhoneClaim.e164.in_(numbers), AircallPhoneClaim.record_id != record_id
            )
        ).first()
        s.commit()
        return busy


def _link(ctx: Context, sobject: str, record_id: str, contact_id: int, created: bool) -> None:
    with Session(ctx.engine) as s:
        s.add(
            AircallContactLink(
                record_id=record_id,
                sobject=sobject,
                contact_id=contact_id,
                created=created,
                linked_at=time.time(),
            )
        )
        try:
            s.commit()
        except IntegrityError:
            s.rollback()  # linked by an earlier attempt that lost its answer
    _release(ctx, record_id)


def _release(ctx: Context, record_id: str) -> None:
    with Session(ctx.engine) as s:
        s.execute(delete(AircallPhoneClaim).where(AircallPhoneClaim.record_id == record_id))
        s.commit()


async def _fields(
    ctx: Context, job: Job | None, sobject: str, record_id: str, record: dict
) -> dict | None:
    """The record's fields, fetched when the trigger carried no phone field (None: deleted).

    An Outbound Message carries only the fields its admin picked and leaves out empty ones, so
    a message without a phone field may still be about a record with a number.
    """
    if actions.phone_fields(record):
        return record
    try:
        fetched = await ctx.sf(ctx.salesforce.get, sobject, record_id)
    except RemoteRejected as exc:
        if exc.status == 404:
            await _note(ctx, job, "salesforce", f"get {sobject}", record_id, exc.body, ok=False)
            return None
        raise
    await _note(ctx, job, "salesforce", f"get {sobject}", record_id, {"Id": fetched.get("Id")})
    return {**record, **{key: value for key, value in fetched.items() if key != "attributes"}}


async def _note(
    ctx: Context,
    job: Job | None,
    service: str,
    action: str,
    sent: Any,
    received: Any,
    ok: bool = True,
) -> None:
    """A timeline entry, when the job keeps its own (an automation step is recorded whole)."""
    if job is not None:
        await ctx.record(job, service, action, sent, received, ok)


def _skipped(reason: str, **extra: Any) -> dict[str, Any]:
    return {"action": ACTION, "skipped": reason, **extra}


def customise(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The contact ``body`` with an automation's values (``CONTACT_FIELDS``) in place."""
    changed = dict(body)
    for key, value in overrides.items():
        if key == "email":
            if isinstance(value, str) and "@" in value:
                changed["emails"] = [{"label": "Office", "value": value.strip()}]
        elif key in CONTACT_FIELDS and value not in (None, ""):
            changed[key] = str(value)
    return changed


async def record_contact(
    ctx: Context,
    job: Job,
    sobject: str,
    record_id: str,
    record: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    *,
    timeline: bool = True,
) -> dict[str, Any]:
    """A01 for one record: link, or find by phone, or create (``overrides`` set its names).

    ``timeline=False``: the caller records the outcome (an automation records each step).
    """
    noted = job if timeline else None
    linked = await ctx.db(_linked, ctx, record_id)
    if linked is not None:
        return _skipped("already linked to an Aircall contact", contact_id=linked)
    fields = await _fields(ctx, noted, sobject, record_id, record)
    if fields is None:
        return _skipped(f"{sobject} {record_id} was deleted")
    try:
        body = actions.contact_body(fields, record_id, ctx.settings.default_region)
    except actions.NoPhone:
        reason = f"{sobject} {record_id} has no phone number: Aircall needs one per contact"
        await _note(ctx, noted, "aircall", "create contact", None, {"skipped": reason})
        return _skipped(reason)
    body = customise(body, overrides or {})
    numbers = [entry["value"] for entry in body["phone_numbers"]]
    busy = await ctx.db(_claim, ctx, record_id, numbers)
    if busy is not None:
        raise RemoteUnavailable(
            "callbridge",
            None,
            f"another record is getting an Aircall contact for {busy}",
            retry_at=time.time() + WAIT_SECONDS,
        )
    try:
        contact, created = await actions.create_contact(ctx.aircall, body, record_id)
    except Exception as exc:
        await _note(
            ctx, noted, "aircall", "create contact", body, getattr(exc, "body", str(exc)), ok=False
        )
        if isinstance(exc, RemoteRejected):  # parked: let records sharing a number go ahead
            await ctx.db(_release, ctx, record_id)
        raise
    action = "create contact" if created else "find contact by phone"
    await _note(ctx, noted, "aircall", action, body, {"id": contact["id"]})
    await ctx.db(_link, ctx, sobject, record_id, contact["id"], created)
    return {"action": ACTION, "contact_id": contact["id"], "created": created}


async def aircall_contact(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: A01 for the record of a delivery (what a plain ``aircall:A01`` step delegates to)."""
    payload = job.payload
    return await record_contact(
        ctx, job, payload["sobject"], payload["id"], payload.get("record") or {}
    )
