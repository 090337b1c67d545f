"""Automations: a trigger, optional conditions on the event, and ordered actions.

A definition, as stored (every save is a new version; ``restore`` brings an old one back)::

    {
      "name": "Log inbound sales calls",
      "trigger": "E12",                     # see TRIGGERS
      "enabled": true,
      "conditions": {"direction": "inbound", "tag": ["Sales"], "duration_min": 10},
      "actions": [
        {"action": "salesforce:A19",
         "query": "SELECT Id, AccountId FROM Contact WHERE Phone = {{contact_phone}} LIMIT 1"},
        {"action": "salesforce:A08",
         "fields": {"AccountId": "{{steps.1.first.AccountId}}", "Name": "Call {{call.id}}"}},
      ]
    }

Conditions (all must hold; a condition on something the event lacks does not hold): ``tag`` (one
name or a list: any of them), ``direction``, ``duration_min``/``duration_max`` (seconds),
``number`` (the Aircall line: its number or id), ``caller`` (the external number),
``agent_email``, ``answered`` (true: answered, false: missed).

The Salesforce triggers (T01 new Lead, T02 new Contact, T03/T04 new/updated record of the object
named by ``"sobject"``, T05 Outbound Message, optionally of one ``"sobject"``) have a record and
no call: their only condition is ``record`` (``{"LeadSource": "Web", "Email": null}``: each field
equals the value, compared as text ignoring case; null: empty or absent), and their sources read
``record.<Field>`` (``contact_phone``, ``contact_name`` and ``contact_email`` come from the
record's phones, name and email). ``validate`` refuses call conditions and call sources on them.

Action inputs are field-mapping sources (``automations.fieldmap``); ``{{steps.N.x}}`` reads
the result of step N (numbered from 1): ``id`` of a created record, ``first``/``records`` of a
query. The actions are in ``automations.actions``.

An event is matched in the webhook's transaction (``enqueue_for_event``), a Salesforce record in
the transaction that stores its delivery (``salesforce_triggers.delivery``), and each matching
automation becomes one ``automation`` job, pinned to the version current at that moment; the
job's steps are the run's record (``recent_runs``). Automations whose actions only queue
Callbridge's own jobs (the call's Task, the insight card; a plain Aircall A01 on a record) queue
those directly, deduplicated with them.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from integrations.aircall import actions as aircall_actions
from integrations.aircall.events import WebhookEvent
from integrations.errors import BadInput, RemoteRejected
from integrations.phones import to_e164
from integrations.salesforce.soql import api_name
from integrations.settings import Settings
from integrations.store.automation_models import Automation, AutomationVersion
from integrations.store.db import is_postgres
from integrations.store.models import Call, Event, Job, JobStep
from integrations.store.ttl_cache import EngineCache
from integrations.sync.automations import actions, dispositions, fieldmap, step_plan
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.callers.matching import agent_user
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import (
    AIRCALL_CONTACT,
    AUTOMATION,
    LOG_CALL,
)

TRIGGERS: dict[str, str] = {
    "E04": "call.answered",
    "E06": "call.tagged",
    "E08": "call.commented",
    "E12": "call.ended",
    "E13": "contact.created",
    "call.created": "call.created",
    "call.ringing_on_agent": "call.ringing_on_agent",
    "call.hungup": "call.hungup",
    "call.voicemail_left": "call.voicemail_left",
    "summary.created": "summary.created",
    "T01": "Salesforce: new Lead",
    "T02": "Salesforce: new Contact",
    "T03": "Salesforce: new record of a chosen object",
    "T04": "Salesforce: updated record of a chosen object",
    "T05": "Salesforce: new Outbound Message",
}
EVENT_TRIGGER = {name: code for code, name in TRIGGERS.items() if not code.startswith("T")}
LIVE_TRIGGERS = {"E04", "call.created", "call.ringing_on_agent"}  # before or during the answer
CONDITIONS = (
    "tag",
    "direction",
    "duration_min",
    "duration_max",
    "number",
    "caller",
    "agent_email",
    "answered",
)
RECORD_CONDITIONS = ("record",)
FIXED_OBJECT = {"T01": "Lead", "T02": "Contact"}
CHOSEN_OBJECT = ("T03", "T04")  # polled per object: the automation names it
SYSTEM = "callbridge"
RUNS_SHOWN = 10

DEFAULTS: dict[str, dict[str, Any]] = {
    "E12_log_call": {
        "name": "Log the call as a Salesforce Task",
        "trigger": "E12",
        "actions": [{"action": "salesforce:A09", "call_task": True}],
    },
    "E04_insight_card": {
        "name": "Show the caller's Salesforce record in the Aircall phone",
        "trigger": "E04",
        "actions": [{"action": "aircall:A06"}],
    },
    "E08_comment_on_task": {
        "name": "Put the call's comments on its Task",
        "trigger": "E08",
        "actions": [{"action": "salesforce:A09", "call_task": True}],
    },
    "E13_create_contact": {
        "name": "Create the Salesforce Contact of a new Aircall contact",
        "trigger": "E13",
        "actions": [{"action": "salesforce:match_or_create", "sobject": "Contact"}],
    },
    "T01_aircall_contact": {
        "name": "Make the Aircall contact of a new Salesforce Lead",
        "trigger": "T01",
        "actions": [{"action": "aircall:A01"}],
    },
    "T02_aircall_contact": {
        "name": "Make the Aircall contact of a new Salesforce Contact",
        "trigger": "T02",
        "actions": [{"action": "aircall:A01"}],
    },
    "T05_aircall_contact": {
        "name": "Make the Aircall contact of an Outbound Message's record",
        "trigger": "T05",
        "actions": [{"action": "aircall:A01"}],
    },
}


# -- definitions and versions --------------------------------------------------------------------


def validate(definition: dict[str, Any]) -> dict[str, Any]:
    """A normalised copy of ``definition``, or ``BadInput`` saying what is wrong."""
    if not isinstance(definition, dict):
        raise BadInput("an automation is an object")
    name = str(definition.get("name") or "").strip()
    if not name or len(name) > 120:
        raise BadInput("an automation needs a name (at most 120 characters)")
    trigger = definition.get("trigger")
    if trigger not in TRIGGERS:
        raise BadInput(f"unknown trigger {trigger!r} (known: {', '.join(TRIGGERS)})")
    on_record = trigger.startswith("T")
    sobject = _checked_sobject(trigger, definition.get("sobject"))
    conditions = definition.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise BadInput("conditions is an object")
    _check_conditions(trigger, conditions)
    steps = definition.get("actions")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise BadInput("an automation needs at least one action")
    for number, step in enumerate(steps, start=1):
        actions.check_step(step, number)
        actions.check_for_trigger(step, number, on_record=on_record)
    checked = {
        "name": name,
        "trigger": trigger,
        "enabled": bool(definition.get("enabled", True)),
        "conditions": copy.deepcopy(conditions),
        "actions": copy.deepcopy(steps),
    }
    if sobject:
        checked["sobject"] = sobject
    return checked


def _checked_sobject(trigger: str, sobject: object) -> str | None:
    """The object a Salesforce trigger is about, when the automation names one."""
    if sobject in (None, ""):
        if trigger in CHOSEN_OBJECT:
            raise BadInput(f"{trigger} needs the object it watches (sobject, e.g. Invoice__c)")
        return None
    if not trigger.startswith("T"):
        raise BadInput("sobject names the object of a Salesforce trigger (T03, T04, T05)")
    if trigger in FIXED_OBJECT:
        if sobject != FIXED_OBJECT[trigger]:
            raise BadInput(f"{trigger} is about {FIXED_OBJECT[trigger]} records only")
        return None
    try:
        return api_name(str(sobject).strip())
    except ValueError:
        raise BadInput(f"sobject is not a Salesforce object API name: {sobject!r}") from None


def _check_conditions(trigger: str, conditions: dict[str, Any]) -> None:
    allowed = RECORD_CONDITIONS if trigger.startswith("T") else CONDITIONS
    unknown = sorted(set(conditions) - set(allowed))
    if unknown and trigger.startswith("T") and unknown[0] in CONDITIONS:
        raise BadInput(
            f"condition {unknown[0]!r} is about an Aircall call; {trigger} has a Salesforce "
            "record and no call: use record (field: value) instead"
        )
    if unknown and unknown[0] in RECORD_CONDITIONS:
        raise BadInput("the record condition is for Salesforce triggers (T01-T05)")
    if unknown:
        raise BadInput(f"unknown condition {unknown[0]!r} (known: {', '.join(allowed)})")
    fields = conditions.get("record")
    if fields is None:
        return
    if not isinstance(fields, dict):
        raise BadInput("the record condition maps field names to values")
    for field, value in fields.items():
        try:
            api_name(str(field))
        except ValueError:
            raise BadInput(f"record condition: {field!r} is not a field API name") from None
        if isinstance(value, dict | list):
            raise BadInput(f"record condition: {field} is compared with one value")


def save(
    engine: Engine,
    definition: dict[str, Any],
    *,
    by: str,
    automation_id: int | None = None,
    note: str | None = None,
    builtin: str | None = None,
) -> Automation:
    """Store ``definition`` as a new automation, or as the next version of one."""
    checked = validate(definition)
    now = time.time()
    with Session(engine, expire_on_commit=False) as s:
        if automation_id is None:
            automation = Automation(builtin=builtin, version=1, **_columns(checked, now))
            s.add(automation)
            s.flush()
        else:
            query = select(Automation).where(Automation.id == automation_id)
            if is_postgres(engine):
                query = query.with_for_update()
            automation = s.execute(query).scalar_one_or_none()
            if automation is None:
                raise BadInput(f"no automation {automation_id}")
            automation.version += 1
            for key, value in _columns(checked, now).items():
                setattr(automation, key, value)
            s.add(automation)
        assert automation.id is not None  # noqa: S101  (flushed above)
        s.add(
            AutomationVersion(
                automation_id=automation.id,
                version=automation.version,
                definition=checked,
                saved_by=by,
                saved_at=now,
                note=note,
            )
        )
        try:
            s.commit()
        except IntegrityError as exc:
            raise BadInput("the automation changed meanwhile: load it again") from exc
    _enabled_by_trigger.invalidate(engine)  # this process sees the change at once
    return automation


def _columns(checked: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "name": checked["name"],
        "trigger": checked["trigger"],
        "enabled": checked["enabled"],
        "updated_at": now,
    }


def definition(engine: Engine, automation_id: int, version: int | None = None) -> dict[str, Any]:
    """The definition of ``version`` (default: the current one)."""
    with Session(engine) as s:
        automation = s.get(Automation, automation_id)
        if automation is None:
            raise BadInput(f"no automation {automation_id}")
        row = s.execute(
            select(AutomationVersion).where(
                AutomationVersion.automation_id == automation_id,
                AutomationVersion.version == (version or automation.version),
            )
        ).scalar_one_or_none()
        if row is None:
            raise BadInput(f"automation {automation_id} has no version {version}")
        return copy.deepcopy(row.definition)


def history(engine: Engine, automation_id: int) -> list[AutomationVersion]:
    """Every saved version, oldest first: who saved what, when."""
    with Session(engine) as s:
        return list(
            s.execute(
                select(AutomationVersion)
                .where(AutomationVersion.automation_id == automation_id)
                .order_by(AutomationVersion.version)
            ).scalars()
        )


def restore(engine: Engine, automation_id: int, version: int, *, by: str = SYSTEM) -> Automation:
    """Bring back an earlier version, as a new version (the history keeps everything)."""
    return save(
        engine,
        definition(engine, automation_id, version),
        by=by,
        automation_id=automation_id,
        note=f"restored version {version}",
    )


def set_enabled(engine: Engine, automation_id: int, enabled: bool, *, by: str) -> Automation:
    current = definition(engine, automation_id)
    current["enabled"] = enabled
    note = "enabled" if enabled else "disabled"
    return save(engine, current, by=by, automation_id=automation_id, note=note)


def seed_defaults(engine: Engine) -> None:
    """Add the automations and disposition rules that ship, once (safe to call at every start)."""
    with Session(engine) as s:
        present = set(s.execute(select(Automation.builtin)).scalars())
    for key, default in DEFAULTS.items():
        if key not in present:
            validate(default)  # a broken default is a bug: say so
            try:
                save(engine, default, by=SYSTEM, builtin=key, note="shipped default")
            except BadInput:
                continue  # another process seeded it at the same moment
    dispositions.seed_rules(engine)


# -- matching an event ----------------------------------------------------------------------------


def _names(items: object) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {str(i.get("name")).casefold() for i in items if isinstance(i, dict) and i.get("name")}


def unmet(conditions: dict[str, Any], data: dict[str, Any], region: str = "US") -> str | None:
    """Why the event's data fails the conditions, or None when every condition holds."""
    for key, wanted in conditions.items():
        if wanted is None or wanted == "" or wanted == []:
            continue
        if key == "tag":
            names = {str(w).casefold() for w in (wanted if isinstance(wanted, list) else [wanted])}
            if not names & _names(data.get("tags")):
                return f"no tag {sorted(names)}"
        elif key == "direction" and data.get("direction") != wanted:
            return f"direction is {data.get('direction')!r}"
        elif key in ("duration_min", "duration_max"):
            duration = data.get("duration")
            if not isinstance(duration, int):
                return "no duration yet"
            if (key == "duration_min" and duration < wanted) or (
                key == "duration_max" and duration > wanted
            ):
                return f"duration is {duration} s"
        elif key == "number":
            line = data.get("number") or {}
            same_id = str(line.get("id")) == str(wanted)
            same_number = to_e164(str(wanted), region) == to_e164(line.get("digits"), region)
            if not (same_id or (same_number and line.get("digits"))):
                return "another Aircall number"
        elif key == "caller":
            caller = to_e164(data.get("raw_digits"), region)
            if not caller or caller != to_e164(str(wanted), region):
                return "another caller"
        elif key == "agent_email":
            email = ((data.get("user") or {}).get("email") or "").casefold()
            if email != str(wanted).strip().casefold():
                return "another agent"
        elif key == "answered" and bool(data.get("answered_at")) != bool(wanted):
            return "answered" if data.get("answered_at") else "not answered"
    return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).strip().casefold()


