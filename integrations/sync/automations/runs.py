"""Running an automation: the scope its steps read (a call event's, or a Salesforce record's),
the run itself, its dry run, and the manager's view of recent runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlmodel import Session

from integrations.aircall import actions as aircall_actions
from integrations.aircall.events import WebhookEvent
from integrations.errors import RemoteRejected
from integrations.phones import to_e164
from integrations.settings import Settings
from integrations.store.automation_models import Automation
from integrations.store.models import Call, Event, Job, JobStep
from integrations.sync.automations import actions, fieldmap, step_plan
from integrations.sync.automations.conditions import unmet, unmet_record
from integrations.sync.automations.definitions import (
    FIXED_OBJECT,
    TRIGGERS,
    definition,
    validate,
)
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.callers.matching import agent_user
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import (
    AIRCALL_CONTACT,
    AUTOMATION,
)

RUNS_SHOWN = 10


def _scope(
    event_name: str,
    data: dict[str, Any],
    call: dict[str, Any] | None,
    ai_summary: str | None,
    settings: Settings,
    zone: str,
) -> Scope:
    if event_name.startswith("call.") or event_name == "summary.created":
        snapshot = call or (data if event_name.startswith("call.") else {})
        contact = snapshot.get("contact") or {}
    else:
        snapshot, contact = {}, data
    return Scope(
        dialer=fieldmap.dialer_values(
            snapshot,
            contact=contact,
            ai_summary=ai_summary,
            region=settings.default_region,
            call_url=settings.aircall_call_url,
        ),
        call=snapshot,
        contact=contact,
        event=data,
        zone=zone,
    )


STAMPS = {"T04": ("SystemModstamp", "LastModifiedDate"), "T05": ("LastModifiedDate",)}


def record_dialer(trigger: str, record: dict[str, Any], region: str) -> dict[str, Any]:
    """Dialer fields of a Salesforce record: its first phone, its name, its email, its time."""
    dialer: dict[str, Any] = dict.fromkeys(fieldmap.DIALER_FIELDS)
    phones = (to_e164(record.get(f), region) for f in aircall_actions.phone_fields(record))
    name = record.get("Name") or " ".join(
        str(record[part]) for part in ("FirstName", "LastName") if record.get(part)
    )
    email = record.get("Email")
    stamps = (record.get(f) for f in (*STAMPS.get(trigger, ()), "CreatedDate"))
    dialer.update(
        contact_phone=next(filter(None, phones), None),
        contact_name=name or None,
        contact_email=email if isinstance(email, str) and "@" in email else None,
        timestamp=next(filter(None, stamps), None),
    )
    dialer[fieldmap.AGENT_OWNER] = record.get("OwnerId")  # the record's owner, if carried
    return dialer


def _record_scope(event: dict[str, Any], settings: Settings, zone: str) -> Scope:
    """``event`` is the delivery: trigger, sobject, id and the record (``record.<Field>``)."""
    dialer = record_dialer(event["trigger"], event["record"], settings.default_region)
    return Scope(dialer=dialer, event=event, zone=zone)


async def _complete(
    ctx: Context, job: Job, sobject: str, record_id: str, record: dict[str, Any], wanted: set[str]
) -> dict[str, Any]:
    """The record with the fields the steps read and the trigger did not carry (an Outbound
    Message has only the fields its admin picked), read once from Salesforce."""
    try:
        fetched = await ctx.sf(ctx.salesforce.get, sobject, record_id)
    except RemoteRejected as exc:
        if exc.status != 404:
            raise
        await ctx.record(job, "salesforce", f"get {sobject}", record_id, exc.body, ok=False)
        return record  # deleted since: the steps see what the trigger carried
    found = {k: v for k, v in fetched.items() if k in wanted and k not in record}
    await ctx.record(job, "salesforce", f"get {sobject}", record_id, {"read": sorted(found)})
    return {**record, **found}


async def _run_for_record(ctx: Context, job: Job) -> dict[str, Any]:
    """An automation on a Salesforce trigger: the job's payload carries the delivered record
    (delivery rows are pruned; a retried job must not depend on them)."""
    payload = job.payload
    current = await ctx.db(definition, ctx.engine, payload["automation"], payload["version"])
    sobject, record_id = payload["sobject"], payload["id"]
    record = {"Id": record_id, **(payload.get("record") or {})}
    missing = actions.record_fields(current["actions"]) - set(record)
    if missing:
        record = await _complete(ctx, job, sobject, record_id, record, missing)
    zone = await ctx.sf(ctx.org_zone)
    event = {
        "trigger": payload["trigger"],
        "sobject": sobject,
        "id": record_id,
        "record": record,
        "notification_id": payload.get("notification_id"),
    }
    scope = _record_scope(event, ctx.settings, zone)
    env = step_plan.Env(ctx.engine, ctx.settings, None)
    run = f"run:{payload['automation']}:sf{payload['delivery']}"
    results = await actions.run_steps(ctx, job, run, current["actions"], scope, env)
    return {"automation": payload["automation"], "version": payload["version"], "steps": results}


def _load_run(engine: Engine, job: Job) -> tuple[dict[str, Any], Event | None, Call | None]:
    payload = job.payload
    current = definition(engine, payload["automation"], payload["version"])
    with Session(engine, expire_on_commit=False) as s:
        event = s.get(Event, job.event_id) if job.event_id is not None else None
        call = s.get(Call, job.call_id) if job.call_id is not None else None
    return current, event, call


def _reads(steps: list[dict[str, Any]], names: tuple[str, ...]) -> bool:
    text = repr(steps)
    return any(name in text for name in names)


async def run_automation(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: run one automation for one event, step by step (a retry skips the done steps)."""
    if "delivery" in job.payload:
        return await _run_for_record(ctx, job)
    current, event, call = await ctx.db(_load_run, ctx.engine, job)
    name = event.name if event is not None else ""
    data = (event.payload.get("data") if event is not None else None) or {}
    snapshot = dict(call.snapshot) if call is not None else None
    steps = current["actions"]
    if (
        snapshot is not None
        and call is not None
        and call.ended
        and _reads(steps, fieldmap.MEDIA_SOURCES)
        and not (snapshot.get("recording") or snapshot.get("voicemail"))
    ):
        snapshot = await ctx.aircall.get_call(call.id)  # the link may not have come yet
    zone = await ctx.sf(ctx.org_zone)
    scope = _scope(name, data, snapshot, call.ai_summary if call else None, ctx.settings, zone)
    email = ((snapshot or {}).get("user") or {}).get("email")
    if email and _reads(steps, ("salesforce:A0", "create", "match_or_create", "OwnerId")):
        settings = ctx.settings
        scope.dialer[fieldmap.AGENT_OWNER] = await ctx.sf(
            lambda: agent_user(
                ctx.engine, ctx.salesforce, email, max_age=settings.caller_cache_seconds
            )
        )
    env = step_plan.Env(ctx.engine, ctx.settings, job.call_id)
    run = f"run:{job.payload['automation']}:{job.event_id}"
    results = await actions.run_steps(ctx, job, run, steps, scope, env)
    return {
        "automation": job.payload["automation"],
        "version": job.payload["version"],
        "steps": results,
    }


