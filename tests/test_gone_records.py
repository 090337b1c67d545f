"""Records people merge, convert and delete in Salesforce after Callbridge matched a caller to
them: the next call is logged on the record that took their place, and the number's cached
match heals to it."""

from __future__ import annotations

from sqlmodel import Session

from integrations.store.models import CallerMatch
from tests.conftest import Stack
from tests.helpers import AGENT_EMAIL, answered_inbound_call, settled, steps

CALLER = "+14155550100"


def _call(stack: Stack, count: int) -> int:
    agent = stack.company.add_user(f"Agent {count}", f"{count}.{AGENT_EMAIL}")
    number = stack.company.add_number(f"Line {count}", f"+1 212 555 01{count:02d}")
    call_id = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call", count=count)
    return call_id


def _who(stack: Stack, call_id: int) -> str:
    (task,) = [t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)]
    return task["WhoId"]


def _cached(stack: Stack) -> list[str]:
    with Session(stack.engine) as s:
        row = s.get(CallerMatch, CALLER)
        return [m["id"] for m in row.matches] if row else []


def test_a_merged_contacts_caller_is_logged_on_the_winner(stack: Stack) -> None:
    loser = stack.org.insert("Contact", {"LastName": "Lee", "Phone": CALLER})
    winner = stack.org.insert("Contact", {"LastName": "Lee-Winner", "Email": "lee@x.io"})
    first = _call(stack, 1)
    assert _who(stack, first) == loser
    stack.org.merge("Contact", winner, loser)
    second = _call(stack, 2)
    assert _who(stack, second) == winner
    assert _who(stack, first) == winner  # the merge moved it
    assert _cached(stack) == [winner]
    (healed,) = steps(stack.engine, "find the record in place of a gone one")
    assert healed.sent["because"] == "ENTITY_IS_DELETED"
    third = _call(stack, 3)
    assert _who(stack, third) == winner
    assert len(steps(stack.engine, "find the record in place of a gone one")) == 1


def test_a_converted_leads_caller_is_logged_on_its_contact(stack: Stack) -> None:
    lead = stack.org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Phone": CALLER})
    first = _call(stack, 1)
    assert _who(stack, first) == lead
    contact = stack.org.convert_lead(lead)
    second = _call(stack, 2)
    assert _who(stack, second) == contact
    assert _cached(stack) == [contact]
    (healed,) = steps(stack.engine, "find the record in place of a gone one")
    assert healed.sent["because"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_a_deleted_contacts_caller_is_searched_again(stack: Stack) -> None:
    gone = stack.org.insert("Contact", {"LastName": "Lee", "Phone": CALLER})
    first = _call(stack, 1)
    assert _who(stack, first) == gone
    stack.org.delete("Contact", gone)
    other = stack.org.insert("Lead", {"LastName": "Lee", "Company": "ACME", "Phone": CALLER})
    second = _call(stack, 2)
    assert _who(stack, second) == other
    assert _cached(stack) == [other]


def test_a_task_deleted_in_salesforce_is_made_again_by_the_calls_next_event(
    stack: Stack,
) -> None:
    stack.org.insert("Contact", {"LastName": "Lee", "Phone": CALLER})
    call_id = _call(stack, 1)
    (first,) = stack.org.records("Task")
    stack.org.delete("Task", first["Id"])
    stack.company.comment(call_id, "Call back on Monday")
    stack.sender.drain(timeout=10)
    jobs = settled(stack.engine, "log_call")
    (task,) = stack.org.records("Task")
    assert task["Id"] != first["Id"]
    assert task["CallObject"] == str(call_id)
    assert "Call back on Monday" in task["Description"]
    assert jobs[-1].status == "done"
    assert jobs[-1].result["replaced"] == first["Id"]
    (noticed,) = steps(stack.engine, "Task deleted in Salesforce")
    assert noticed.received[0]["errorCode"] in ("ENTITY_IS_DELETED", "NOT_FOUND")
