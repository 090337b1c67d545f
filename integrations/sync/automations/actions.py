"""The catalogue of actions an automation (or a disposition) can run, and the engine that runs
them in order.

Each action is planned first (``plan``: what it would send, computed from the field mapping and
its inputs, without sending anything: the dry run shows exactly this) and then executed. A step's
result is kept (``AutomationEffect``) before the next step starts, so a retried or re-synced run
reuses what earlier attempts did instead of creating records twice; and it is recorded on the
call's timeline (``JobStep``): what was sent, what came back. The steps themselves live in
``salesforce_steps`` and ``aircall_steps``; what they share in ``step_plan``.

Codes are the catalogue's, prefixed by the service: ``salesforce:A01`` Create Record (any object),
``salesforce:A04`` Create Lead, ``salesforce:A06`` Create Contact, ``salesforce:A08`` Create
Opportunity, ``salesforce:A09`` Create Task (``call_task: true``: the call's own Task, kept up to
date by the E12 → A09 log), ``salesforce:A19`` Custom SOQL Query (SELECT only, ``soql_guard``),
plus what the disposition rules need (``update_status``, ``update_stage``, ``create_event``,
``update_record``, ``flag_phone``, ``do_not_call``, ``match_or_create``), and on Aircall's side
``aircall:A01`` (the Aircall contact of the Salesforce record of a T01-T05 trigger),
``aircall:A06`` (the insight card), ``aircall:A04`` (comment), ``aircall:dialer_requeue``. A04
and A06 act on the event's call, or on the call a ``call`` source names (on a Salesforce
trigger, e.g. a Task's ``{{record.CallObject}}``).

Inputs are mapping sources (``automations.fieldmap``): ``{{steps.1.id}}`` is the id the
first step created, ``{{steps.2.first.Id}}`` the first row of a query in step 2,
``{{steps.2.records.1.Name}}`` the second row's name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from integrations.errors import BadInput, RemoteRejected
from integrations.store.automation_models import AutomationEffect
from integrations.store.models import Job
from integrations.sync.automations import aircall_contacts, fieldmap
from integrations.sync.automations.aircall_steps import (
    plan_card,
    plan_comment,
    plan_contact,
    plan_requeue,
    run_card,
    run_comment,
    run_contact,
    run_requeue,
)
from integrations.sync.automations.fieldmap import Pending, Scope
from integrations.sync.automations.salesforce_steps import (
    plan_create,
    plan_dnc,
    plan_event,
    plan_flag_phone,
    plan_match_or_create,
    plan_query,
    plan_stage,
    plan_status,
    plan_task,
    plan_update,
    run_create,
    run_dnc,
    run_flag_phone,
    run_match_or_create,
    run_query,
    run_task,
    run_update,
)
from integrations.sync.automations.soql_guard import check_select, soql_tokens
from integrations.sync.automations.step_plan import (
    Env,
    Execute,
    Plan,
)
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.kinds import INSIGHT_CARD, LOG_CALL

# Step parameters that are names or numbers, not mapping sources.
PLAIN_PARAMS = {"action", "name", "sobject", "field", "call_task", "use_mapping", "delay_seconds"}
_RECORD_FIELD = re.compile(r"(?<![\w.])record\.([A-Za-z][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class ActionSpec:
    code: str
    label: str
    plan: Callable[[dict[str, Any], Scope, Env], Plan]
    execute: Execute
    delegates: str | None = None  # the job kind it only queues (E12 → A09, E04 → A06)


ACTIONS: dict[str, ActionSpec] = {
    spec.code: spec
    for spec in (
        ActionSpec("salesforce:A01", "Create Record", plan_create(""), run_create),
        ActionSpec("salesforce:A04", "Create Lead", plan_create("Lead"), run_create),
        ActionSpec("salesforce:A06", "Create Contact", plan_create("Contact"), run_create),
        ActionSpec("salesforce:A08", "Create Opportunity", plan_create("Opportunity"), run_create),
        ActionSpec("salesforce:A09", "Create Task", plan_task, run_task),
        ActionSpec("salesforce:A19", "Custom SOQL Query", plan_query, run_query),
        ActionSpec("salesforce:update_record", "Update Record", plan_update, run_update),
        ActionSpec(
            "salesforce:update_status", "Update Lead/Contact status", plan_status, run_update
        ),
        ActionSpec("salesforce:update_stage", "Update Opportunity stage", plan_stage, run_update),
        ActionSpec("salesforce:create_event", "Create Event", plan_event, run_create),
        ActionSpec("salesforce:flag_phone", "Flag phone invalid", plan_flag_phone, run_flag_phone),
        ActionSpec("salesforce:do_not_call", "Do Not Call", plan_dnc, run_dnc),
        ActionSpec(
            "salesforce:match_or_create",
            "Find or create the Contact/Lead",
            plan_match_or_create,
            run_match_or_create,
        ),
        ActionSpec("aircall:A01", "Create Contact", plan_contact, run_contact),
        ActionSpec("aircall:A06", "Display Insight Card", plan_card, run_card, INSIGHT_CARD),
        ActionSpec("aircall:A04", "Add Comment to Call", plan_comment, run_comment),
        ActionSpec("aircall:dialer_requeue", "Re-queue in Power Dialer", plan_requeue, run_requeue),
    )
}


def delegated_kind(step: dict[str, Any]) -> str | None:
    """The job an action only queues for the event's call (its Task, its card), else None."""
    if step.get("action") == "salesforce:A09" and step.get("call_task"):
        return LOG_CALL
    spec = ACTIONS.get(str(step.get("action")))
    return spec.delegates if spec and "call" not in step else None


