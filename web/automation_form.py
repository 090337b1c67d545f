"""The automation editor's HTML form, to and from a definition (``integrations.sync.automations``).

The form is flat: ``name``, ``trigger``, ``sobject`` (T03-T05), ``cond-<name>`` (a Salesforce
trigger's ``cond-record`` is ``Field = value`` lines), and per step ``step-<i>-action``,
``step-<i>-<input>``, ``step-<i>-field-<j>-target``/``-source``, ``step-<i>-use_mapping`` and
``step-<i>-extra`` (the step's other parameters as JSON, kept as they were). Buttons name an
``op``: the same form is re-rendered with a step added, removed or moved, and only ``save``
stores a version. Checking the definition is ``automations.validate``'s job.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from integrations.errors import BadInput
from integrations.sync.automations import actions
from web.params import bounded_int

# Inputs the form shows for each action, besides its field mapping.
STEP_INPUTS: dict[str, tuple[str, ...]] = {
    "salesforce:A01": ("sobject",),
    "salesforce:A09": ("call_task",),
    "salesforce:A19": ("query",),
    "salesforce:update_record": ("sobject", "id"),
    "salesforce:update_status": ("record", "value", "sobject", "field"),
    "salesforce:update_stage": ("opportunity", "stage"),
    "salesforce:create_event": ("start", "duration_minutes", "who", "what"),
    "salesforce:flag_phone": ("record", "note", "field"),
    "salesforce:do_not_call": ("record",),
    "salesforce:match_or_create": ("sobject",),
    "aircall:A04": ("text", "call"),
    "aircall:A06": ("call",),
    "aircall:dialer_requeue": ("user", "number", "delay_seconds"),
}
# Actions whose payload is a field mapping, and the object it maps (None: the step's sobject).
MAPPED: dict[str, str | None] = {
    "salesforce:A01": None,
    "salesforce:A04": "Lead",
    "salesforce:A06": "Contact",
    "salesforce:A08": "Opportunity",
    "salesforce:A09": "Task",
    "salesforce:create_event": "Event",
    "salesforce:match_or_create": None,
    "salesforce:update_record": None,
    "aircall:A01": None,  # the Aircall contact's names (contacts.CONTACT_FIELDS)
}
# "use_mapping": start from the object's table
USES_MAPPING = set(MAPPED) - {"salesforce:update_record", "aircall:A01"}
NUMBERS = {"duration_minutes", "delay_seconds"}
INPUT_LABELS = {
    "sobject": "Salesforce object",
    "call_task": "The call's own Task (created once, updated by later events)",
    "query": "SOQL (SELECT only; {{values}} are quoted for you)",
    "id": "Record id",
    "record": "Record id",
    "value": "Status value",
    "field": "Field",
    "opportunity": "Opportunity id",
    "stage": "Stage",
    "start": "Start (UNIX seconds or ISO time)",
    "duration_minutes": "Minutes",
    "who": "Who (Contact or Lead id)",
    "what": "What (related record id)",
    "note": "Note",
    "text": "Comment text",
    "user": "Aircall user id",
    "number": "Number",
    "delay_seconds": "Delay (seconds)",
    "call": "Aircall call id (empty: the event's call; on a Salesforce trigger e.g. "
    "{{record.CallObject}})",
}
RECORD_CONDITION_LABEL = "Record fields (one per line: Field = value; nothing after = : empty)"
CONDITION_INPUTS = (
    ("tag", "Tag is any of (comma-separated)"),
    ("direction", "Direction"),
    ("duration_min", "Duration at least (s)"),
    ("duration_max", "Duration at most (s)"),
    ("number", "Aircall number (digits or id)"),
    ("caller", "Caller's number"),
    ("agent_email", "Agent's email"),
    ("answered", "Answered"),
)
MAX_STEPS = 20
MAX_FIELDS = 60
_STEP_KEY = re.compile(r"step-(\d+)-(.+)")
_FIELD_KEY = re.compile(r"field-(\d+)-(target|source)")
_JSON_LITERAL = re.compile(r"true|false|null|-?\d+(\.\d+)?")


def source_text(value: Any) -> str:
    """A mapping source as the form shows it: strings as they are, other literals as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_source_text(text: str) -> Any:
    """The inverse: ``true``, ``false``, ``null`` and numbers are literals (no field has such a
    name), anything else is a source string."""
    text = text.strip()
    return json.loads(text) if _JSON_LITERAL.fullmatch(text) else text


