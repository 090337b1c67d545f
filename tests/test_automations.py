"""Issue 4: automations (versioned, dry-run, run step by step), the field mapping, E13 and E08."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from integrations.errors import BadInput
from integrations.loopback import wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.store.automation_models import Automation
from integrations.store.models import JobStep
from integrations.sync.automations import definitions, fieldmap, mapping_store, runs
from integrations.sync.jobs import queue
from tests.conftest import Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call, saved_before_the_check, settled

CALLER = "+14155550100"

QUERY_THEN_OPPORTUNITY = {
    "name": "Inbound call: an opportunity on the caller's account",
    "trigger": "E12",
    "conditions": {"direction": "inbound", "duration_max": 3600},
    "actions": [
        {
            "action": "salesforce:A19",
            "query": "SELECT Id, AccountId FROM Contact WHERE Phone = {{contact_phone}} LIMIT 1",
        },
        {
            "action": "salesforce:A08",
            "fields": {
                "AccountId": "{{steps.1.first.AccountId}}",
                "Name": "Call {{call.id}} with {{contact_phone}}",
            },
        },
    ],
}


def _call(direction: str = "inbound", **extra: object) -> dict:
    return {
        "id": 42,
        "direction": direction,
        "status": "done",
        "raw_digits": "+1 415-555-0100",
        "started_at": 1773187200,
        "answered_at": 1773187205,
        "duration": 60,
        "tags": [{"name": "Sales"}],
        "user": {"id": 1, "name": "Jane Agent", "email": AGENT_EMAIL},
        "number": {"id": 7, "name": "Support", "digits": "+1 212-555-0199"},
        **extra,
    }


def test_every_save_is_a_version_and_an_old_one_can_be_restored(engine: Engine) -> None:
    first = definitions.save(engine, QUERY_THEN_OPPORTUNITY, by="ann@example.com")
    changed = {**QUERY_THEN_OPPORTUNITY, "conditions": {"direction": "outbound"}}
    definitions.save(engine, changed, by="bob@example.com", automation_id=first.id)
    definitions.set_enabled(engine, first.id, False, by="bob@example.com")
    restored = definitions.restore(engine, first.id, 1, by="ann@example.com")

    assert restored.version == 4
    assert not restored.enabled  # v1 was enabled; the restore keeps the current status
    assert definitions.definition(engine, first.id)["conditions"] == {
        "direction": "inbound",
        "duration_max": 3600,
    }
    saved = [(v.version, v.saved_by, v.note) for v in definitions.history(engine, first.id)]
    assert saved == [
        (1, "ann@example.com", None),
        (2, "bob@example.com", None),
        (3, "bob@example.com", "disabled"),
        (4, "ann@example.com", "restored version 1"),
    ]


def test_seeding_the_defaults_twice_adds_them_once(engine: Engine) -> None:
    definitions.seed_defaults(engine)
    definitions.seed_defaults(engine)
    with Session(engine) as s:
        builtin = sorted(s.execute(select(Automation.builtin)).scalars())
    assert builtin == sorted(definitions.DEFAULTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": "E99"}, "unknown trigger"),
        ({"conditions": {"weather": "sunny"}}, "unknown condition"),
        ({"actions": [{"action": "salesforce:A99"}]}, "unknown action"),
        (
            {"actions": [{"action": "salesforce:A04", "fields": {"Company": "{{steps.2.id}}"}}]},
            "has not run yet",
        ),
        ({"actions": [{"action": "salesforce:A19", "query": "DELETE FROM Lead"}]}, "SELECT"),
        ({"actions": [{"action": "salesforce:A04", "fields": {"X": "nope|first"}}]}, "dialer"),
    ],
)
def test_a_broken_definition_is_refused_with_the_reason(change: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        definitions.validate({**QUERY_THEN_OPPORTUNITY, **change})


def test_dry_run_shows_what_each_step_would_send(engine: Engine) -> None:
    event = {"event": "call.ended", "data": _call(raw_digits="+1 415-555-0100")}
    first, second = runs.dry_run(QUERY_THEN_OPPORTUNITY, event, engine=engine)
    assert first.operation == "query"
    assert first.sent.endswith("WHERE Phone = '+14155550100' LIMIT 1")
    assert second.operation == "create Opportunity"
    assert second.sent["AccountId"] == "<steps.1.first.AccountId>"
    assert second.sent["Name"] == "Call 42 with +14155550100"
    assert second.sent["StageName"] == "Prospecting"  # from the Opportunity mapping
    assert second.sent["CloseDate"] == "2026-04-10"  # timestamp|date+30
    (skipped,) = runs.dry_run(
        QUERY_THEN_OPPORTUNITY, {"event": "call.ended", "data": _call("outbound")}, engine=engine
    )
    assert (skipped.operation, skipped.note) == ("skipped", "direction is 'outbound'")


def _line(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    return agent["id"], number["id"]


def test_a_custom_automation_runs_its_steps_in_order_and_records_them(stack: Stack) -> None:
    definitions.save(stack.engine, QUERY_THEN_OPPORTUNITY, by="ann@example.com")
    agent_id, number_id = _line(stack)
    account = stack.org.insert("Account", {"Name": "Acme"})
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER, "AccountId": account})
    call_id = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    outbound = stack.company.start_call(
        direction="outbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(outbound["id"], user_id=agent_id)
    stack.company.hangup(outbound["id"])
    stack.company.end(outbound["id"])
    stack.sender.drain(timeout=10)
    (job,) = settled(stack.engine, "automation")  # the outbound call fails the conditions
    assert job.status == "done"
    (opportunity,) = stack.org.records("Opportunity")
    assert opportunity["AccountId"] == account
    assert opportunity["Name"] == f"Call {call_id} with {CALLER}"
    with Session(stack.engine) as s:
        recorded = s.execute(
            select(JobStep.action).where(JobStep.job_id == job.id).order_by(JobStep.id)
        ).scalars()
        assert list(recorded) == ["step 1 salesforce:A19", "step 2 salesforce:A08"]


def test_e08_default_puts_the_comment_on_the_calls_one_task(stack: Stack) -> None:
    agent_id, number_id = _line(stack)
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    call_id = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.company.comment(call_id, "Wants the enterprise plan", user_id=agent_id)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    wait_for(
        lambda: "enterprise plan" in (stack.org.records("Task")[0]["Description"] or ""),
        timeout=10,
    )
    (task,) = stack.org.records("Task")
    assert task["CallObject"] == str(call_id)


def test_e13_a_new_aircall_contact_becomes_one_salesforce_contact(stack: Stack) -> None:
    lead = stack.org.insert(
        "Lead", {"LastName": "Known", "Company": "Acme", "Email": "known@example.com"}
    )
    stack.company.add_contact("Mary Ann", "Smith", ["+1 415 555 0123"], ["mary@example.com"])
    stack.company.add_contact("Again", "Smith", ["+14155550123"])  # same number: matched
    stack.company.add_contact("Known", "Person", ["+14155550177"], ["known@example.com"])
    stack.company.add_contact(None, "Echo", ["+14155550188"], information="salesforce_id:003x")
    stack.sender.drain(timeout=10)
    jobs = settled(stack.engine, "automation", count=4)
    assert all(j.status == "done" for j in jobs)
    (contact,) = stack.org.records("Contact")  # the two sharing a number race: one wins
    first, email = {"Mary Ann": ("Mary Ann", "mary@example.com"), "Again": ("Again", None)}[
        contact["FirstName"]
    ]
    assert (contact["FirstName"], contact["LastName"]) == (first, "Smith")
    assert (contact["Phone"], contact["Email"]) == ("+14155550123", email)
    assert contact["LeadSource"] == "Phone Inquiry"
    results = sorted(str(j.result["steps"][0]) for j in jobs)
    assert any("'matched': 'phone'" in r for r in results)
    assert any(f"'id': '{lead}'" in r and "'matched': 'email'" in r for r in results)
    assert any("made from a Salesforce record" in r for r in results)


LEAD_FOR_EVERY_CALL = {
    "name": "Lead for every ended call",
    "trigger": "E12",
    "actions": [{"action": "salesforce:A04"}],
}


def test_a_mapping_salesforce_rejects_parks_the_job_with_its_error_until_fixed(
    stack: Stack,
) -> None:
    sf = SalesforceClient(stack.settings)
    bad = {**fieldmap.DEFAULT_MAPPINGS["Lead"], "Status": "disposition"}
    problems = mapping_store.validate_mapping(sf, "Lead", bad)
    assert [(p.field, "any value" in p.message) for p in problems] == [("Status", True)]
    saved_before_the_check(stack.engine, "Lead", bad)
    definitions.save(stack.engine, LEAD_FOR_EVERY_CALL, by="ann@example.com")
    agent_id, number_id = _line(stack)
    stack.company.add_tag("Hot")
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(call["id"], user_id=agent_id)
    stack.company.tag(call["id"], "Hot", user_id=agent_id)
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    (job,) = settled(stack.engine, "automation")
    assert job.status == "failed"
    assert job.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "bad value for restricted picklist field: Hot" in job.last_error
    (error,) = json.loads(job.last_error)  # Salesforce's words, and the row to fix
    assert error["mapping_row"] == "Lead field mapping, row Status = disposition"
    assert stack.org.records("Lead") == []

    fixed = {**bad, "Status": "=Working - Contacted"}
    mapping_store.save_mapping(stack.engine, sf, "Lead", fixed, by="ann@example.com")
    assert queue.resync(stack.engine, job.id)
    (job,) = settled(stack.engine, "automation")
    assert job.status == "done"
    (lead,) = stack.org.records("Lead")
    assert (lead["Status"], lead["Phone"], lead["Company"]) == (
        "Working - Contacted",
        CALLER,
        "Unknown (Aircall)",
    )
    sf.close()


def test_a_computed_value_into_a_restricted_picklist_is_refused_at_save_time(
    stack: Stack,
) -> None:
    sf = SalesforceClient(stack.settings)
    task = {**fieldmap.DEFAULT_MAPPINGS["Task"], "Priority": "call.tags|join"}
    (problem,) = mapping_store.validate_mapping(sf, "Task", task)  # CallType: call_direction fits
    assert problem.field == "Priority"
    assert "every value but High, Normal, Low" in problem.message
    assert "call.tags|join is computed from each call and may give any value" in problem.message
    lead = {**fieldmap.DEFAULT_MAPPINGS["Lead"], "Status": "call_direction"}
    (problem,) = mapping_store.validate_mapping(sf, "Lead", lead)
    assert "gives Inbound, Outbound, and Inbound, Outbound are not in" in problem.message
    sf.close()


def test_mapping_problems_are_reported_against_the_orgs_describe(stack: Stack) -> None:
    sf = SalesforceClient(stack.settings)
    stack.org.add_field("Lead", "Aircall_Recording__c", "url")
    problems = mapping_store.validate_mapping(
        sf,
        "Lead",
        {
            "LastName": "contact_name|last",
            "Status": "=Hot",
            "IsConverted": True,
            "Favourite_Colour__c": "=blue",
            "Aircall_Recording__c": "recording_url",
            "Description": "notes|shout",
        },
    )
    assert sorted(str(p) for p in problems) == [
        "Lead.Company: required, and not mapped",
        "Lead.Description: unknown transform 'shout' (known: first, last, date, datetime, "
        "e164, join, text)",
        "Lead.Favourite_Colour__c: no such field in this org",
        "Lead.IsConverted: Salesforce does not let this field be set",
        "Lead.Status: 'Hot' is not a value of this picklist (allowed: Open - Not Contacted, "
        "Working - Contacted, Closed - Converted, Closed - Not Converted)",
    ]
    used = stack.org.api_used
    assert mapping_store.validate_mapping(sf, "Lead", fieldmap.DEFAULT_MAPPINGS["Lead"]) == []
    assert stack.org.api_used == used  # the describe is cached
    with pytest.raises(BadInput, match=r"Lead\.Status"):
        mapping_store.save_mapping(stack.engine, sf, "Lead", {"Status": "=Hot"}, by="x")
    sf.close()
