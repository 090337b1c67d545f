"""Automations on the Salesforce triggers (T01-T05) run: polled records and Outbound Messages
reach the emulated Aircall and Salesforce through the automations a manager builds or disables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.errors import BadInput
from integrations.loopback import wait_for
from integrations.store.automation_models import Automation
from integrations.store.salesforce_sync import PollWatermark, SalesforceDelivery
from integrations.sync.automations import definitions, runs
from tests.conftest import Stack, StackWith
from tests.helpers import jobs, settled
from tests.signin import PASSWORD, SignedIn, Site, sign_in
from tests.test_outbound_messages import envelope, notification_id, post

MANAGER = "sam@example.com"


@pytest.fixture
def polling(stack_with: StackWith) -> Iterator[Stack]:
    """The whole stack, its worker polling the Salesforce emulator five times a second."""
    with stack_with(salesforce_poll_seconds=0.2) as running:
        yield running


def manager_of(stack: Stack) -> SignedIn:
    from integrations.store import accounts

    accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
    return sign_in(stack.app.url, MANAGER)


def builtin(engine: Engine, key: str) -> int:
    with Session(engine) as s:
        found = s.exec(select(Automation).where(Automation.builtin == key)).one()
        assert found.id is not None
        return found.id


def delivered(engine: Engine, trigger: str, record_id: str) -> list[SalesforceDelivery]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(SalesforceDelivery).where(
                    SalesforceDelivery.trigger == trigger, SalesforceDelivery.record_id == record_id
                )
            )
        )


def finished_runs(engine: Engine, automation_id: int, count: int = 1) -> list[runs.Run]:
    """The automation's runs (as its page shows them), once ``count`` have finished."""

    def check() -> list[runs.Run] | None:
        found = runs.recent_runs(engine, automation_id)
        done = len(found) >= count and all(r.job.status in ("done", "failed") for r in found)
        return found if done else None

    return wait_for(check, timeout=30)  # type: ignore[return-value]


def steps_of(run: runs.Run) -> list[str]:
    return [step.action for step in run.steps]


def test_a_manager_built_t01_automation_names_the_aircall_contact_and_logs_a_task(
    polling: Stack,
) -> None:
    manager = manager_of(polling)
    default = builtin(polling.engine, "T01_aircall_contact")
    answer = manager.client.post(
        f"/automations/{default}/enabled", data={"csrf_token": manager.csrf, "enabled": "false"}
    )
    assert answer.status_code == 303
    answer = manager.client.post(
        "/automations/new",
        data={
            "csrf_token": manager.csrf,
            "name": "New ACME leads: Aircall contact and a call-back Task",
            "trigger": "T01",
            "cond-record": "Company = acme",
            "step-0-action": "aircall:A01",
            "step-0-field-0-target": "last_name",
            "step-0-field-0-source": "{{record.LastName}} (Lead)",
            "step-1-action": "salesforce:A09",
            "step-1-use_mapping": "no",
            "step-1-field-0-target": "WhoId",
            "step-1-field-0-source": "{{record.Id}}",
            "step-1-field-1-target": "Subject",
            "step-1-field-1-source": "Call back {{contact_name}} at {{contact_phone}}",
            "op": "save",
        },
    )
    assert answer.status_code == 303, answer.text
    automation_id = int(answer.headers["location"].split("/")[2].split("?")[0])
    assert definitions.definition(polling.engine, automation_id)["conditions"] == {
        "record": {"Company": "acme"}
    }
    answer = manager.client.post(
        f"/automations/{automation_id}/enabled",
        data={"csrf_token": manager.csrf, "enabled": "true"},
    )
    assert answer.status_code == 303

    ada = polling.org.insert(
        "Lead", {"FirstName": "Ada", "LastName": "Lee", "Company": "ACME", "Phone": "4155550100"}
    )
    bob = polling.org.insert(
        "Lead", {"LastName": "Stone", "Company": "Globex", "Phone": "+14155550111"}
    )
    (run,) = finished_runs(polling.engine, automation_id)
    wait_for(lambda: delivered(polling.engine, "T01", bob), timeout=30)
    job = run.job

    assert job.status == "done", job.last_error
    (contact,) = polling.company.list_contacts()  # Bob: another company, and no default
    assert contact["last_name"] == "Lee (Lead)"
    assert contact["first_name"] == "Ada"
    assert contact["information"] == f"salesforce_id:{ada}"
    assert [p["value"] for p in contact["phone_numbers"]] == ["+14155550100"]
    (task,) = polling.org.records("Task")
    assert (task["WhoId"], task["Subject"]) == (ada, "Call back Ada Lee at +14155550100")
    assert steps_of(run) == ["step 1 aircall:A01", "step 2 salesforce:A09"]
    assert jobs(polling.engine, "aircall_contact") == []
    assert len(runs.recent_runs(polling.engine, automation_id)) == 1
    page = manager.client.get(f"/automations/{automation_id}").text
    assert f'id="run-{job.id}"' in page
    assert f"T01 Lead {ada}" in page
    assert "step 2 salesforce:A09" in page


