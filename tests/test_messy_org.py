"""A customer's messy org (``profiles.messy``, the suite's default): an admin's validation rule
parks the calls whose Tasks it refuses, in plain words, until the rule is relaxed and the group is
re-synced once; an Apex trigger's refusal shows the trigger's own message."""

from __future__ import annotations

import html
from collections import Counter

import pytest

from integrations.loopback import wait_for
from integrations.salesforce.emulator import ApiError, profiles
from integrations.store import accounts
from integrations.sync.calls import agent_actions
from integrations.sync.jobs import kinds
from integrations.sync.review import causes
from tests.conftest import Stack
from tests.helpers import AGENT_EMAIL, jobs, settled
from tests.signin import PASSWORD, sign_in

CALLER = "+14155550100"
MANAGER = "sam@example.com"
CARD = "4111 1111 1111 1111"


def _line(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    stack.org.add_user("Jane Agent", AGENT_EMAIL)
    return agent["id"], number["id"]


def _call(stack: Stack, line: tuple[int, int], note: str | None = None) -> int:
    agent_id, number_id = line
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(call["id"], user_id=agent_id)
    if note:
        stack.company.comment(call["id"], note, user_id=agent_id)
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    return call["id"]


def _tasks_by_call(stack: Stack) -> Counter[str]:
    return Counter(task["CallObject"] for task in stack.org.records("Task"))


def test_the_profile_refuses_with_salesforces_codes_and_seeding_is_exempt() -> None:
    messy = profiles.messy()
    seeded = messy.insert("Lead", {"LastName": "Old", "Company": profiles.BLOCKED_COMPANY})
    with pytest.raises(ApiError) as trigger:
        messy.create("Lead", {"LastName": "New", "Company": profiles.BLOCKED_COMPANY})
    assert trigger.value.body() == [
        {
            "message": f"{profiles.LEAD_TRIGGER}: execution of BeforeInsert\n\ncaused by: "
            f"System.DmlException: {profiles.LEAD_TRIGGER_MESSAGE}\n\n"
            f"Trigger.{profiles.LEAD_TRIGGER}: line 7, column 1",
            "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            "fields": [],
        }
    ]
    with pytest.raises(ApiError) as update:  # the trigger runs on update too
        messy.update("Lead", seeded, {"FirstName": "Ada"})
    assert "execution of BeforeUpdate" in update.value.message
    with pytest.raises(ApiError) as rule:
        messy.create("Task", {"Subject": "Call", "Description": f"Card {CARD}"})
    assert rule.value.body() == [
        {
            "message": profiles.CARD_MESSAGE,
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Description"],
        }
    ]
    messy.create("Task", {"Subject": "Call", "Description": "Call back +1 415 555 0100"})
    messy.remove_validation_rule(profiles.CARD_RULE)
    messy.create("Task", {"Subject": "Call", "Description": f"Card {CARD}"})
    lead = messy.create("Lead", {"LastName": "Lee", "Company": "Globex"})
    assert messy.get("Lead", lead["id"])["Region__c"] == "Unassigned"  # the field's default
    with pytest.raises(ApiError) as required:
        messy.create("Lead", {"LastName": "Kim", "Company": "Initech", "Region__c": None})
    assert required.value.code == "REQUIRED_FIELD_MISSING"
    messy.create("Contact", {"LastName": "Park", "Legacy_Id__c": "C-1"})
    with pytest.raises(ApiError) as unique:
        messy.create("Contact", {"LastName": "Cho", "Legacy_Id__c": "c-1"})
    assert unique.value.code == "DUPLICATE_VALUE"


def test_calls_parked_by_a_validation_rule_are_logged_once_after_one_group_resync(
    stack: Stack,
) -> None:
    line = _line(stack)
    stack.org.insert("Contact", {"FirstName": "Gary", "LastName": "Jennings", "Phone": CALLER})
    accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
    # Two agents read a card number into the call notes; a third call is an ordinary one.
    parked = [_call(stack, line, f"Paid by card {CARD}") for _ in range(2)]
    fine = _call(stack, line, "Wants a demo")
    stack.sender.drain(timeout=20)
    done = settled(stack.engine, kinds.LOG_CALL, count=3, timeout=30)
    assert sorted(j.call_id for j in done if j.status == "failed") == sorted(parked)
    assert _tasks_by_call(stack) == {str(fine): 1}

    manager = sign_in(stack.app.url, MANAGER)
    page = html.unescape(manager.client.get("/review?status=failed").text)
    assert f"a validation rule refused it: {profiles.CARD_MESSAGE}" in page
    (cause,) = causes.failure_causes(stack.engine)
    assert cause.calls == 2
    assert cause.explanation.fields == ("Description",)

    # The admin relaxes the rule; the manager re-syncs the group once.
    stack.org.remove_validation_rule(profiles.CARD_RULE)
    form = {"csrf_token": manager.csrf, "status": "failed", "cause": cause.key}
    assert manager.client.post("/review/resync", data=form).status_code == 303
    wait_for(lambda: len(_tasks_by_call(stack)) == 3, timeout=30)
    settled(stack.engine, kinds.LOG_CALL, count=3, timeout=30)
    assert {j.status for j in jobs(stack.engine, kinds.LOG_CALL)} == {"done"}
    assert _tasks_by_call(stack) == {str(call_id): 1 for call_id in [*parked, fine]}
    assert causes.failure_causes(stack.engine) == []


def test_an_apex_trigger_refusal_shows_the_triggers_own_message(stack: Stack) -> None:
    line = _line(stack)
    unknown = "+14155550177"
    agent_id, number_id = line
    call = stack.company.start_call(
        direction="inbound", external=unknown, number_id=number_id, user_id=agent_id
    )
    typed = agent_actions.LeadForm(last_name="Okafor", company=profiles.BLOCKED_COMPANY)
    agent_actions.request_lead(stack.engine, call["id"], unknown, typed)
    (job,) = settled(stack.engine, kinds.CREATE_LEAD)
    assert (job.status, job.error_code) == ("failed", "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY")
    assert stack.org.records("Lead") == []
    explained = causes.explain_job(job)
    assert explained.headline == (
        f"an Apex trigger or flow refused it: {profiles.LEAD_TRIGGER_MESSAGE}"
    )
    assert "Triggers" in explained.fix