@dataclass
class StepForm:
    action: str = "salesforce:A09"
    inputs: dict[str, str] = field(default_factory=dict)
    fields: list[tuple[str, str]] = field(default_factory=list)
    use_mapping: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        spec = actions.ACTIONS.get(self.action)
        return spec.label if spec else self.action

    @property
    def shown_inputs(self) -> tuple[str, ...]:
        return STEP_INPUTS.get(self.action, ())

    @property
    def mapped(self) -> bool:
        return self.action in MAPPED and not (
            self.action == "salesforce:A09" and self.inputs.get("call_task")
        )

    @property
    def sobject(self) -> str | None:
        """The object the step's fields belong to (for the describe picker)."""
        if self.action not in MAPPED or self.action.startswith("aircall:"):
            return None
        fixed = MAPPED[self.action]
        if fixed:
            return fixed
        return self.inputs.get("sobject") or ("Contact" if "match" in self.action else None)

    @classmethod
    def from_step(cls, step: dict[str, Any]) -> StepForm:
        action = str(step.get("action") or "")
        shown = STEP_INPUTS.get(action, ())
        inputs = {}
        for key in shown:
            if key in step:
                value = step[key]
                inputs[key] = "1" if value is True else "" if value is False else str(value)
        fields = [(t, source_text(s)) for t, s in (step.get("fields") or {}).items()]
        used = {"action", "fields", "use_mapping", *shown}
        extra = {k: v for k, v in step.items() if k not in used}
        return cls(action, inputs, fields, bool(step.get("use_mapping", True)), extra)

    def to_step(self, number: int) -> dict[str, Any]:
        step: dict[str, Any] = dict(self.extra)
        step["action"] = self.action
        for key in self.shown_inputs:
            text = self.inputs.get(key, "").strip()
            if key == "call_task":
                if text:
                    step["call_task"] = True
            elif key in NUMBERS and text:
                try:
                    step[key] = bounded_int(text) if text.isdigit() else float(text)
                    if step[key] is None or not math.isfinite(step[key]):
                        raise ValueError(text)
                except ValueError:
                    raise BadInput(f"step {number}: {INPUT_LABELS[key]} is a number") from None
            elif text:
                step[key] = text
        if self.action in MAPPED:
            mapping = {t.strip(): parse_source_text(s) for t, s in self.fields if t.strip()}
            if mapping:
                step["fields"] = mapping
        if self.action in USES_MAPPING and not self.use_mapping:
            step["use_mapping"] = False
        return step


def record_lines(fields: dict[str, Any]) -> str:
    """A record condition as the form shows it: ``Field = value`` lines."""

    def text(value: Any) -> str:
        return "" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)

    return "\n".join(f"{name} = {text(value)}" for name, value in fields.items())