def test_disabling_the_t01_default_stops_aircall_contacts_for_new_leads(polling: Stack) -> None:
    definitions.set_enabled(
        polling.engine, builtin(polling.engine, "T01_aircall_contact"), False, by=MANAGER
    )
    lead = polling.org.insert(
        "Lead", {"LastName": "Lee", "Company": "ACME", "Phone": "+14155550100"}
    )
    contact = polling.org.insert("Contact", {"LastName": "Jennings", "Phone": "+14155550142"})
    (done,) = settled(polling.engine, "aircall_contact", timeout=30)  # T02's default still runs
    wait_for(lambda: delivered(polling.engine, "T01", lead), timeout=30)

    assert done.payload["id"] == contact
    assert done.payload["automation"] == builtin(polling.engine, "T02_aircall_contact")
    (made,) = polling.company.list_contacts()
    assert made["information"] == f"salesforce_id:{contact}"
    assert all(j.payload.get("trigger") != "T01" for j in jobs(polling.engine, "automation"))


def _passes_after(engine: Engine, moment: float, count: int) -> None:
    """Wait until ``count`` T04 polling passes of Account have ended after ``moment``."""
    seen: list[float] = []

    def check() -> bool:
        with Session(engine) as s:
            mark = s.get(PollWatermark, ("T04", "Account"))
        if mark is not None and mark.polled_at > max([moment, *seen]):
            seen.append(mark.polled_at)
        return len(seen) >= count

    wait_for(check, timeout=30)


def test_a_t04_automation_fires_once_for_an_update_and_not_for_its_own_write(
    polling: Stack,
) -> None:
    """Account is in no setting: the automation naming it makes polling watch it, reading the
    fields its condition and sources need."""
    saved = definitions.save(
        polling.engine,
        {
            "name": "Note the phone of changed customer accounts",
            "trigger": "T04",
            "sobject": "Account",
            "conditions": {"record": {"Type": "Customer - Direct"}},
            "actions": [
                {
                    "action": "salesforce:update_record",
                    "sobject": "Account",
                    "id": "{{record.Id}}",
                    "fields": {
                        "Description": "{{record.Industry}} customer, phone {{record.Phone}}"
                    },
                }
            ],
        },
        by=MANAGER,
    )
    account = polling.org.insert(
        "Account", {"Name": "Globex", "Type": "Customer - Direct", "Industry": "Energy"}
    )
    created = polling.org.records("Account")[0]["CreatedDate"]
    # Salesforce stamps whole seconds: a change in the same second looks like no change at all.
    wait_for(
        lambda: dt.datetime.now(dt.UTC).replace(microsecond=0) > dt.datetime.fromisoformat(created),
        timeout=3,
    )
    polling.org.update("Account", account, {"Phone": "+14155550100"})  # a person's change
    (run,) = finished_runs(polling.engine, saved.id)
    job = run.job
    assert job.status == "done", job.last_error
    (row,) = polling.org.records("Account")
    assert row["Description"] == "Energy customer, phone +14155550100"

    assert job.finished_at is not None
    _passes_after(polling.engine, job.finished_at, 2)  # our write has been read back since
    assert len(delivered(polling.engine, "T04", account)) == 1
    assert len(runs.recent_runs(polling.engine, saved.id)) == 1
    assert jobs(polling.engine, "aircall_contact") == []


