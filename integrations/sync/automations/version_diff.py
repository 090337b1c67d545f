"""What restoring an old version would change: the two definitions compared field by field, so
the manager confirms a restore knowing what it brings back (issue 15, bug 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Not the status: whether a restore brings it back too is the manager's choice, asked apart.
TOP_LABELS = {"name": "Name", "trigger": "Trigger", "sobject": "Object"}


@dataclass(frozen=True)
class Change:
    """One field that differs: its label in plain words, the value now and after."""

    label: str
    now: str
    after: str


def changes(current: dict[str, Any], other: dict[str, Any]) -> list[Change]:
    """Each field whose value differs between ``current`` and ``other``, in reading order."""
    now, after = _flatten(current), _flatten(other)
    labels = list(now) + [label for label in after if label not in now]
    return [
        Change(label, now.get(label, "(none)"), after.get(label, "(none)"))
        for label in labels
        if now.get(label) != after.get(label)
    ]


def _flatten(definition: dict[str, Any]) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, label in TOP_LABELS.items():
        if definition.get(key) not in (None, ""):
            flat[label] = str(definition[key])
    for name, value in (definition.get("conditions") or {}).items():
        flat[f"Condition: {name}"] = _text(value)
    for number, step in enumerate(definition.get("actions") or [], start=1):
        for key, value in step.items():
            if key == "fields" and isinstance(value, dict):
                for field, source in value.items():
                    flat[f"Step {number}: field {field}"] = _text(source)
            else:
                flat[f"Step {number}: {key}"] = _text(value)
    return flat


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, sort_keys=True)
