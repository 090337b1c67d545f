"""Applying the disposition rules to a call: the steps a matching rule becomes (status or stage,
a follow-up Task or Event, a re-queue, Do Not Call), planned and run by the step engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session

from integrations.settings import Settings
from integrations.store.automation_models import DispositionRule
from integrations.store.models import Call, Job, SyncLink
from integrations.sync.automations import actions, fieldmap, step_plan
from integrations.sync.automations.dispositions import matching, tag_names
from integrations.sync.automations.fieldmap import Scope
from integrations.sync.callers.matching import agent_user, cached_matches
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import DISPOSITION, KINDS, LOG_CALL

_DATE = re.compile(r"\b(20\d\d-[01]\d-[0-3]\d)\b")  # a callback date written in a comment
# The Contact's Account's most recently changed open opportunity (N: the step that read it).
OPEN_OPPORTUNITY = (
    "SELECT Id, StageName FROM Opportunity WHERE AccountId = {{steps.N.first.AccountId}} "
    "AND AccountId != null AND IsClosed = false ORDER BY LastModifiedDate DESC LIMIT 1"
)
TASK_ACTION = KINDS[LOG_CALL].code  # the call's Task's SyncLink


def _load(engine: Engine, call_id: int) -> tuple[Call, str | None, list[DispositionRule]]:
    with Session(engine, expire_on_commit=False) as s:
        call = s.get(Call, call_id)
        if call is None:
            raise LookupError(f"call {call_id} not stored")
        link = s.execute(
            select(SyncLink).where(SyncLink.call_id == call_id, SyncLink.action == TASK_ACTION)
        ).scalar_one_or_none()
        who = (link.written or {}).get("WhoId") if link is not None else None
        return call, who, list(s.execute(select(DispositionRule)).scalars())


def _day(base: datetime, zone: str, days: int) -> datetime:
    local = base.astimezone(ZoneInfo(zone))
    return next_business_day(local, days)


def _facts(
    rule: DispositionRule, call: Call, person: str | None, account: str | None, zone: str
) -> dict[str, Any]:
    """The values a rule's steps read (``event.*``), all derived from the stored call."""
    snapshot = call.snapshot
    started = snapshot.get("started_at")
    base = datetime.fromtimestamp(started, UTC) if isinstance(started, int) else utc_now()
    options = rule.options or {}
    comments = " ".join(str(c.get("content") or "") for c in snapshot.get("comments") or [])
    requested = _DATE.search(comments)
    callback = requested[1] if requested else _day(base, zone, int(options.get("due_days", 1)))
    meeting = _day(base, zone, int(options.get("event_days", 1))).replace(
        hour=int(options.get("event_hour", 10)), minute=0, second=0, microsecond=0
    )
    return {
        "person": person,
        "record": account or person,  # where the person's own fields are written
        "lead_status": rule.lead_status,
        "contact_status": rule.contact_status,
        "stage": rule.opportunity_stage,
        "due_date": callback if isinstance(callback, str) else callback.date().isoformat(),
        "meeting_start": meeting.astimezone(UTC).isoformat(),
    }


