"""Record types: the emulator's (the messy org's Sales_Lead and Partner_Lead), and the ones
Callbridge creates Leads with (``LEAD_RECORD_TYPE``), their Status values, Health's check and
the dispositions editor's."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from integrations.errors import RemoteRejected
from integrations.loopback import wait_for
from integrations.salesforce import record_types
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org
from integrations.salesforce.emulator.profiles import PARTNER_LEAD, PARTNER_STATUSES, SALES_LEAD
from integrations.settings import Settings
from integrations.store import accounts
from integrations.store.automation_models import DispositionRule
from integrations.store.models import Job
from integrations.sync.calls import agent_actions
from integrations.sync.jobs import kinds, queue, retry
from integrations.sync.jobs.worker import make_context
from integrations.sync.review import causes
from tests.conftest import SettingsWith, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, jobs, settled
from tests.signin import PASSWORD, sign_in
from tests.test_health import checked, problem

CALLER = "+14155550100"
MANAGER = "sam@example.com"
MASTER = "012000000000000AAA"


def _id(org: Org, sobject: str, developer_name: str) -> str:
    (rt,) = [r for r in org.record_types_of(sobject) if r.developer_name == developer_name]
    return rt.id


def _refusal(sf: SalesforceClient, fields: dict) -> dict:
    with pytest.raises(RemoteRejected) as refused:
        sf.create("Lead", {"LastName": "Lee", "Company": "Globex", **fields})
    (error,) = refused.value.body
    return error


def test_describe_lists_the_record_types_and_master_as_salesforce_does(
    settings: Settings, org: Org
) -> None:
    sf = SalesforceClient(settings)
    try:
        lead, task = sf.describe("Lead"), sf.describe("Task")
        rows = sf.query(
            "SELECT Id, SobjectType, DeveloperName, Name, IsActive FROM RecordType "
            "WHERE SobjectType = {} ORDER BY DeveloperName",
            "Lead",
        )
    finally:
        sf.close()
    infos = {i["developerName"]: i for i in lead["recordTypeInfos"]}
    assert set(infos) == {SALES_LEAD, PARTNER_LEAD, "Master"}
    assert infos[SALES_LEAD]["defaultRecordTypeMapping"] is True
    assert infos[PARTNER_LEAD] == {
        "active": True,
        "available": True,
        "defaultRecordTypeMapping": False,
        "developerName": PARTNER_LEAD,
        "master": False,
        "name": "Partner Lead",
        "recordTypeId": _id(org, "Lead", PARTNER_LEAD),
        "urls": {
            "layout": "/services/data/v59.0/sobjects/Lead/describe/layouts/"
            + _id(org, "Lead", PARTNER_LEAD)
        },
    }
    assert (infos["Master"]["recordTypeId"], infos["Master"]["master"]) == (MASTER, True)
    assert infos["Master"]["available"] is False  # the profile has the object's record types
    record_type_field = next(f for f in lead["fields"] if f["name"] == "RecordTypeId")
    assert record_type_field["referenceTo"] == ["RecordType"]
    # Every object has Master; only those with record types have the field.
    (master,) = task["recordTypeInfos"]
    assert (master["recordTypeId"], master["available"], master["defaultRecordTypeMapping"]) == (
        MASTER,
        True,
        True,
    )
    assert not any(f["name"] == "RecordTypeId" for f in task["fields"])
    assert [(r["DeveloperName"], r["Name"], r["IsActive"]) for r in rows] == [
        (PARTNER_LEAD, "Partner Lead", True),
        (SALES_LEAD, "Sales Lead", True),
    ]
    assert all(r["Id"].startswith("012") and r["SobjectType"] == "Lead" for r in rows)


def test_creates_get_the_default_record_type_and_wrong_ones_are_refused(
    settings: Settings, org: Org
) -> None:
    partner = _id(org, "Lead", PARTNER_LEAD)
    contact_type = org.add_record_type("Contact", "Customer_Contact", default=True)
    retired = org.add_record_type("Lead", "Retired_Lead")
    org.set_record_type_active(retired, False)
    sf = SalesforceClient(settings)
    try:
        plain = sf.create("Lead", {"LastName": "Lee", "Company": "Globex"})
        as_partner = sf.create(
            "Lead", {"LastName": "Kim", "Company": "Initech", "RecordTypeId": partner}
        )
        refusals = {
            name: _refusal(sf, {"RecordTypeId": value})
            for name, value in (
                ("another object's", contact_type),
                ("inactive", retired),
                ("master", MASTER),
                ("unknown", "012Ka00000009ZZIAA"),
            )
        }
        with pytest.raises(RemoteRejected) as on_task:
            sf.create("Task", {"Subject": "Call", "RecordTypeId": partner})
    finally:
        sf.close()
    assert org.get("Lead", plain)["RecordTypeId"] == _id(org, "Lead", SALES_LEAD)
    assert org.get("Lead", plain)["Status"] == "Open - Not Contacted"
    # No Status given: the record type's default, which Partner_Lead's list has.
    assert org.get("Lead", as_partner)["Status"] == PARTNER_STATUSES[0]
    for name, error in refusals.items():
        assert error["errorCode"] == "INVALID_CROSS_REFERENCE_KEY", name
        assert error["message"].startswith("Record Type ID: this ID value isn't valid for the user")
        assert error["fields"] == ["RecordTypeId"]
    assert on_task.value.error_code == "INVALID_FIELD"  # Task has no record types


def test_a_restricted_picklist_takes_only_its_record_types_values(
    settings: Settings, org: Org
) -> None:
    partner = _id(org, "Lead", PARTNER_LEAD)
    sf = SalesforceClient(settings)
    try:
        for_partner = _refusal(sf, {"RecordTypeId": partner, "Status": "Working - Contacted"})
        for_sales = _refusal(sf, {"Status": "Partner - Qualified"})
        made = sf.create(
            "Lead",
            {
                "LastName": "Kim",
                "Company": "A",
                "RecordTypeId": partner,
                "Status": "Partner - Qualified",
            },
        )
        with pytest.raises(RemoteRejected) as on_update:
            sf.update("Lead", made, {"Status": "Open - Not Contacted"})
        values = sf.picklist_values("Lead", partner)["picklistFieldValues"]["Status"]
        master = sf.picklist_values("Lead", MASTER)["picklistFieldValues"]["Status"]
    finally:
        sf.close()
    assert for_partner == {
        "message": "Status: bad value for restricted picklist field: Working - Contacted",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["Status"],
    }
    assert for_sales["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert on_update.value.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert org.get("Lead", made)["Status"] == "Partner - Qualified"
    assert [v["value"] for v in values["values"]] == [*PARTNER_STATUSES, "Closed - Not Converted"]
    assert values["defaultValue"]["value"] == PARTNER_STATUSES[0]
    assert "Working - Contacted" in [v["value"] for v in master["values"]]


def test_a_new_callers_lead_gets_the_configured_record_type_and_a_status_of_it(
    stack_with: StackWith,
) -> None:
    with stack_with(create_unknown_callers="lead", lead_record_type=PARTNER_LEAD) as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        call_id = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
        stack.sender.drain(timeout=10)
        done = settled(stack.engine, kinds.LOG_CALL)
        assert {j.status for j in done} == {"done"}, [j.last_error for j in done]
        (lead,) = stack.org.records("Lead")
        assert lead["RecordTypeId"] == _id(stack.org, "Lead", PARTNER_LEAD)
        assert lead["Status"] == PARTNER_STATUSES[0]
        (task,) = stack.org.records("Task")
        assert (task["CallObject"], task["WhoId"]) == (str(call_id), lead["Id"])


def test_the_agents_create_lead_uses_the_configured_record_type(stack_with: StackWith) -> None:
    with stack_with(lead_record_type=PARTNER_LEAD, task_logged_at="answer") as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number["id"], user_id=agent["id"]
        )
        typed = agent_actions.LeadForm(last_name="Okafor", company="Globex")
        agent_actions.request_lead(stack.engine, call["id"], CALLER, typed)
        (job,) = settled(stack.engine, kinds.CREATE_LEAD)
        assert job.status == "done", job.last_error
        (lead,) = stack.org.records("Lead")
        assert (lead["LastName"], lead["RecordTypeId"], lead["Status"]) == (
            "Okafor",
            _id(stack.org, "Lead", PARTNER_LEAD),
            PARTNER_STATUSES[0],
        )


def test_an_unknown_record_type_waits_with_its_reason_and_health_names_it(
    stack_with: StackWith, settings_with: SettingsWith, org: Org
) -> None:
    with stack_with(create_unknown_callers="lead", lead_record_type="Partner_Leads") as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
        stack.sender.drain(timeout=10)
        (job,) = wait_for(
            lambda: [j for j in jobs(stack.engine, kinds.LOG_CALL) if j.last_error], timeout=20
        )
        # Not failed for good: it waits for the setting (or the org) to be fixed.
        assert (job.status, job.error_code) == ("queued", "RecordTypeMissing")
        assert "LEAD_RECORD_TYPE=Partner_Leads" in (job.last_error or "")
        assert stack.org.records("Lead") == []
        lines = checked(stack.settings, stack.engine)
    said = problem(lines, "Lead record type")
    assert said.startswith("LEAD_RECORD_TYPE=Partner_Leads: the org has no Lead record type")
    assert f"the active ones are {PARTNER_LEAD}, {SALES_LEAD}" in said

    org.set_record_type_active(_id(org, "Lead", PARTNER_LEAD), False)
    inactive = checked(settings_with(lead_record_type=PARTNER_LEAD), stack.engine)
    assert "record type Partner Lead is inactive" in problem(inactive, "Lead record type")

    fine = checked(settings_with(lead_record_type=SALES_LEAD), stack.engine)
    assert (
        "Record types of new records: Lead Sales_Lead (Sales Lead), LEAD_RECORD_TYPE; "
        "Contact and Opportunity have no record types"
    ) in [line.name for line in fine if line.ok]


def test_the_dispositions_editor_takes_only_the_record_types_statuses(
    stack_with: StackWith,
) -> None:
    with stack_with(lead_record_type=PARTNER_LEAD) as stack:
        accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
        manager = sign_in(stack.app.url, MANAGER)
        page = manager.client.get("/automations/dispositions").text
        assert '<option value="Partner - Qualified">' in page
        assert '<option value="Working - Contacted">' not in page

        def save(status: str) -> httpx.Response:
            form = {
                "csrf_token": manager.csrf,
                "name": "Interested",
                "tags": "Interested",
                "lead_status": status,
                "opportunity_stage": "Qualification",
                "contact_status": "",
                "enabled": "on",
            }
            return manager.client.post("/automations/dispositions/interested", data=form)

        refused = save("Working - Contacted")  # a Sales_Lead status, not a Partner_Lead one
        assert refused.status_code == 400
        assert "Lead Status has no value &#39;Working - Contacted&#39;" in refused.text
        assert "Partner - Qualified" in refused.text
        with Session(stack.engine) as s:
            rule = s.get(DispositionRule, "interested")
            assert rule is not None
            assert rule.lead_status != "Working - Contacted"
        assert save("Partner - Qualified").status_code == 303
        with Session(stack.engine) as s:
            rule = s.get(DispositionRule, "interested")
            assert rule is not None
            assert rule.lead_status == "Partner - Qualified"


def test_a_record_type_deactivated_after_it_was_resolved_is_explained_and_healed(
    stack_with: StackWith, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry, "SETUP_WAIT", 0.3)  # a waiting job looks again this soon
    monkeypatch.setattr(record_types, "MISSING_TTL", 0.0)
    with stack_with(lead_record_type=PARTNER_LEAD, task_logged_at="answer") as stack:
        agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        partner = _id(stack.org, "Lead", PARTNER_LEAD)

        def click(caller: str, count: int) -> Job:
            call = stack.company.start_call(
                direction="inbound", external=caller, number_id=number["id"], user_id=agent["id"]
            )
            typed = agent_actions.LeadForm(last_name="Okafor", company=f"Globex {count}")
            agent_actions.request_lead(stack.engine, call["id"], caller, typed)
            return settled(stack.engine, kinds.CREATE_LEAD, count=count)[-1]

        assert click(CALLER, 1).status == "done"  # the record type is resolved and kept
        stack.org.set_record_type_active(partner, False)
        refused = click("+14155550177", 2)
        assert (refused.status, refused.error_code) == ("failed", "INVALID_CROSS_REFERENCE_KEY")
        explained = causes.explain_job(refused)
        assert explained.headline == "the record type is not one the integration user may use"
        assert "LEAD_RECORD_TYPE" in explained.fix

        # A re-sync resolves it afresh: it waits, named, until the admin activates it again.
        assert queue.resync(stack.engine, refused.id)
        waiting = wait_for(
            lambda: [
                j
                for j in jobs(stack.engine, kinds.CREATE_LEAD)
                if j.id == refused.id and j.error_code == "RecordTypeMissing"
            ],
            timeout=20,
        )
        assert waiting[0].status == "queued"
        assert "record type Partner Lead is inactive" in (waiting[0].last_error or "")
        stack.org.set_record_type_active(partner, True)
        wait_for(lambda: len(stack.org.records("Lead")) == 2, timeout=20)
        assert {lead["RecordTypeId"] for lead in stack.org.records("Lead")} == {partner}


def test_contacts_and_opportunities_of_automations_get_their_record_types(
    settings_with: SettingsWith, engine: Engine, org: Org
) -> None:
    """A04/A06/A08/A01, E13 and Create Lead all create through the job context: each object
    gets its own setting's record type, and an object without one is left to the org."""
    customer = org.add_record_type("Contact", "Customer_Contact", default=True)
    partner = org.add_record_type("Contact", "Partner_Contact")
    renewal = org.add_record_type(
        "Opportunity", "Renewal", picklists={"StageName": ["Prospecting", "Closed Won"]}
    )
    settings = settings_with(
        contact_record_type="Partner_Contact", opportunity_record_type="Renewal"
    )

    async def run() -> tuple[str, str, str]:
        ctx = make_context(settings, engine)
        try:
            contact, _ = await ctx.create_or_match("Contact", {"LastName": "Okafor"})
            deal = await ctx.create(
                "Opportunity",
                {"Name": "Renewal", "StageName": "Prospecting", "CloseDate": "2031-01-31"},
            )
            lead = await ctx.create("Lead", {"LastName": "Lee", "Company": "Globex"})
            return contact, deal, lead
        finally:
            await ctx.aircall.aclose()
            ctx.salesforce.close()

    contact, deal, lead = asyncio.run(run())
    assert org.get("Contact", contact)["RecordTypeId"] == partner != customer
    assert org.get("Opportunity", deal)["RecordTypeId"] == renewal
    assert org.get("Lead", lead)["RecordTypeId"] == _id(org, "Lead", SALES_LEAD)  # the default