def dry_run(
    automation: Automation | dict[str, Any],
    event: WebhookEvent | dict[str, Any],
    *,
    engine: Engine,
    settings: Settings | None = None,
) -> list[actions.StepPreview]:
    """What each action would send for ``event``, without sending anything.

    Results of earlier steps show as ``<steps.N...>``; the agent's Salesforce User as a
    placeholder. When the event fails the conditions, one preview (step 0) says why. For a
    Salesforce trigger, ``event`` is a stored delivery: ``{"data": <record>}``, and optionally
    its ``sobject`` and ``id`` (else the record's ``Id`` or a placeholder).
    """
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    if isinstance(automation, Automation):
        assert automation.id is not None  # noqa: S101  (a stored automation)
        current = definition(engine, automation.id)
    else:
        current = validate(automation)
    if isinstance(event, WebhookEvent):
        name, data = event.event, event.data
    else:
        name, data = str(event.get("event")), dict(event.get("data") or {})
    if current["trigger"].startswith("T"):
        return _dry_run_record(current, event, engine, settings)
    reason = unmet(current.get("conditions") or {}, data, settings.default_region)
    if reason is not None:
        return [actions.StepPreview(0, "conditions", "", "skipped", current["conditions"], reason)]
    zone = settings.salesforce_time_zone or "UTC"
    call = data if name.startswith("call.") else None
    scope = _scope(name, data, call, None, settings, zone)
    scope.dialer[fieldmap.AGENT_OWNER] = "<the agent's Salesforce User>"
    env = step_plan.Env(engine, settings, data.get("id") if call else data.get("call_id"))
    return actions.preview(current["actions"], scope, env)


