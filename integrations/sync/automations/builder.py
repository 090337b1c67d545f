"""What the automation builder shows besides the definitions: the automations at a glance,
real recent events to preview against, and the org's fields from its (cached) describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.salesforce.client import SalesforceClient
from integrations.store.automation_models import Automation, FieldMapping
from integrations.store.models import Event
from integrations.store.salesforce_sync import SalesforceDelivery
from integrations.sync.automations import actions, definitions, fieldmap, mapping_store

SAMPLES = 10  # recent events offered to preview against


@dataclass(frozen=True)
class StepLabel:
    label: str  # "Create Task"
    service: str  # "Salesforce"
    code: str  # "A09", or "" for actions without a catalogue code


@dataclass(frozen=True)
class Summary:
    id: int
    name: str
    trigger: str
    trigger_label: str
    enabled: bool
    version: int
    builtin: str | None
    actions: list[StepLabel]
    updated_at: float


def step_label(action: str) -> StepLabel:
    """An action code ("salesforce:A04") as the builder shows it: words, service, code badge."""
    service, _, name = action.partition(":")
    spec = actions.ACTIONS.get(action)
    code = name if len(name) == 3 and name[0] == "A" and name[1:].isdigit() else ""
    return StepLabel(spec.label if spec else action, service.capitalize(), code)


def summaries(engine: Engine) -> list[Summary]:
    """Every automation with its current version's actions, by trigger."""
    with Session(engine) as s:
        rows = s.execute(
            definitions.with_current_version().order_by(Automation.trigger, Automation.id)
        ).all()
    out = []
    for automation, version in rows:
        steps = version.definition.get("actions") or []
        labels = [step_label(str(step.get("action"))) for step in steps]
        out.append(
            Summary(
                id=automation.id,  # type: ignore[arg-type]
                name=automation.name,
                trigger=automation.trigger,
                trigger_label=definitions.TRIGGER_WORDS.get(automation.trigger, ""),
                enabled=automation.enabled,
                version=automation.version,
                builtin=automation.builtin,
                actions=labels,
                updated_at=automation.updated_at,
            )
        )
    return out


@dataclass(frozen=True)
class Sample:
    """A stored event a dry run can use: ``event`` is what ``runs.dry_run`` takes."""

    key: str  # e<Event.id> or s<SalesforceDelivery.id>
    label: str
    received_at: float
    event: dict[str, Any] = field(hash=False)


def samples(engine: Engine, trigger: str, limit: int = SAMPLES) -> list[Sample]:
    """The newest stored events of ``trigger``, newest first (webhooks or Salesforce records)."""
    with Session(engine) as s:
        if trigger.startswith("T"):
            deliveries = s.exec(
                select(SalesforceDelivery)
                .where(SalesforceDelivery.trigger == trigger)
                .order_by(SalesforceDelivery.id.desc())  # type: ignore[union-attr]
                .limit(limit)
            ).all()
            return [
                Sample(
                    f"s{d.id}",
                    f"{d.sobject} {d.record_id}",
                    d.received_at,
                    {
                        "event": trigger,
                        "sobject": d.sobject,
                        "id": d.record_id,
                        "data": dict(d.record),
                    },
                )
                for d in deliveries
            ]
        name = definitions.TRIGGERS.get(trigger)
        events = s.exec(
            select(Event)
            .where(Event.source == "aircall", Event.name == name)
            .order_by(Event.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
    return [
        Sample(
            f"e{e.id}",
            f"{e.name} call {e.call_id}" if e.call_id else e.name,
            e.received_at,
            {"event": e.name, "data": dict(e.payload.get("data") or {})},
        )
        for e in events
    ]


def pick(found: list[Sample], key: str | None) -> Sample | None:
    """The sample ``key`` names, else the newest."""
    chosen = next((sample for sample in found if sample.key == key), None)
    return chosen or (found[0] if found else None)


@dataclass(frozen=True)
class FieldInfo:
    name: str
    label: str
    type: str
    createable: bool
    required: bool
    picklist: list[str]


def fields(sf: SalesforceClient, sobject: str) -> list[FieldInfo]:
    """The object's fields from the cached describe, for pickers and hints."""
    described = mapping_store.picklist_describe(sf, sobject)
    out = []
    for spec in described.get("fields", []):
        out.append(
            FieldInfo(
                name=spec["name"],
                label=spec.get("label") or spec["name"],
                type=spec.get("type") or "",
                createable=bool(spec.get("createable")),
                required=bool(
                    spec.get("createable")
                    and not spec.get("nillable")
                    and not spec.get("defaultedOnCreate")
                ),
                picklist=mapping_store.picklist_values(spec),
            )
        )
    return sorted(out, key=lambda f: (not f.required, f.name))


def mapped_objects(engine: Engine) -> list[str]:
    """Objects with a mapping: the shipped ones and any the manager added."""
    with Session(engine) as s:
        saved = set(s.exec(select(FieldMapping.sobject)))
    return sorted(set(fieldmap.DEFAULT_MAPPINGS) | saved)


def is_customised(engine: Engine, sobject: str) -> bool:
    with Session(engine) as s:
        return s.get(FieldMapping, sobject) is not None