def steps_for(
    rule: DispositionRule,
    person: str | None,
    settings: Settings,
    *,
    person_account: str | None = None,
) -> list[dict[str, Any]]:
    """The actions a disposition takes, as automation steps (numbered from 1). A person
    account's person is changed through the account (``event.record``)."""
    options = rule.options or {}
    own = {"record": "event.record", **({"sobject": "Account"} if person_account else {})}
    key = rule.key
    steps: list[dict[str, Any]] = []
    is_lead = bool(person and person.startswith("00Q"))
    is_contact = bool(person and person.startswith("003"))
    if is_lead and rule.lead_status:
        steps.append(
            {
                "name": "status",
                "action": "salesforce:update_status",
                "record": "event.person",
                "value": "event.lead_status",
            }
        )
    opportunity = None
    if is_contact and rule.opportunity_stage:
        account = len(steps) + 1
        steps.append(
            {
                "name": "account",
                "action": "salesforce:A19",
                "query": "SELECT Id, AccountId FROM Contact WHERE Id = {{event.person}}",
            }
        )
        steps.append(
            {
                "name": "opportunity",
                "action": "salesforce:A19",
                "query": OPEN_OPPORTUNITY.replace("steps.N.", f"steps.{account}."),
            }
        )
        opportunity = f"steps.{account + 1}.first.Id"
        steps.append(
            {
                "name": "stage",
                "action": "salesforce:update_stage",
                "opportunity": opportunity,
                "stage": "event.stage",
            }
        )
    if is_contact and settings.disposition_contact_status_field and rule.contact_status:
        steps.append(
            {
                "name": "status",
                "action": "salesforce:update_status",
                **own,
                "value": "event.contact_status",
            }
        )
    if key == "booked":
        steps.append(
            {
                "name": "event",
                "action": "salesforce:create_event",
                "start": "event.meeting_start",
                "duration_minutes": int(options.get("event_minutes", 30)),
                "who": "event.person",
                **({"what": opportunity} if opportunity else {}),
                "fields": {
                    "Subject": "=Meeting (booked on a call)",
                    "Description": "Booked on Aircall call {{call.id}} by {{agent_name}}",
                },
            }
        )
    if key in ("no_answer", "callback"):
        subject = "Schedule Callback" if key == "callback" else "Follow up: no answer"
        steps.append(
            {
                "name": "task",
                "action": "salesforce:A09",
                "use_mapping": False,
                "fields": {
                    "Subject": f"={subject}",
                    "Status": "=Not Started",
                    "ActivityDate": "event.due_date",
                    "WhoId": "event.person",
                    "OwnerId": fieldmap.AGENT_OWNER,
                    "Description": "{{disposition}} on Aircall call {{call.id}} "
                    "({{contact_phone}}) {{call_link}}",
                },
            }
        )
    if key == "wrong_number":
        steps.append(
            {
                "name": "flag",
                "action": "salesforce:flag_phone",
                **own,
                "note": "Wrong number: {{contact_phone}} (Aircall call {{call.id}}, "
                "{{timestamp|date}})",
                **({"field": options["flag_field"]} if options.get("flag_field") else {}),
            }
        )
    if key == "dnc":
        steps.append({"name": "dnc", "action": "salesforce:do_not_call", **own})
    if key in ("no_answer", "busy"):
        steps.append(
            {
                "name": "requeue",
                "action": "aircall:dialer_requeue",
                "delay_seconds": float(options.get("delay_seconds", 0)),
            }
        )
    return steps


def _person_account(engine: Engine, e164: str | None, person: str) -> str | None:
    """The person account whose hidden Contact ``person`` is, from the local index (a call's
    Task was logged on its match, so the index has it: no request)."""
    hits = cached_matches(engine, e164) if e164 else []
    return next((hit["id"] for hit in hits if hit.get("person_contact") == person), None)


async def _person(ctx: Context, call: Call, who: str | None) -> tuple[str | None, str | None]:
    """The Contact or Lead the disposition is about (the call's Task's, else the caller's), and
    the person account holding it, if any: Salesforce takes a person's changes only there."""
    if who and who[:3] in step_plan.PERSON_PREFIXES:
        account = (
            await ctx.db(_person_account, ctx.engine, call.e164, who) if who[:3] == "003" else None
        )
        return who, account
    match = (await ctx.caller(call.e164)).match if call.e164 else None
    if match is not None and match.person_contact:
        return match.person_contact, match.id
    return (match.id if match is not None and match.sobject in ("Contact", "Lead") else None), None


async def apply_disposition(ctx: Context, job: Job) -> dict[str, Any]:
    """Job: apply the call's disposition tags to Salesforce (and the Power Dialer)."""
    assert job.call_id is not None  # noqa: S101  (disposition jobs always carry one)
    call, who, all_rules = await ctx.db(_load, ctx.engine, job.call_id)
    chosen = matching(tag_names(call.snapshot), all_rules)
    if not chosen:
        return {"skipped": "no disposition tag"}
    person, account = await _person(ctx, call, who)
    zone = await ctx.sf(ctx.org_zone)
    owner = None
    email = (call.snapshot.get("user") or {}).get("email")
    if email:
        settings = ctx.settings
        owner = await ctx.sf(
            lambda: agent_user(
                ctx.engine, ctx.salesforce, email, max_age=settings.caller_cache_seconds
            )
        )
    env = step_plan.Env(ctx.engine, ctx.settings, call.id)
    done: dict[str, Any] = {}
    for rule in chosen:
        scope = Scope(
            dialer={
                **fieldmap.dialer_values(
                    call.snapshot,
                    ai_summary=call.ai_summary,
                    disposition=rule.name,
                    region=ctx.settings.default_region,
                    call_url=ctx.settings.aircall_call_url,
                ),
                fieldmap.AGENT_OWNER: owner,
            },
            call=call.snapshot,
            contact=call.snapshot.get("contact") or {},
            event=_facts(rule, call, person, account, zone),
            zone=zone,
        )
        steps = steps_for(rule, person, ctx.settings, person_account=account)
        done[rule.key] = await actions.run_steps(
            ctx, job, f"{DISPOSITION}:{call.id}:{rule.key}", steps, scope, env, label=rule.key
        )
    return {"dispositions": done, "person": person}


def next_business_day(after: datetime, days: int = 1) -> datetime:
    """``days`` working days (Monday to Friday) after ``after``; holidays are not known."""
    day = after
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def utc_now() -> datetime:
    return datetime.now(UTC)
