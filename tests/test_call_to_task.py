"""E12 → A09 end to end: an Aircall ``call.ended`` webhook becomes exactly one Salesforce Task."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import Session

from integrations.store.models import Call
from tests.conftest import WEBHOOK_TOKEN, Stack
from tests.helpers import (
    AGENT_EMAIL,
    answered_inbound_call,
    envelope,
    events,
    jobs,
    post_webhook,
    settled,
)


def _people(stack: Stack) -> tuple[int, int, str, str]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    owner_id = stack.org.add_user("Jane Agent", AGENT_EMAIL)
    contact_id = stack.org.insert(
        "Contact", {"FirstName": "Gary", "LastName": "Jennings", "Phone": "(415) 555-0100"}
    )
    return agent["id"], number["id"], owner_id, contact_id


def test_call_ended_webhook_creates_one_task_with_the_mapped_fields(stack: Stack) -> None:
    agent_id, number_id, owner_id, contact_id = _people(stack)
    call_id = answered_inbound_call(stack.company, number_id, agent_id, "+14155550100")
    stack.company.tag(call_id, "Follow Up", user_id=agent_id)
    stack.company.comment(call_id, "Wants a quote for 20 seats", user_id=agent_id)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")

    (task,) = stack.org.records("Task")
    call = stack.company.calls[call_id]
    assert task["Subject"] == "Inbound call from Gary Jennings"
    assert (task["TaskSubtype"], task["Type"], task["Status"]) == ("Call", "Call", "Completed")
    assert task["CallType"] == "Inbound"
    assert task["CallDurationInSeconds"] == call["duration"]
    assert task["CallObject"] == str(call_id)
    zone = ZoneInfo(stack.org.organization()["TimeZoneSidKey"])  # the org's own zone
    started = datetime.fromtimestamp(call["started_at"], zone).date().isoformat()
    assert task["ActivityDate"] == started
    assert task["WhoId"] == contact_id
    assert task["OwnerId"] == owner_id
    assert "Follow Up" in task["Description"]
    assert "Wants a quote for 20 seats" in task["Description"]
    assert f"https://assets.aircall.io/calls/{call_id}/recording" in task["Description"]
    assert task["CallDisposition"] == "Follow Up"


def test_unknown_number_is_still_logged_without_a_who(stack: Stack) -> None:
    agent_id, number_id, _owner, _contact = _people(stack)
    answered_inbound_call(stack.company, number_id, agent_id, "+33 1 42 68 53 00")
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    (task,) = stack.org.records("Task")
    assert task["WhoId"] is None
    assert task["Subject"] == "Inbound call from +33 1 42 68 53 00"


def test_same_delivery_twice_creates_one_task(stack: Stack) -> None:
    agent_id, number_id, _owner, _contact = _people(stack)
    call_id = answered_inbound_call(stack.company, number_id, agent_id, "+14155550100")
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    stored_before = len(events(stack.engine))
    body = envelope("call.ended", stack.company.calls[call_id], WEBHOOK_TOKEN, timestamp=1)
    first = post_webhook(stack.app.url, body)
    again = post_webhook(stack.app.url, body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(events(stack.engine)) == stored_before + 1
    settled(stack.engine, "log_call")
    assert len(stack.org.records("Task")) == 1


def test_bad_token_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    data = {"id": 42, "direction": "inbound", "status": "done", "tags": [], "comments": []}
    response = post_webhook(stack.app.url, envelope("call.ended", data, "f" * 32))
    assert response.status_code == 401
    assert events(stack.engine) == []
    assert jobs(stack.engine) == []


def test_malformed_bodies_get_400_and_nothing_is_stored(stack: Stack) -> None:
    assert post_webhook(stack.app.url, b"{not json").status_code == 400
    shape = b'{"token": "%s", "resource": "call", "event": "call.ended", "data": []}' % (
        WEBHOOK_TOKEN.encode()
    )
    response = post_webhook(stack.app.url, shape)
    assert response.status_code == 400
    assert "timestamp" in response.json()["error"]
    assert events(stack.engine) == []


def test_body_over_one_mebibyte_gets_413(stack: Stack) -> None:
    data = {"id": 42, "direction": "inbound", "status": "done", "padding": "x" * (1024 * 1024)}
    response = post_webhook(stack.app.url, envelope("call.ended", data, WEBHOOK_TOKEN))
    assert response.status_code == 413
    assert events(stack.engine) == []


def test_older_snapshot_arriving_late_does_not_replace_the_newer(stack: Stack) -> None:
    agent_id, number_id, _owner, _contact = _people(stack)
    call_id = answered_inbound_call(stack.company, number_id, agent_id, "+14155550100")
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    stale = dict(stack.company.calls[call_id], status="answered", duration=0)
    late = post_webhook(stack.app.url, envelope("call.answered", stale, WEBHOOK_TOKEN, 1))
    assert late.status_code == 200
    with Session(stack.engine) as s:
        stored = s.get(Call, call_id)
        assert stored.status == "done"
        assert stored.duration == stack.company.calls[call_id]["duration"]


def test_healthz_is_ok_once_migrated(stack: Stack) -> None:
    assert httpx.get(f"{stack.app.url}/healthz").json() == {
        "status": "ok",
        "outbound_messages": "on",
    }
