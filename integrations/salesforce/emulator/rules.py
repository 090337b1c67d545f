"""Per-object rules and computed fields (names, activity timing, Who/What, stage defaults)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .errors import bad_request
from .picklists import CLOSED_TASK_STATUSES, OPPORTUNITY_STAGES
from .schema import SObjectDef
from .values import format_datetime, now_utc, parse_datetime

if TYPE_CHECKING:
    from .store import Store

MAX_EVENT_MINUTES = 14 * 24 * 60


def apply(
    org: Store,
    obj: SObjectDef,
    record: dict,
    changes: dict,
    *,
    creating: bool,
    before: dict | None = None,
) -> None:
    """Check cross-field rules and fill computed fields of ``record`` (already merged)."""
    if obj.name in ("Contact", "Lead"):
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record["LastName"]) if p)
    if obj.name in ("Task", "Event"):
        _who_what(org, record)
    if obj.name == "Task":
        _task(record, before)
    elif obj.name == "Event":
        _event(record, changes, creating=creating)
    elif obj.name == "Opportunity":
        _opportunity(record, changes)


def _who_what(org: Store, record: dict) -> None:
    who, what = record.get("WhoId"), record.get("WhatId")
    if who and who.startswith("00Q") and what:
        raise bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            "Related To ID: a task or event whose Name ID is a lead cannot be related to a record",
            ["WhoId", "WhatId"],
        )
    account = None
    if what:
        found = org.lookup(what)
        if found and found[0] == "Account":
            account = what
        elif found and found[0] == "Opportunity":
            account = found[1].get("AccountId")
    if account is None and who and who.startswith("003"):
        found = org.lookup(who)
        account = found[1].get("AccountId") if found else None
    record["AccountId"] = account


def _task(record: dict, before: dict | None) -> None:
    closed = record["Status"] in CLOSED_TASK_STATUSES
    record["IsClosed"] = closed
    record["IsHighPriority"] = record["Priority"] == "High"
    if not closed:
        record["CompletedDateTime"] = None
    elif before is None or not before.get("IsClosed"):
        record["CompletedDateTime"] = format_datetime(now_utc())


def _opportunity(record: dict, changes: dict) -> None:
    probability, forecast = OPPORTUNITY_STAGES.get(record["StageName"], (None, "Pipeline"))
    if "StageName" in changes:
        if "Probability" not in changes:
            record["Probability"] = None if probability is None else float(probability)
        if "ForecastCategoryName" not in changes:
            record["ForecastCategoryName"] = forecast
    record["IsClosed"] = record["StageName"] in ("Closed Won", "Closed Lost")
    record["IsWon"] = record["StageName"] == "Closed Won"


def _event(record: dict, changes: dict, *, creating: bool) -> None:
    """Salesforce's Event timing rules (contract 5.3).

    Not all-day: a start (StartDateTime or ActivityDateTime) and a duration or end; given both,
    they must agree. All-day: a day (ActivityDate or a start); the duration defaults to one day.
    On update, a changed duration drops the stored end (and the other way round), so the two are
    recomputed from what the caller sent.
    """
    if not creating:
        if "DurationInMinutes" in changes and "EndDateTime" not in changes:
            record["EndDateTime"] = None
        elif "EndDateTime" in changes and "DurationInMinutes" not in changes:
            record["DurationInMinutes"] = None
        elif (
            {"StartDateTime", "ActivityDateTime"} & set(changes)
        ) and "EndDateTime" not in changes:
            record["EndDateTime"] = None
        if "StartDateTime" in changes and "ActivityDateTime" not in changes:
            record["ActivityDateTime"] = None
        elif "ActivityDateTime" in changes and "StartDateTime" not in changes:
            record["StartDateTime"] = None

    start_text = record.get("StartDateTime") or record.get("ActivityDateTime")
    if (
        record.get("StartDateTime")
        and record.get("ActivityDateTime")
        and record["StartDateTime"] != record["ActivityDateTime"]
    ):
        raise bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            "Start Date Time: StartDateTime and ActivityDateTime must be the same",
            ["StartDateTime", "ActivityDateTime"],
        )
    start = parse_datetime(start_text) if start_text else None
    end = parse_datetime(record["EndDateTime"]) if record.get("EndDateTime") else None
    duration = record.get("DurationInMinutes")

    missing = []
    if record.get("IsAllDayEvent"):
        day_text = record.get("ActivityDate")
        if day_text:
            day = dt.date.fromisoformat(day_text)
        elif start is not None:
            day = start.date()
        else:
            day, missing = None, ["ActivityDate"]
        start = None if day is None else dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if duration is None and end is None:
            duration = 24 * 60
    else:
        if start is None:
            missing.append("ActivityDateTime")
        if duration is None and end is None:
            missing.append("DurationInMinutes")
    if missing or start is None:
        raise bad_request(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
    if end is not None and duration is not None:
        if end - start != dt.timedelta(minutes=duration):
            raise bad_request(
                "FIELD_INTEGRITY_EXCEPTION",
                "End Date Time: the end date/time and the duration do not agree",
                ["EndDateTime", "DurationInMinutes"],
            )
    elif end is not None:
        duration = int((end - start).total_seconds() // 60)
    if duration is None or duration < 0:
        raise bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            "End Date Time: End date/time can't be before start date/time",
            ["EndDateTime"],
        )
    if duration > MAX_EVENT_MINUTES:
        raise bad_request(
            "FIELD_INTEGRITY_EXCEPTION",
            "Duration: an event cannot last longer than 14 days",
            ["DurationInMinutes"],
        )
    end = start + dt.timedelta(minutes=duration)
    record["StartDateTime"] = format_datetime(start)
    record["ActivityDateTime"] = format_datetime(start)
    record["EndDateTime"] = format_datetime(end)
    record["DurationInMinutes"] = duration
    record["ActivityDate"] = start.date().isoformat()
