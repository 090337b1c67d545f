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

This module keeps definitions and their versions (and, for the hot path, the enabled ones per
trigger). Conditions are checked in ``conditions``; which automations an event or record fires,
and the jobs they become, is ``dispatch``; running them (and the dry run) is ``runs``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from integrations.errors import BadInput
from integrations.salesforce.soql import api_name
from integrations.store.automation_models import Automation, AutomationVersion
from integrations.store.db import is_postgres
from integrations.store.ttl_cache import EngineCache
from integrations.sync.automations import actions, dispositions

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
TRIGGER_WORDS: dict[str, str] = {  # what a manager reads; the codes stay as small badges
    "E04": "A call is answered",
    "E06": "A call is tagged",
    "E08": "A call gets a comment",
    "E12": "A call ends",
    "E13": "A contact is created in Aircall",
    "call.created": "A call starts",
    "call.ringing_on_agent": "A call rings on an agent",
    "call.hungup": "A call is hung up",
    "call.voicemail_left": "A caller leaves a voicemail",
    "summary.created": "Aircall writes a call summary",
    "T01": "A Lead is created in Salesforce",
    "T02": "A Contact is created in Salesforce",
    "T03": "A record of a chosen object is created in Salesforce",
    "T04": "A record of a chosen object is updated in Salesforce",
    "T05": "Salesforce sends an Outbound Message",
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


def restore(
    engine: Engine,
    automation_id: int,
    version: int,
    *,
    by: str = SYSTEM,
    with_status: bool = False,
) -> Automation:
    """Bring back an earlier version, as a new version (the history keeps everything).

    The automation stays enabled or disabled as it is now unless ``with_status``: restoring
    an old edit must not switch a live automation off (or a stopped one on) as a side effect.
    """
    restored = definition(engine, automation_id, version)
    if not with_status:
        restored["enabled"] = bool(definition(engine, automation_id).get("enabled", True))
    return save(
        engine,
        restored,
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


def with_current_version(*columns: Any) -> Any:
    """``SELECT columns`` (default: each automation and its current version) over the join."""
    return select(*(columns or (Automation, AutomationVersion))).join(
        AutomationVersion,
        (AutomationVersion.automation_id == Automation.id)
        & (AutomationVersion.version == Automation.version),
    )


ENABLED_TTL = 2.0  # seconds before another process's edit reaches this one's webhooks


_enabled_by_trigger: EngineCache[dict[str, list[tuple[Automation, dict[str, Any]]]]] = EngineCache(
    ENABLED_TTL
)


def _load_enabled(s: Session) -> dict[str, list[tuple[Automation, dict[str, Any]]]]:
    rows = s.execute(with_current_version().where(Automation.enabled).order_by(Automation.id)).all()
    by_trigger: dict[str, list[tuple[Automation, dict[str, Any]]]] = {}
    for automation, version in rows:
        s.expunge(automation)
        by_trigger.setdefault(automation.trigger, []).append((automation, version.definition))
    return by_trigger


def enabled_for(s: Session, code: str) -> list[tuple[Automation, dict[str, Any]]]:
    """The enabled automations of a trigger with their current definitions, read at most every
    ``ENABLED_TTL`` seconds per process: the webhook's hot path should not query them each time.
    """
    return _enabled_by_trigger.get(s.get_bind().engine, lambda: _load_enabled(s)).get(code, [])
