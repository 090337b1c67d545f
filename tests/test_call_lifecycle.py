"""Issue 6: the call-log lifecycle, owners and dates, matching that users can trust."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from integrations.loopback import wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Org, profiles
from integrations.settings import Settings
from integrations.store.models import Call
from integrations.sync.callers.matching import Match, set_agent_user, unmapped_agents
from integrations.sync.calls.calllog import pick_record
from tests.conftest import SettingsWith, Stack, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, settled

CALLER = "+14155550100"


def _line(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    return agent["id"], number["id"]


def _task(stack: Stack, call_id: int) -> dict | None:
    return next((t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)), None)


def _settings_with(**extra: object):
    """A class-level ``settings`` fixture: the stack with these settings changed."""

    @pytest.fixture
    def settings(self: object, settings_with: SettingsWith) -> Settings:
        return settings_with(**extra)

    return settings


class TestTaskLoggedAtAnswer:
    settings = _settings_with(task_logged_at="answer")

    def test_task_made_at_answer_is_updated_not_duplicated_and_agent_notes_survive(
        self, stack: Stack
    ) -> None:
        agent_id, number_id = _line(stack)
        stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.answer(call["id"], user_id=agent_id)
        live = wait_for(lambda: _task(stack, call["id"]), timeout=10)
        assert live["Status"] == "In Progress"

        # A tag set during the call reaches Salesforce during the call.
        stack.company.tag(call["id"], "Follow Up", user_id=agent_id)
        wait_for(lambda: _task(stack, call["id"])["CallDisposition"] == "Follow Up", timeout=10)
        assert stack.company.calls[call["id"]]["status"] == "answered"

        # The agent types a note on the Task in Salesforce while the call goes on.
        agent_view = SalesforceClient(stack.settings)
        current = agent_view.get("Task", live["Id"], ["Description"])["Description"]
        agent_view.update("Task", live["Id"], {"Description": f"Spoke to the CFO.\n{current}"})
        agent_view.close()

        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
        stack.company.comment(call["id"], "Send the contract", user_id=agent_id)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        (task,) = stack.org.records("Task")
        assert task["Status"] == "Completed"
        assert task["CallDurationInSeconds"] == stack.company.calls[call["id"]]["duration"]
        assert task["Description"].startswith("Spoke to the CFO.\n")
        assert "Send the contract" in task["Description"]
        assert "Follow Up" in task["Description"]
        assert task["Description"].count(f"Aircall call {call['id']}") == 1


@pytest.fixture
def org() -> Org:
    return profiles.messy(time_zone="America/Los_Angeles")


def test_a_2330_call_in_los_angeles_is_logged_on_that_day(stack: Stack) -> None:
    agent_id, number_id = _line(stack)
    late = datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo("America/Los_Angeles")).timestamp()
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id, at=late
    )
    stack.company.answer(call["id"], user_id=agent_id, at=late + 5)
    stack.company.hangup(call["id"], at=late + 65)
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    assert _task(stack, call["id"])["ActivityDate"] == "2026-03-10"  # 07:30 on the 11th in UTC


def test_unmapped_agent_is_listed_and_a_manual_mapping_sets_the_owner(stack: Stack) -> None:
    agent_id, number_id = _line(stack)  # no Salesforce User has the agent's email
    first = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    assert [a.email for a in unmapped_agents(stack.engine)] == [AGENT_EMAIL]
    assert _task(stack, first)["OwnerId"] is None or _task(stack, first)["OwnerId"] == (
        stack.org.run_as_user_id
    )
    owner = stack.org.add_user("Jane A. (Sales)", "jane.sales@example.com")
    set_agent_user(stack.engine, AGENT_EMAIL, owner)
    second = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    assert _task(stack, second)["OwnerId"] == owner
    assert unmapped_agents(stack.engine) == []


@pytest.mark.parametrize("stored", ["(415) 555-0100", "415.555.0100", "+1 415-555-0100"])
def test_a_national_format_number_in_salesforce_matches_an_e164_caller(
    stack: Stack, stored: str
) -> None:
    agent_id, number_id = _line(stack)
    contact = stack.org.insert("Contact", {"LastName": "Jennings", "Phone": stored})
    call_id = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    assert _task(stack, call_id)["WhoId"] == contact


class TestCustomPhoneField:
    settings = _settings_with(salesforce_phone_fields=["Contact.Direct_Line__c"])

    def test_a_custom_phone_field_matches(self, stack: Stack) -> None:
        stack.org.add_field("Contact", "Direct_Line__c", "phone")
        agent_id, number_id = _line(stack)
        contact = stack.org.insert(
            "Contact", {"LastName": "Okafor", "Direct_Line__c": "(415) 555-0100"}
        )
        call_id = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        assert _task(stack, call_id)["WhoId"] == contact


def _switchboard(stack: Stack) -> tuple[str, str, str]:
    older = stack.org.insert("Contact", {"LastName": "Older", "Phone": CALLER})
    newer = stack.org.insert("Contact", {"LastName": "Newer", "Phone": CALLER})
    lead = stack.org.insert("Lead", {"LastName": "Lead", "Company": "Acme", "Phone": CALLER})
    return older, newer, lead


def test_three_records_sharing_a_number_get_the_call_once_by_priority(stack: Stack) -> None:
    agent_id, number_id = _line(stack)
    _older, newer, _lead = _switchboard(stack)
    call_id = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    (task,) = stack.org.records("Task")
    assert (task["CallObject"], task["WhoId"]) == (str(call_id), newer)  # Contact, newest


class TestReviewQueue:
    settings = _settings_with(match_multiple="review", match_priority=["Lead", "Contact"])

    def test_several_matches_wait_for_a_pick_which_is_remembered(self, stack: Stack) -> None:
        agent_id, number_id = _line(stack)
        older, _newer, _lead = _switchboard(stack)
        stack.org.insert("Lead", {"LastName": "Lead 2", "Company": "Acme", "Phone": CALLER})
        first = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
        stack.sender.drain(timeout=10)
        job = settled(stack.engine, "log_call")[-1]
        assert len(job.result["review"]) == 2  # the two Leads come first by priority
        assert stack.org.records("Task") == []

        pick_record(stack.engine, CALLER, Match("Contact", older, "Older"))
        wait_for(lambda: _task(stack, first), timeout=10)
        second = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        assert [_task(stack, c)["WhoId"] for c in (first, second)] == [older, older]
        assert len(stack.org.records("Task")) == 2


class TestNewNumberTwiceWithSearchLag:
    settings = _settings_with(create_unknown_callers="lead", task_logged_at="answer")

    @pytest.fixture
    def org(self) -> Org:
        return profiles.messy(sosl_delay=5.0)  # Salesforce's search index lags behind writes

    def test_two_calls_a_second_apart_make_one_lead_with_both_tasks(self, stack: Stack) -> None:
        agent_id, number_id = _line(stack)
        other = stack.company.add_user("Sam Agent", "sam@example.com")
        first = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        second = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=other["id"]
        )
        stack.company.answer(first["id"], user_id=agent_id)
        stack.company.answer(second["id"], user_id=other["id"])
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call", count=2)
        (lead,) = stack.org.records("Lead")
        assert [_task(stack, c["id"])["WhoId"] for c in (first, second)] == [lead["Id"]] * 2


def test_missed_calls_can_be_left_unlogged(stack_with: StackWith) -> None:
    with stack_with(log_missed="") as stack:
        agent_id, number_id = _line(stack)
        missed = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.hangup(missed["id"])
        stack.company.end(missed["id"])
        answered = answered_inbound_call(stack.company, number_id, agent_id, CALLER)
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        assert [t["CallObject"] for t in stack.org.records("Task")] == [str(answered)]
        with Session(stack.engine) as s:
            assert s.get(Call, missed["id"]).ended