def test_a_t05_automation_runs_from_an_outbound_message(stack: Stack) -> None:
    saved = definitions.save(
        stack.engine,
        {
            "name": "Web leads sent by Salesforce get a Task",
            "trigger": "T05",
            "sobject": "Lead",
            "conditions": {"record": {"LeadSource": "Web"}},
            "actions": [
                {
                    "action": "salesforce:A09",
                    "use_mapping": False,
                    "fields": {
                        "WhoId": "{{record.Id}}",
                        "Subject": "Web lead {{record.LastName}} of {{record.Company}}",
                    },
                }
            ],
        },
        by=MANAGER,
    )
    web = stack.org.insert(
        "Lead",
        {"LastName": "Lee", "Company": "ACME", "LeadSource": "Web", "Phone": "+14155550100"},
    )
    phoned = stack.org.insert(
        "Lead",
        {"LastName": "Stone", "Company": "Globex", "LeadSource": "Phone Inquiry"},
    )
    person = stack.org.insert(
        "Contact", {"LastName": "Jennings", "LeadSource": "Web", "Phone": "+14155550142"}
    )
    # The admin picked no Company: the run reads it from Salesforce.
    body = envelope(
        stack.settings.salesforce_org_id,
        (notification_id(), "Lead", {"Id": web, "LastName": "Lee", "LeadSource": "Web"}),
        (notification_id(), "Lead", {"Id": phoned, "LeadSource": "Phone Inquiry"}),
        (notification_id(), "Contact", {"Id": person, "LeadSource": "Web"}),
    )
    assert post(stack.app.url, body).status_code == 200
    (run,) = finished_runs(stack.engine, saved.id)
    settled(stack.engine, "aircall_contact", count=3)  # the T05 default, for each record

    job = run.job
    assert job.status == "done", job.last_error
    assert job.payload["id"] == web
    (task,) = stack.org.records("Task")
    assert (task["WhoId"], task["Subject"]) == (web, "Web lead Lee of ACME")
    assert steps_of(run) == ["get Lead", "step 1 salesforce:A09"]
    made = {c["information"] for c in stack.company.list_contacts()}
    assert made == {f"salesforce_id:{web}", f"salesforce_id:{person}"}  # Stone has no phone


# -- definitions and dry runs --------------------------------------------------------------------