def _dry_run_record(
    current: dict[str, Any],
    event: WebhookEvent | dict[str, Any],
    engine: Engine,
    settings: Settings,
) -> list[actions.StepPreview]:
    """``event``: ``{"data": <record>, "sobject": ..., "id": ...}`` (a stored delivery)."""
    sample = event if isinstance(event, dict) else {"data": event.data}
    record = dict(sample.get("data") or {})
    trigger = current["trigger"]
    sobject = sample.get("sobject") or FIXED_OBJECT.get(trigger) or current.get("sobject")
    wanted = current.get("sobject")
    if wanted and sobject != wanted:
        reason = f"a {sobject} record; the automation is about {wanted}"
        return [actions.StepPreview(0, "conditions", "", "skipped", {"sobject": wanted}, reason)]
    reason = unmet_record(current.get("conditions") or {}, record)
    if reason is not None:
        return [actions.StepPreview(0, "conditions", "", "skipped", current["conditions"], reason)]
    record_id = sample.get("id") or record.get("Id") or "<the record's id>"
    record = {"Id": record_id, **record}
    scope = _record_scope(
        {"trigger": trigger, "sobject": sobject or "<object>", "id": record_id, "record": record},
        settings,
        settings.salesforce_time_zone or "UTC",
    )
    return actions.preview(current["actions"], scope, step_plan.Env(engine, settings, None))


@dataclass
class Run:
    """One run of an automation: its job and what each step sent and got back."""

    job: Job
    steps: list[JobStep]

    @property
    def subject(self) -> str:
        payload = self.job.payload
        if "sobject" in payload:
            return f"{payload.get('trigger')} {payload['sobject']} {payload.get('id')}"
        return f"call {self.job.call_id}" if self.job.call_id else f"event {self.job.event_id}"


def recent_runs(engine: Engine, automation_id: int, limit: int = RUNS_SHOWN) -> list[Run]:
    """The newest runs, newest first: its ``automation`` jobs, the ``aircall_contact`` jobs
    a plain A01 on a Salesforce trigger delegated to (they name the automation that queued them),
    and, for an automation whose steps only queue a call's own job (the shipped E12, E04 and
    E08: the call's Task, its insight card), those jobs of the calls that had its event. Such a
    job is the call's, shared by every automation delegating to it, as the Task is one.
    """
    current = definition(engine, automation_id)
    with Session(engine) as s:
        own = s.execute(
            select(Job)
            .where(Job.dedupe_key.like(f"{AUTOMATION}:{automation_id}:%"))
            .order_by(Job.id.desc())
            .limit(limit)
        ).scalars()
        delegated = s.execute(
            select(Job).where(Job.kind == AIRCALL_CONTACT).order_by(Job.id.desc()).limit(limit * 5)
        ).scalars()
        found = sorted(
            [
                *own,
                *(j for j in delegated if j.payload.get("automation") == automation_id),
                *_call_jobs(s, current, limit),
            ],
            key=lambda j: -(j.id or 0),
        )[:limit]
        steps: dict[int | None, list[JobStep]] = {job.id: [] for job in found}
        if found:
            for step in s.execute(
                select(JobStep)
                .where(JobStep.job_id.in_([job.id for job in found]))
                .order_by(JobStep.id)
            ).scalars():
                steps[step.job_id].append(step)
        s.expunge_all()
    return [Run(job, steps[job.id]) for job in found]


def delegated_call_jobs(current: dict[str, Any]) -> Any | None:
    """For an automation whose steps only queue a call's own job (the shipped E12, E04, E08:
    ``dispatch.enqueue_for_event`` queues those instead of an ``automation`` job), the WHERE
    clause of the jobs its runs became: those kinds, for calls that had the trigger's event.
    None for any other automation."""
    kinds = [actions.delegated_kind(step) for step in current.get("actions") or []]
    event_name = TRIGGERS.get(str(current.get("trigger")))
    if not kinds or not all(kinds) or event_name is None or current["trigger"].startswith("T"):
        return None
    had_event = (
        select(Event.id).where(Event.call_id == Job.call_id, Event.name == event_name).exists()
    )
    return and_(Job.kind.in_(set(kinds)), Job.call_id.is_not(None), had_event)


def _call_jobs(s: Session, current: dict[str, Any], limit: int) -> list[Job]:
    where = delegated_call_jobs(current)
    if where is None:
        return []
    return list(s.execute(select(Job).where(where).order_by(Job.id.desc()).limit(limit)).scalars())
