"""Which enabled automations an Aircall event or a Salesforce record triggers, and the jobs they
become: matched in the transaction that stores the event, each automation queued as one job
pinned to its current version (or, when its steps only queue Callbridge's own jobs, those)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from integrations.aircall.events import WebhookEvent
from integrations.store.automation_models import Automation, AutomationVersion
from integrations.store.models import Call
from integrations.sync.automations import actions, dispositions, step_plan
from integrations.sync.automations.conditions import unmet
from integrations.sync.automations.definitions import (
    CHOSEN_OBJECT,
    EVENT_TRIGGER,
    FIXED_OBJECT,
    LIVE_TRIGGERS,
    enabled_for,
    with_current_version,
)
from integrations.sync.jobs import kinds, queue
from integrations.sync.jobs.kinds import (
    AUTOMATION,
    LOG_CALL,
)


def call_job_conditions(s: Session, kind: str) -> list[dict[str, Any]]:
    """The conditions of each enabled automation that asks for ``kind`` (on any event trigger);
    a call gets that job when one of them holds (``wants_call_job``). Read once per batch of
    deliveries, not once per delivery.

    The intake keeps the call's Task up to date on every lifecycle event on behalf of the
    automations that log it (the E12 default): with none enabled, there is no Task.
    """
    return [
        current.get("conditions") or {}
        for code in EVENT_TRIGGER.values()
        for _, current in enabled_for(s, code)
        if any(actions.delegated_kind(step) == kind for step in current["actions"])
    ]


def wants_call_job(conditions: list[dict[str, Any]], snapshot: dict[str, Any]) -> bool:
    """Whether one of ``call_job_conditions`` holds for the call."""
    return any(unmet(condition, snapshot) is None for condition in conditions)


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
    for automation, current in enabled_for(s, code):
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
        for automation, current in enabled_for(s, trigger)
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