TASK_ON_LEAD = {
    "name": "A Task on every new web Lead",
    "trigger": "T01",
    "conditions": {"record": {"LeadSource": "Web"}},
    "actions": [
        {
            "action": "salesforce:A09",
            "use_mapping": False,
            "fields": {"WhoId": "{{record.Id}}", "Subject": "Welcome {{contact_name}}"},
        },
        {"action": "aircall:A01", "fields": {"company_name": "{{record.Company}} (web)"}},
    ],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditions": {"direction": "inbound"}}, "about an Aircall call"),
        ({"conditions": {"record": {"Lead Source": "Web"}}}, "not a field API name"),
        ({"trigger": "T03"}, "needs the object it watches"),
        ({"trigger": "T03", "sobject": "Account; DROP"}, "not a Salesforce object API name"),
        ({"sobject": "Contact"}, "about Lead records only"),
        (
            {"actions": [{"action": "salesforce:A04", "fields": {"Phone": "call.raw_digits"}}]},
            "has no Aircall call",
        ),
        ({"actions": [{"action": "salesforce:A09", "call_task": True}]}, "needs a call"),
        ({"actions": [{"action": "aircall:A04", "text": "=Hi"}]}, "say which"),
        ({"actions": [{"action": "aircall:A01", "fields": {"nickname": "x"}}]}, "no field"),
        (
            {"trigger": "E12", "conditions": {}, "actions": [{"action": "aircall:A01"}]},
            "use it on a Salesforce trigger",
        ),
        ({"trigger": "E12", "conditions": {}}, "only Salesforce triggers have one"),
        (
            {"trigger": "E12", "actions": [{"action": "salesforce:A04"}]},
            "record condition is for Salesforce triggers",
        ),
    ],
)
def test_a_definition_that_does_not_fit_its_trigger_is_refused(change: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        definitions.validate({**TASK_ON_LEAD, **change})


def test_a_t03_automation_keeps_its_object_and_a_t04_one_may_comment_on_a_call() -> None:
    checked = definitions.validate(
        {
            "name": "Comment on the call when its Task changes",
            "trigger": "T04",
            "sobject": "Task",
            "actions": [
                {"action": "aircall:A04", "call": "{{record.CallObject}}", "text": "=Task edited"}
            ],
        }
    )
    assert checked["sobject"] == "Task"


def test_dry_run_on_a_sample_record_shows_each_step(engine: Engine) -> None:
    record = {"Id": "00Q000000000001AAA", "FirstName": "Ada", "LastName": "Lee"}
    sample = {
        "event": "T01",
        "data": {**record, "Company": "ACME", "LeadSource": "Web", "Phone": "(415) 555-0100"},
    }
    task, contact = runs.dry_run(TASK_ON_LEAD, sample, engine=engine)
    assert task.operation == "create Task"
    assert task.sent == {"WhoId": "00Q000000000001AAA", "Subject": "Welcome Ada Lee"}
    assert (contact.service, contact.operation) == ("aircall", "create contact")
    assert contact.sent["information"] == "salesforce_id:00Q000000000001AAA"
    assert contact.sent["phone_numbers"] == [{"label": "Work", "value": "+14155550100"}]
    assert contact.sent["company_name"] == "ACME (web)"
    (skipped,) = runs.dry_run(
        TASK_ON_LEAD, {"event": "T01", "data": {**record, "LeadSource": "Other"}}, engine=engine
    )
    assert (skipped.operation, skipped.note) == ("skipped", "LeadSource is 'Other'")
    on_accounts = {**TASK_ON_LEAD, "trigger": "T03", "sobject": "Account", "conditions": {}}
    (other,) = runs.dry_run(
        on_accounts, {"event": "T03", "sobject": "Case", "data": record}, engine=engine
    )
    assert other.note == "a Case record; the automation is about Account"


# -- the editor ---------------------------------------------------------------------------------


def test_the_editor_offers_a_record_condition_and_the_object_for_t03(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    form = {
        "csrf_token": manager.csrf,
        "name": "New invoices",
        "trigger": "T03",
        "cond-direction": "inbound",  # left from an Aircall trigger: not a T03 condition
        "cond-record": "Status__c = Open\nPaid__c =",
        "step-0-action": "salesforce:A09",
        "step-0-use_mapping": "no",
        "step-0-field-0-target": "WhatId",
        "step-0-field-0-source": "{{record.Id}}",
        "op": "save",
    }
    page = manager.client.post("/automations/new", data=form)
    assert page.status_code == 400
    assert "T03 needs the object it watches" in page.text
    assert 'name="cond-record"' in page.text
    assert 'name="cond-direction"' not in page.text
    saved = manager.client.post("/automations/new", data={**form, "sobject": "Invoice__c"})
    assert saved.status_code == 303, saved.text
    automation_id = int(saved.headers["location"].split("/")[2].split("?")[0])
    definition = definitions.definition(site.engine, automation_id)
    assert definition["sobject"] == "Invoice__c"
    assert definition["conditions"] == {"record": {"Status__c": "Open", "Paid__c": None}}
    page = manager.client.get(f"/automations/{automation_id}").text
    assert 'value="Invoice__c"' in page
    assert "Status__c = Open\nPaid__c = </textarea>" in page
    assert "No run yet." in page
