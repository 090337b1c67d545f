"""Disposition rules: the tag an agent sets on a call says how it went, and Salesforce follows.

- Interested: the open opportunity's stage, or the lead's status (target: Qualified).
- Booked / Meeting Set: an Event (next business day, 10:00 org time, 30 min) and the stage
  (Meeting Scheduled).
- Not Interested: the lead's status (Disqualified).
- No Answer: a follow-up Task, and the number back in the agent's Power Dialer after an hour
  (Attempted).
- Voicemail Left: the lead's status (Attempted).
- Callback Requested: a Task "Schedule Callback" due on the date written in a comment
  (``2026-03-12``), else the next business day (Callback Scheduled).
- Wrong Number: a line in the record's Description, and ``flag_field`` set true when the rule
  names one, e.g. a custom checkbox ``Phone_Invalid__c`` (Invalid).
- DNC Requested: ``DoNotCall`` and ``HasOptedOutOfEmail``; the number is suppressed: no re-queue,
  and ``suppression.is_suppressed`` for every outbound action (Opted Out).
- Busy: the number back in the agent's Power Dialer after 15 minutes.

Which tags mean which disposition, the target values and the options (``delay_seconds``,
``due_days``, ``event_hour``, ``event_minutes``, ``flag_field``) are rows a manager edits
(``set_rule``). A fresh org has none of the target names in its Lead Status or Stage picklists:
``check_targets`` lists what to map. A Contact's status is written only when
``DISPOSITION_CONTACT_STATUS_FIELD`` names a Contact field.

The person is the call's Task's ``WhoId`` when the call is logged, else the caller's match. Each
step is done once per call and disposition, and dates derive from the call's start, so a tag
that arrives before or after ``call.ended`` (or both) gives the same end state.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from integrations.errors import BadInput
from integrations.salesforce.client import SalesforceClient
from integrations.settings import Settings
from integrations.store.automation_models import DispositionRule
from integrations.store.db import insert_ignore
from integrations.store.models import Call
from integrations.store.ttl_cache import EngineCache
from integrations.sync.automations import mapping_store
from integrations.sync.jobs import queue
from integrations.sync.jobs.kinds import DISPOSITION

_EVENTS = {"call.tagged", "call.ended"}

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "key": "interested",
        "name": "Interested",
        "tags": ["Interested"],
        "lead_status": "Qualified",
        "opportunity_stage": "Qualified",
    },
    {
        "key": "booked",
        "name": "Booked / Meeting Set",
        "tags": ["Booked", "Meeting Set"],
        "lead_status": "Meeting Scheduled",
        "opportunity_stage": "Meeting Scheduled",
        "options": {"event_days": 1, "event_hour": 10, "event_minutes": 30},
    },
    {
        "key": "not_interested",
        "name": "Not Interested",
        "tags": ["Not Interested"],
        "lead_status": "Disqualified",
    },
    {
        "key": "no_answer",
        "name": "No Answer",
        "tags": ["No Answer"],
        "lead_status": "Attempted",
        "options": {"delay_seconds": 3600, "due_days": 1},
    },
    {
        "key": "voicemail_left",
        "name": "Voicemail Left",
        "tags": ["Voicemail Left"],
        "lead_status": "Attempted",
    },
    {
        "key": "callback",
        "name": "Callback Requested",
        "tags": ["Callback Requested"],
        "lead_status": "Callback Scheduled",
        "options": {"due_days": 1},
    },
    {
        "key": "wrong_number",
        "name": "Wrong Number",
        "tags": ["Wrong Number"],
        "lead_status": "Invalid",
        "options": {"flag_field": None},
    },
    {
        "key": "dnc",
        "name": "DNC Requested",
        "tags": ["DNC Requested", "DNC"],
        "lead_status": "Opted Out",
    },
    {
        "key": "busy",
        "name": "Busy",
        "tags": ["Busy"],
        "options": {"delay_seconds": 900},
    },
)
EDITABLE = ("name", "tags", "lead_status", "contact_status", "opportunity_stage", "options")
# The numeric options and the values that make sense: a manager's typo ("9" * 5000 is read as
# Infinity) is refused when saved instead of failing every tagged call's job.
NUMBER_OPTIONS = {
    "delay_seconds": (0, 30 * 86400),
    "due_days": (0, 365),
    "event_days": (0, 365),
    "event_hour": (0, 23),
    "event_minutes": (1, 24 * 60),
}
RULES_TTL = 2.0  # seconds before another process's rule edit reaches this one's webhooks
# The enabled rules' tags (casefolded): all the webhook path needs to decide on a job.
_rule_tags: EngineCache[frozenset[str]] = EngineCache(RULES_TTL)


# -- rules ----------------------------------------------------------------------------------------


def seed_rules(engine: Engine) -> None:
    """Add the shipped rules that are missing; edited rules are left as they are."""
    now = time.time()
    with Session(engine) as s:
        for rule in DEFAULT_RULES:
            s.execute(
                insert_ignore(
                    engine,
                    DispositionRule.__table__,
                    {
                        "key": rule["key"],
                        "name": rule["name"],
                        "tags": rule["tags"],
                        "lead_status": rule.get("lead_status"),
                        "contact_status": rule.get("lead_status"),
                        "opportunity_stage": rule.get("opportunity_stage"),
                        "options": rule.get("options", {}),
                        "enabled": True,
                        "updated_by": "callbridge",
                        "updated_at": now,
                    },
                )
            )
        s.commit()
    _rule_tags.invalidate(engine)


def rules(engine: Engine) -> list[DispositionRule]:
    with Session(engine) as s:
        return list(s.execute(select(DispositionRule).order_by(DispositionRule.key)).scalars())


def set_rule(engine: Engine, key: str, *, by: str, **changes: Any) -> DispositionRule:
    """Change a rule: its tags, target values, options, or ``enabled``."""
    unknown = set(changes) - {*EDITABLE, "enabled"}
    if unknown:
        raise BadInput(f"unknown rule setting {sorted(unknown)[0]!r}")
    if "tags" in changes and not (
        isinstance(changes["tags"], list) and all(isinstance(t, str) for t in changes["tags"])
    ):
        raise BadInput("tags is a list of tag names")
    if "options" in changes:
        _check_options(changes["options"])
    with Session(engine, expire_on_commit=False) as s:
        rule = s.get(DispositionRule, key)
        if rule is None:
            raise BadInput(f"no disposition {key!r}")
        for name, value in changes.items():
            if name == "options":
                value = {**rule.options, **value}
            setattr(rule, name, value)
        rule.updated_by, rule.updated_at = by, time.time()
        s.add(rule)
        s.commit()
    _rule_tags.invalidate(engine)  # this process's webhooks see the change at once
    return rule


def _check_options(options: object) -> None:
    if not isinstance(options, dict):
        raise BadInput("options is an object of option names and values")
    for name, value in options.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if name in NUMBER_OPTIONS:
            low, high = NUMBER_OPTIONS[name]
            if value is not None and not (number and low <= value <= high):
                raise BadInput(f"{name} must be a number from {low} to {high}")
        elif number and not math.isfinite(value):
            raise BadInput(f"{name} is not a usable number")


def matching(tags: list[str], all_rules: list[DispositionRule]) -> list[DispositionRule]:
    """The enabled rules whose tags the call has (tag names compare without case)."""
    names = {t.casefold() for t in tags}
    return [r for r in all_rules if r.enabled and names & {t.casefold() for t in r.tags}]


def tag_names(snapshot: dict[str, Any]) -> list[str]:
    return [
        str(t["name"]) for t in snapshot.get("tags") or [] if isinstance(t, dict) and t.get("name")
    ]


class TargetProblem(str):
    """A target value the org does not have, said so the manager knows what to map."""


def _target_fields(settings: Settings) -> list[tuple[str, str, str]]:
    """(object, field, rule attribute) of each value a rule writes into Salesforce."""
    checks = [("Lead", "Status", "lead_status"), ("Opportunity", "StageName", "opportunity_stage")]
    if settings.disposition_contact_status_field:
        checks.append(("Contact", settings.disposition_contact_status_field, "contact_status"))
    return checks


def _value_problem(
    sf: SalesforceClient, sobject: str, field_name: str, value: str | None, prefix: str = ""
) -> TargetProblem | None:
    """Why the org would refuse ``value`` in ``sobject.field_name``, else None."""
    described = mapping_store.picklist_describe(sf, sobject)
    spec = mapping_store.fields_by_name(described).get(field_name.lower())
    if spec is None:
        return TargetProblem(f"{prefix}{sobject} has no field {field_name}")
    allowed = mapping_store.picklist_values(spec) if spec.get("type") == "picklist" else None
    if value and allowed is not None and value not in allowed:
        return TargetProblem(
            f"{prefix}{sobject} {spec.get('label') or field_name} has no value {value!r}; "
            f"map it to one of: {', '.join(allowed)}"
        )
    return None


def check_targets(sf: SalesforceClient, engine: Engine, settings: Settings) -> list[TargetProblem]:
    """Every rule target missing from the org's picklists (an empty list: all set)."""
    problems = []
    for sobject, field_name, attribute in _target_fields(settings):
        missing = _value_problem(sf, sobject, field_name, None)
        if missing is not None:
            problems.append(missing)
            continue
        for rule in rules(engine):
            value = getattr(rule, attribute)
            problem = _value_problem(sf, sobject, field_name, value, f"{rule.name}: ")
            if rule.enabled and problem is not None:
                problems.append(problem)
    return problems


