"""Whether an automation's conditions hold: for a call event (tag, direction, duration, line,
caller, agent, answered) and for a Salesforce record (its ``record`` condition)."""

from __future__ import annotations

from typing import Any

from integrations.phones import to_e164


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