def unmet_record(conditions: dict[str, Any], record: dict[str, Any]) -> str | None:
    """Why a Salesforce record fails the ``record`` condition, or None when it holds."""
    for field, wanted in (conditions.get("record") or {}).items():
        have = _text(record.get(field))
        if have != _text(wanted):
            return f"{field} is {record.get(field)!r}" if have else f"{field} is empty"
    return None


ENABLED_TTL = 2.0  # seconds before another process's edit reaches this one's webhooks
_enabled_by_trigger: EngineCache[dict[str, list[tuple[Automation, dict[str, Any]]]]] = EngineCache(
    ENABLED_TTL
)


def with_current_version(*columns: Any) -> Any:
    """``SELECT columns`` (default: each automation and its current version) over the join."""
    return select(*(columns or (Automation, AutomationVersion))).join(
        AutomationVersion,
        (AutomationVersion.automation_id == Automation.id)
        & (AutomationVersion.version == Automation.version),
    )


def _load_enabled(s: Session) -> dict[str, list[tuple[Automation, dict[str, Any]]]]:
    rows = s.execute(with_current_version().where(Automation.enabled).order_by(Automation.id)).all()
    by_trigger: dict[str, list[tuple[Automation, dict[str, Any]]]] = {}
    for automation, version in rows:
        s.expunge(automation)
        by_trigger.setdefault(automation.trigger, []).append((automation, version.definition))
    return by_trigger