def parse_record_lines(text: str) -> dict[str, Any]:
    """The inverse; ``BadInput`` for a line without ``=``."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise BadInput(f"record condition: write Field = value, not {line.strip()!r}")
        fields[name.strip()] = value.strip() or None
    return fields


@dataclass
class EditorForm:
    name: str = ""
    trigger: str = "E12"
    conditions: dict[str, str] = field(default_factory=dict)
    steps: list[StepForm] = field(default_factory=lambda: [StepForm()])
    sample: str | None = None
    sobject: str = ""

    @property
    def on_record(self) -> bool:
        """A Salesforce trigger: a record and no call (other conditions, other sources)."""
        return self.trigger.startswith("T")

    @classmethod
    def from_definition(cls, definition: dict[str, Any]) -> EditorForm:
        conditions = {}
        for key, value in (definition.get("conditions") or {}).items():
            if key == "tag" and isinstance(value, list):
                conditions[key] = ", ".join(str(v) for v in value)
            elif key == "record" and isinstance(value, dict):
                conditions[key] = record_lines(value)
            elif key == "answered":
                conditions[key] = "yes" if value else "no"
            elif value is not None:
                conditions[key] = str(value)
        steps = [StepForm.from_step(s) for s in definition.get("actions") or []]
        return cls(
            str(definition.get("name") or ""),
            str(definition.get("trigger") or "E12"),
            conditions,
            steps or [StepForm()],
            sobject=str(definition.get("sobject") or ""),
        )

    @classmethod
    def from_form(cls, form: FormData) -> EditorForm:
        steps: dict[int, StepForm] = {}
        rows: dict[tuple[int, int], dict[str, str]] = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                continue
            match = _STEP_KEY.fullmatch(key)
            if not match:
                continue
            index, rest = int(match[1]), match[2]
            if index >= MAX_STEPS:
                raise BadInput(f"an automation has at most {MAX_STEPS} actions")
            step = steps.setdefault(index, StepForm(inputs={}, use_mapping=True))
            field_match = _FIELD_KEY.fullmatch(rest)
            if field_match:
                row = int(field_match[1])
                if row >= MAX_FIELDS:
                    raise BadInput(f"a step maps at most {MAX_FIELDS} fields")
                rows.setdefault((index, row), {})[field_match[2]] = value
            elif rest == "action":
                step.action = value
            elif rest == "use_mapping":
                step.use_mapping = value != "no"
            elif rest == "extra":
                try:
                    extra = json.loads(value) if value else {}
                except ValueError:
                    raise BadInput(f"step {index + 1}: its other parameters are not JSON") from None
                step.extra = extra if isinstance(extra, dict) else {}
            else:
                step.inputs[rest] = value
        for (index, _row), cells in sorted(rows.items()):
            target, source = cells.get("target", ""), cells.get("source", "")
            if target.strip() or source.strip():  # the blank row the editor always adds: not kept
                steps[index].fields.append((target, source))
        conditions = {
            key: str(form.get(f"cond-{key}") or "").strip()
            for key in (*(key for key, _label in CONDITION_INPUTS), "record")
            if str(form.get(f"cond-{key}") or "").strip()
        }
        sample = form.get("sample")
        return cls(
            name=str(form.get("name") or ""),
            trigger=str(form.get("trigger") or ""),
            conditions=conditions,
            steps=[steps[i] for i in sorted(steps)],
            sample=sample if isinstance(sample, str) and sample else None,
            sobject=str(form.get("sobject") or "").strip(),
        )

    def definition(self, *, enabled: bool) -> dict[str, Any]:
        """The definition this form describes (``BadInput`` for a number that is not one)."""
        conditions: dict[str, Any] = {}
        for key, text in self.conditions.items():
            if (key == "record") != self.on_record:
                continue  # the other family's, left from before the trigger changed
            if key == "record":
                fields = parse_record_lines(text)
                if fields:
                    conditions["record"] = fields
            elif key == "tag":
                tags = [t.strip() for t in text.split(",") if t.strip()]
                if tags:
                    conditions["tag"] = tags
            elif key in ("duration_min", "duration_max"):
                seconds = bounded_int(text, high=10**9)
                if seconds is None:
                    raise BadInput("a duration is a whole number of seconds")
                conditions[key] = seconds
            elif key == "answered":
                conditions[key] = text == "yes"
            else:
                conditions[key] = text
        definition = {
            "name": self.name.strip(),
            "trigger": self.trigger,
            "enabled": enabled,
            "conditions": conditions,
            "actions": [s.to_step(n) for n, s in enumerate(self.steps, start=1)],
        }
        if self.on_record and self.sobject:
            definition["sobject"] = self.sobject
        return definition

    def apply(self, op: str) -> None:
        """Change the form as a button asks: add_step, remove_step-N, up-N, add_field-N."""
        name, _, arg = op.partition("-")
        index = bounded_int(arg, high=MAX_STEPS)
        index = -1 if index is None else index
        if name == "add_step" and len(self.steps) < MAX_STEPS:
            self.steps.append(StepForm())
        elif name == "remove_step" and 0 <= index < len(self.steps) and len(self.steps) > 1:
            del self.steps[index]
        elif name == "up" and 0 < index < len(self.steps):
            self.steps[index - 1], self.steps[index] = self.steps[index], self.steps[index - 1]
        elif (
            name == "add_field"
            and 0 <= index < len(self.steps)
            and len(self.steps[index].fields) < MAX_FIELDS
        ):
            self.steps[index].fields.append(("", ""))