def check_values(
    sf: SalesforceClient, settings: Settings, values: dict[str, Any]
) -> list[TargetProblem]:
    """The target values about to be saved that the org's picklists lack: refused at save, as
    the mapping editor refuses, since every call with the tag would fail on them."""
    problems = []
    for sobject, field_name, attribute in _target_fields(settings):
        value = values.get(attribute)
        problem = _value_problem(sf, sobject, field_name, value) if value else None
        if problem is not None:
            problems.append(problem)
    return problems


# -- queueing --------------------------------------------------------------------------------------


def _enabled_tags(s: Session) -> frozenset[str]:
    enabled = s.execute(select(DispositionRule.tags).where(DispositionRule.enabled)).scalars()
    return frozenset(t.casefold() for tags in enabled for t in tags)


def enqueue_for_call(s: Session, event_name: str, call: Call, event_row_id: int | None) -> None:
    """In the webhook's transaction: a tagged or ended call with a disposition tag gets a job.

    The rules' tags are read at most every ``RULES_TTL`` seconds (this is every webhook's path);
    the job itself reads the rules afresh.
    """
    if event_name not in _EVENTS:
        return
    names = {t.casefold() for t in tag_names(call.snapshot)}
    if names and names & _rule_tags.get(s.get_bind().engine, lambda: _enabled_tags(s)):
        queue.enqueue(
            s,
            kind=DISPOSITION,
            key=f"{DISPOSITION}:{call.id}",
            call_id=call.id,
            event_id=event_row_id,
        )


# -- applying --------------------------------------------------------------------------------------