def _enabled(s: Session, code: str) -> list[tuple[Automation, dict[str, Any]]]:
    """The enabled automations of a trigger with their current definitions, read at most every
    ``ENABLED_TTL`` seconds per process: the webhook's hot path should not query them each time.
    """
    return _enabled_by_trigger.get(s.get_bind(), lambda: _load_enabled(s)).get(code, [])


def wants_call_job(s: Session, kind: str, snapshot: dict[str, Any]) -> bool:
    """Whether an enabled automation whose conditions hold for the call asks for ``kind``.

    The intake keeps the call's Task up to date on every lifecycle event on behalf of the
    automations that log it (the E12 default): with none enabled, there is no Task.
    """
    for code in EVENT_TRIGGER.values():
        for _, current in _enabled(s, code):
            steps = current["actions"]
            if any(actions.delegated_kind(step) == kind for step in steps) and (
                unmet(current.get("conditions") or {}, snapshot) is None
            ):
                return True
    return False


def enqueue_for_event(
    s: Session, event: WebhookEvent, call: Call | None, event_row_id: int | None
) -> None:
    """Queue the work of every enabled automation (and disposition) this event triggers.

    Runs in the intake's transaction, after the event and the call's snapshot are stored.
    """
    code = EVENT_TRIGGER.get(event.event)
    if code is None:
        return
    call_id = event.call_id
    for automation, current in _enabled(s, code):
        if unmet(current.get("conditions") or {}, event.data) is not None:
            continue
        delegated = [actions.delegated_kind(step) for step in current["actions"]]
        if call_id is not None and all(delegated):
            # The call's Task is the intake's to queue (``wants_call_job``), with its grace
            # and priority.
            for kind in delegated:
                if kind == LOG_CALL:
                    continue
                queue.enqueue(
                    s,
                    kind=str(kind),
                    key=step_plan.delegate_key(str(kind), call_id),
                    call_id=call_id,
                    event_id=event_row_id,
                    priority=kinds.LIVE if code in LIVE_TRIGGERS else kinds.NORMAL,
                )
            continue
        queue.enqueue(
            s,
            kind=AUTOMATION,
            key=f"{AUTOMATION}:{automation.id}:{event_row_id}",
            call_id=call_id,
            event_id=event_row_id,
            payload={"automation": automation.id, "version": automation.version},
            priority=kinds.LIVE if code in LIVE_TRIGGERS else kinds.NORMAL,
        )
    if call is not None:
        dispositions.enqueue_for_call(s, event.event, call, event_row_id)


