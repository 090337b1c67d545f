"""T01-T04 by polling the Salesforce emulator: each record delivered once, whatever happens;
the objects and fields enabled automations need are read too."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.aircall.emulator import Company
from integrations.salesforce.emulator import Fault, Org
from integrations.settings import Settings
from integrations.store import db
from integrations.store.models import SyncLink
from integrations.store.salesforce_sync import PollWatermark, SalesforceDelivery, note_write
from integrations.sync.automations import definitions
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.worker import make_context
from integrations.sync.salesforce_triggers.polling import PAGE, poll_once
from tests.conftest import SettingsWith, StackWith
from tests.helpers import jobs, settled


class Clock:
    """The emulator's clock: records get the stamps a test chooses (whole seconds)."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.at

    def tick(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("integrations.salesforce.emulator.org.now_utc", clock)
    monkeypatch.setattr("integrations.salesforce.emulator.lifecycle.now_utc", clock)
    return clock


@pytest.fixture
def context(settings_with: SettingsWith) -> Callable[[Engine], Context]:
    """A worker's context on an engine (its own settings each time), watching Accounts too."""

    def on(engine: Engine) -> Context:
        return make_context(settings_with(salesforce_poll_objects=["Account"]), engine)

    return on


@pytest.fixture
def ctx(context: Callable[[Engine], Context], engine: Engine) -> Iterator[Context]:
    made = context(engine)
    yield made
    made.salesforce.close()


def poll(ctx: Context) -> dict[str, int]:
    return asyncio.run(poll_once(ctx))


def delivered(engine: Engine, trigger: str) -> list[SalesforceDelivery]:
    with Session(engine) as s:
        query = select(SalesforceDelivery).where(SalesforceDelivery.trigger == trigger)
        return list(s.exec(query.order_by(SalesforceDelivery.id)))


def new_leads(org: Org, count: int, **fields: object) -> list[str]:
    return [
        org.insert("Lead", {"LastName": f"Lead {n}", "Company": "ACME", **fields})
        for n in range(count)
    ]


def test_records_sharing_a_second_are_each_delivered_once_across_pages(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    ids = new_leads(org, 2 * PAGE + 50)  # all stamped with the same second
    used = org.api_used
    assert poll(ctx)["T01:Lead"] == 2 * PAGE + 50
    # Three pages of Leads, one of Contacts and two of Accounts (T03, T04).
    assert org.api_used - used == 6
    assert poll(ctx)["T01:Lead"] == 0
    assert sorted(d.record_id for d in delivered(engine, "T01")) == sorted(ids)
    queued = jobs(engine, "aircall_contact")
    assert sorted(job.payload["id"] for job in queued) == sorted(ids)
    assert queued[0].payload["record"]["Company"] == "ACME"


def test_a_restart_midway_misses_nothing_and_repeats_nothing(
    context: Callable[[Engine], Context],
    org: Org,
    database_url: str,
    engine: Engine,
    ctx: Context,
    clock: Clock,
) -> None:
    first = new_leads(org, PAGE + 30)
    clock.tick(1)
    first += new_leads(org, 30)
    # The first page is read; the second fails, as if the process died there.
    org.faults.add(Fault(method="GET", path=r"/query", kind="delay", delay=0.0))
    org.faults.add(Fault(method="GET", path=r"/query", status=503, body="unavailable"))
    assert poll(ctx)["T01:Lead"] == PAGE
    with Session(engine) as s:
        mark = s.get(PollWatermark, ("T01", "Lead"))
        assert mark.last_error.startswith("RemoteUnavailable: salesforce answered 503")
    clock.tick(1)
    later = new_leads(org, 5)
    restarted = db.make_engine(database_url)
    try:
        again = context(restarted)
        assert poll(again)["T01:Lead"] == 30 + 30 + 5
        assert poll(again)["T01:Lead"] == 0
        again.salesforce.close()
    finally:
        restarted.dispose()
    assert sorted(d.record_id for d in delivered(engine, "T01")) == sorted(first + later)
    assert len(jobs(engine, "aircall_contact")) == len(first + later)


def test_a_record_committed_late_within_the_lookback_is_delivered(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    (seen,) = new_leads(org, 1)
    assert poll(ctx)["T01:Lead"] == 1
    clock.tick(-20)  # a long transaction commits a Lead stamped before the watermark
    (late,) = new_leads(org, 1)
    clock.tick(40)
    assert poll(ctx)["T01:Lead"] == 1
    assert [d.record_id for d in delivered(engine, "T01")] == [seen, late]


def test_each_change_of_a_watched_object_fires_t04_once(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    account = org.insert("Account", {"Name": "ACME"})
    counts = poll(ctx)
    assert (counts["T03:Account"], counts["T04:Account"]) == (1, 0)  # new, not updated
    clock.tick(5)
    org.update("Account", account, {"Phone": "+14155550100"})
    assert poll(ctx)["T04:Account"] == 1
    assert poll(ctx)["T04:Account"] == 0
    clock.tick(5)
    org.update("Account", account, {"Phone": "+14155550101"})
    assert poll(ctx)["T04:Account"] == 1
    changes = delivered(engine, "T04")
    assert [c.record["Phone"] for c in changes] == ["+14155550100", "+14155550101"]
    assert len({c.dedupe_key for c in changes}) == 2
    assert jobs(engine, "aircall_contact") == []  # no automation on T03/T04 of Account


def test_records_callbridge_wrote_do_not_trigger_it_back(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    clock.at = dt.datetime.now(dt.UTC).replace(microsecond=0)  # our writes use the real clock
    (ours,) = new_leads(org, 1)
    (theirs,) = new_leads(org, 1)
    account = org.insert("Account", {"Name": "ACME"})
    task = org.insert("Task", {"Subject": "Call"})
    with Session(engine) as s:
        note_write(s, "Lead", ours, created=True)
        s.add(SyncLink(call_id=1, action="A09", sobject="Task", record_id=task, created_at=0))
        s.commit()
    clock.tick(2)
    org.update("Account", account, {"Phone": "+14155550100"})
    with Session(engine) as s:
        note_write(s, "Account", account, created=False)
        s.commit()
    ctx.settings.salesforce_poll_objects.append("Task")
    poll(ctx)
    assert [d.record_id for d in delivered(engine, "T01")] == [theirs]
    assert [d.record_id for d in delivered(engine, "T03")] == [account]
    assert delivered(engine, "T04") == []
    clock.tick(60)  # a person edits the account a minute later
    org.update("Account", account, {"Phone": "+14155550199"})
    poll(ctx)
    assert [d.record["Phone"] for d in delivered(engine, "T04")] == ["+14155550199"]


def test_new_leads_and_contacts_become_aircall_contacts(
    stack_with: StackWith, org: Org, company: Company, engine: Engine
) -> None:
    """The worker's own poll loop, end to end: T01/T02 -> A01, no duplicates, clear skips."""
    account = org.insert("Account", {"Name": "Globex"})
    lead = org.insert(
        "Lead", {"FirstName": "Ada", "LastName": "Lee", "Company": "ACME", "Phone": "4155550100"}
    )
    contact = org.insert(  # the same person, also a Contact: one Aircall contact for both
        "Contact",
        {
            "LastName": "Lee",
            "AccountId": account,
            "Phone": "+1 (415) 555-0100",
            "MobilePhone": "+14155550177",
        },
    )
    silent = org.insert("Lead", {"LastName": "Nophone", "Company": "ACME"})
    with stack_with(salesforce_poll_seconds=0.2):
        done = settled(engine, "aircall_contact", count=3, timeout=20)
    assert all(job.status == "done" for job in done)
    (made,) = company.list_contacts()
    assert made["information"] in (f"salesforce_id:{lead}", f"salesforce_id:{contact}")
    assert "+14155550100" in [p["value"] for p in made["phone_numbers"]]
    results = {job.payload["id"]: job.result for job in done}
    assert results[silent]["skipped"].endswith("has no phone number: Aircall needs one per contact")
    assert {results[lead]["contact_id"], results[contact]["contact_id"]} == {made["id"]}
    assert sorted([results[lead]["created"], results[contact]["created"]]) == [False, True]


def test_polling_starts_at_the_lookback_on_a_fresh_install(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    clock.tick(-3600)
    new_leads(org, 1)  # an hour old: before Callbridge was set up
    clock.tick(3600 - 60)
    (recent,) = new_leads(org, 1)
    started = time.time()
    poll(ctx)
    assert [d.record_id for d in delivered(engine, "T01")] == [recent]
    with Session(engine) as s:
        mark = s.get(PollWatermark, ("T01", "Lead"))
        assert mark.polled_at >= started
        assert mark.last_error is None


def test_only_object_api_names_can_be_watched() -> None:
    chosen = Settings(_env_file=None, salesforce_poll_objects="Account, Invoice__c")
    assert chosen.salesforce_poll_objects == ["Account", "Invoice__c"]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, salesforce_poll_objects="Account WHERE Id != null")


def test_an_object_an_enabled_automation_names_is_polled_with_the_fields_it_reads(
    ctx: Context, org: Org, clock: Clock, engine: Engine
) -> None:
    saved = definitions.save(
        engine,
        {
            "name": "Big new deals",
            "trigger": "T03",
            "sobject": "Opportunity",
            "conditions": {"record": {"StageName": "Prospecting"}},
            "actions": [
                {
                    "action": "salesforce:A09",
                    "use_mapping": False,
                    "fields": {"WhatId": "{{record.Id}}", "Subject": "{{record.Amonut}}"},
                }
            ],
        },
        by="ann@example.com",
    )
    deal = org.insert(
        "Opportunity",
        {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2030-01-01", "Amount": 5},
    )
    closed = {"Name": "Won", "StageName": "Closed Won", "CloseDate": "2030-01-01"}
    org.insert("Opportunity", closed)
    counts = poll(ctx)
    assert counts["T03:Opportunity"] == 2
    assert "T04:Opportunity" not in counts  # nothing watches its updates
    record = delivered(engine, "T03")[0].record
    assert record["StageName"] == "Prospecting"
    assert "Amonut" not in record  # a name the org lacks is left out, not a failed poll
    (job,) = jobs(engine, "automation")  # the closed deal fails the condition
    assert (job.payload["id"], job.payload["automation"]) == (deal, saved.id)

    definitions.set_enabled(engine, saved.id, False, by="ann@example.com")
    assert "T03:Opportunity" not in poll(ctx)
    with Session(engine) as s:
        assert s.get(PollWatermark, ("T03", "Opportunity")) is None  # enabling starts afresh