def record_delegate(step: dict[str, Any]) -> bool:
    """True for a plain ``aircall:A01`` (nothing customised): the record's ``aircall_contact``
    job does it, one per record whichever trigger (T01, T05) asked first."""
    return step.get("action") == "aircall:A01" and set(step) <= {"action", "name"}


def _sources(step: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, source) for every mapping source a step reads (the SOQL's placeholders)."""
    found = []
    for key, value in step.items():
        if key in PLAIN_PARAMS:
            continue
        for item in value.values() if isinstance(value, dict) else [value]:
            if key == "query":
                check_select(str(item))
                found += [(key, t.text) for t in soql_tokens(str(item)) if t.kind == "placeholder"]
            elif isinstance(item, str):
                found.append((key, item))
    return found


def check_step(step: dict[str, Any], number: int) -> None:
    """``BadInput`` when a step names an unknown action or reads a later step."""
    spec = ACTIONS.get(str(step.get("action")))
    if spec is None:
        raise BadInput(f"step {number}: unknown action {step.get('action')!r}")
    if spec.code == "aircall:A01":
        unknown = set(step.get("fields") or {}) - set(aircall_contacts.CONTACT_FIELDS)
        if unknown:
            raise BadInput(
                f"step {number}: an Aircall contact has no field {sorted(unknown)[0]!r} "
                f"(settable: {', '.join(aircall_contacts.CONTACT_FIELDS)})"
            )
    for key, source in _sources(step):
        try:
            fieldmap.parse_source(source)
        except ValueError as exc:
            raise BadInput(f"step {number}, {key}: {exc}") from None
        for used in re.findall(r"steps\.(\d+)", source):
            if not 0 < int(used) < number:
                raise BadInput(f"step {number} reads step {used}, which has not run yet")


def check_for_trigger(step: dict[str, Any], number: int, *, on_record: bool) -> None:
    """``BadInput`` when a (checked) step reads what its trigger does not have.

    A Salesforce trigger (``on_record``) has a record and no call; an Aircall event the reverse.
    """
    code = str(step.get("action"))
    roots = set()
    for _key, source in _sources(step):
        roots |= fieldmap.referenced(source)
    if on_record:
        reads_call = roots & {"call", "contact"}
        if reads_call:
            raise BadInput(
                f"step {number} reads {sorted(reads_call)[0]}: a Salesforce trigger has no "
                "Aircall call or contact; read the record (record.<Field>) instead"
            )
        if code == "salesforce:A09" and step.get("call_task"):
            raise BadInput(f"step {number}: the call's own Task needs a call; map a Task instead")
        if code in ("aircall:A04", "aircall:A06") and not step.get("call"):
            raise BadInput(
                f"step {number}: {code} acts on a call; on a Salesforce trigger say which "
                "(call: a source giving an Aircall call id, e.g. {{record.CallObject}})"
            )
        if code == "aircall:dialer_requeue" and not step.get("user"):
            raise BadInput(f"step {number}: say which Aircall user's dialer (user)")
    else:
        if code == "aircall:A01":
            raise BadInput(
                f"step {number}: aircall:A01 makes the Aircall contact of a Salesforce record; "
                "use it on a Salesforce trigger (T01-T05)"
            )
        if "record" in roots:
            raise BadInput(f"step {number} reads record: only Salesforce triggers have one")


def record_fields(steps: list[dict[str, Any]]) -> set[str]:
    """Names of the record's fields the steps read (``record.<Field>``)."""
    return {
        match
        for step in steps
        for _key, source in _sources(step)
        for match in _RECORD_FIELD.findall(source)
    }


# -- running steps ------------------------------------------------------------------------------


def _effect(engine: Engine, scope_key: str, step: str) -> AutomationEffect | None:
    with Session(engine) as s:
        return s.exec(
            select(AutomationEffect).where(
                AutomationEffect.scope == scope_key, AutomationEffect.step == step
            )
        ).first()


def _keep_effect(engine: Engine, scope_key: str, step: str, result: Any) -> None:
    with Session(engine) as s:
        s.add(AutomationEffect(scope=scope_key, step=step, result=result, created_at=time.time()))
        try:
            s.commit()
        except IntegrityError:
            s.rollback()


async def run_steps(
    ctx: Context,
    job: Job,
    scope_key: str,
    steps: list[dict[str, Any]],
    scope: Scope,
    env: Env,
    *,
    label: str = "step",
) -> list[dict[str, Any]]:
    """Plan and run ``steps`` in order; a step done by an earlier attempt is not done again."""
    results = []
    for number, step in enumerate(steps, start=1):
        name = str(step.get("name") or number)
        done = await ctx.db(_effect, ctx.engine, scope_key, name)
        if done is not None:
            scope.steps[str(number)] = done.result
            results.append(done.result)
            continue
        spec = ACTIONS[step["action"]]
        action = f"{label} {name} {spec.code}"[:80]
        plan: Plan | None = None
        try:
            try:
                plan = spec.plan(step, scope, env)
            except (BadInput, ValueError) as exc:
                # The step cannot be built from this data: retrying cannot help, a fix can.
                raise RemoteRejected("callbridge", None, f"step {name}: {exc}") from exc
            result = await spec.execute(ctx, job, plan, env)
        except Exception as exc:
            await ctx.record(
                job,
                plan.service if plan else "callbridge",
                action,
                plan.sent if plan else step,
                getattr(exc, "body", None) or str(exc),
                ok=False,
            )
            raise
        await ctx.record(job, plan.service, action, plan.sent, result)
        await ctx.db(_keep_effect, ctx.engine, scope_key, name, result)
        scope.steps[str(number)] = result
        results.append(result)
    return results


@dataclass
class StepPreview:
    """What one step would send (a dry run), or why it could not be planned."""

    step: int
    action: str
    service: str
    operation: str
    sent: Any
    note: str | None = None


def preview(steps: list[dict[str, Any]], scope: Scope, env: Env) -> list[StepPreview]:
    """Plan every step without sending anything; later steps see earlier ones as pending."""
    previews = []
    for number, step in enumerate(steps, start=1):
        spec = ACTIONS.get(str(step.get("action")))
        if spec is None:
            previews.append(StepPreview(number, str(step.get("action")), "", "", None, "unknown"))
            continue
        try:
            plan = spec.plan(step, scope, env)
        except (BadInput, ValueError) as exc:
            previews.append(StepPreview(number, spec.code, "", "refused", None, str(exc)))
        else:
            previews.append(
                StepPreview(number, spec.code, plan.service, plan.operation, plan.sent, plan.note)
            )
        scope.steps[str(number)] = Pending(number)
    return previews