def for_record(s: Session, trigger: str, sobject: str) -> list[tuple[Automation, dict[str, Any]]]:
    """The enabled automations a Salesforce trigger fires for a record of ``sobject``."""
    return [
        (automation, current)
        for automation, current in _enabled(s, trigger)
        if (current.get("sobject") or sobject).casefold() == sobject.casefold()
    ]


def record_needs(engine: Engine) -> dict[tuple[str, str], set[str]]:
    """What polling must read for the enabled automations: (trigger, object) -> field names.

    T01 and T02 are about Leads and Contacts; T03 and T04 about the object each names; T05 is
    pushed by Salesforce, not polled.
    """
    with Session(engine) as s:
        rows = s.execute(
            with_current_version(Automation.trigger, AutomationVersion.definition).where(
                Automation.enabled, Automation.trigger.in_(("T01", "T02", *CHOSEN_OBJECT))
            )
        ).all()
    needs: dict[tuple[str, str], set[str]] = {}
    for trigger, current in rows:
        sobject = FIXED_OBJECT.get(trigger) or current.get("sobject")
        if not sobject:
            continue
        fields = needs.setdefault((trigger, sobject), set())
        fields |= actions.record_fields(current.get("actions") or [])
        fields |= set((current.get("conditions") or {}).get("record") or {})
    return needs


# -- running ---------------------------------------------------------------------------------------


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
            snapshot, contact=contact, ai_summary=ai_summary, region=settings.default_region
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


# -- the manager's view of runs -------------------------------------------------------------------


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
    """The newest runs, newest first: its ``automation`` jobs, and the ``aircall_contact`` jobs
    a plain A01 on a Salesforce trigger delegated to (they name the automation that queued them).
    """
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
            [*own, *(j for j in delegated if j.payload.get("automation") == automation_id)],
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
