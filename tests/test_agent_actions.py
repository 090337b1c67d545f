"""What an agent does from the dashboard, as jobs: disposition and note through Aircall, Create
Lead for an unknown number, a pick among matches; the caller's context, read once per number."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from integrations.aircall.events import parse
from integrations.loopback import wait_for
from integrations.salesforce.client import SalesforceClient
from integrations.settings import Settings
from integrations.store.models import CallerMatch
from integrations.sync.callers.matching import Match, Policy
from integrations.sync.calls import agent_actions
from integrations.sync.calls.context_card import CallerContext, caller_context
from integrations.sync.calls.insight_card import card_contents
from integrations.sync.intake import deliveries
from integrations.sync.jobs import kinds
from tests.conftest import WEBHOOK_TOKEN, SettingsWith, Stack
from tests.helpers import AGENT_EMAIL, envelope, jobs, settled
from tests.signin import Site

CALLER = "+14155550100"


def _line(stack: Stack) -> tuple[int, int]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    return agent["id"], number["id"]


def _answered(stack: Stack, caller: str = CALLER) -> int:
    """An inbound call answered by Jane (made on first use) on the support line."""
    if not hasattr(stack, "line"):
        stack.line = _line(stack)  # type: ignore[attr-defined]
    agent_id, number_id = stack.line  # type: ignore[attr-defined]
    call = stack.company.start_call(
        direction="inbound", external=caller, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(call["id"], user_id=agent_id)
    return call["id"]


def _end(stack: Stack, call_id: int) -> None:
    stack.company.hangup(call_id)
    stack.company.end(call_id)


def _task(stack: Stack, call_id: int) -> dict | None:
    return next((t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)), None)


def _account_with_opportunity(stack: Stack) -> str:
    account = stack.org.insert("Account", {"Name": "Acme Corp"})
    stack.org.insert(
        "Opportunity",
        {
            "Name": "Acme renewal",
            "AccountId": account,
            "StageName": "Negotiation/Review",
            "CloseDate": "2031-01-31",
        },
    )
    stack.org.insert(
        "Opportunity",
        {
            "Name": "Old deal",
            "AccountId": account,
            "StageName": "Closed Won",
            "CloseDate": "2020-01-31",
        },
    )
    return account


@pytest.fixture
def settings(settings_with: SettingsWith) -> Settings:
    # The agent acts during the call: the Task follows the call as it happens.
    return settings_with(task_logged_at="answer")


def test_a_disposition_and_a_note_go_through_aircall_to_the_task(stack: Stack) -> None:
    stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    call_id = _answered(stack)
    wait_for(lambda: _task(stack, call_id), timeout=10)

    # "Qualified" is not one of the company's tags yet: the job creates it.
    agent_actions.request_disposition(stack.engine, call_id, "Qualified", "Wants a demo")
    agent_actions.request_disposition(stack.engine, call_id, "Qualified", "Wants a demo")
    (job,) = settled(stack.engine, kinds.AGENT_DISPOSITION)
    assert job.status == "done", job.last_error
    in_aircall = stack.company.call(call_id)
    assert [t["name"] for t in in_aircall["tags"]] == ["Qualified"]
    assert [c["content"] for c in in_aircall["comments"]] == ["Wants a demo"]

    # Aircall's call.tagged / call.commented take the call down the usual path to its Task.
    wait_for(lambda: (_task(stack, call_id) or {}).get("CallDisposition") == "Qualified", 10)
    _end(stack, call_id)
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")
    task = _task(stack, call_id)
    assert task is not None
    assert "Wants a demo" in task["Description"]

    # Sent again (a retry, a second click after the first finished): nothing is doubled.
    agent_actions.request_disposition(stack.engine, call_id, "qualified", "Wants a demo")
    jobs = settled(stack.engine, kinds.AGENT_DISPOSITION, count=2)
    assert {j.status for j in jobs} == {"done"}
    again = stack.company.call(call_id)
    assert len(again["tags"]) == 1
    assert len(again["comments"]) == 1
    assert [t["name"] for t in stack.company.list_tags()].count("Qualified") == 1


def test_create_lead_makes_one_lead_and_points_the_numbers_tasks_at_it(stack: Stack) -> None:
    unknown = "+14155550177"
    earlier = _answered(stack, unknown)
    _end(stack, earlier)
    current = _answered(stack, unknown)
    wait_for(lambda: _task(stack, earlier) and _task(stack, current), timeout=10)
    assert _task(stack, current).get("WhoId") is None

    typed = agent_actions.LeadForm(last_name="Okafor", company="Globex")
    agent_actions.request_lead(stack.engine, current, unknown, typed)
    agent_actions.request_lead(stack.engine, current, unknown, typed)  # a double click: one Lead
    # One job, or two when the first finished before the second click: either way one Lead.
    clicks = settled(stack.engine, "salesforce_create_lead")
    assert [job.status for job in clicks] == ["done"] * len(clicks), clicks[0].last_error
    (lead,) = stack.org.records("Lead")
    assert (lead["Phone"], lead["Company"], lead["LastName"]) == (unknown, "Globex", "Okafor")
    wait_for(
        lambda: all((_task(stack, c) or {}).get("WhoId") == lead["Id"] for c in (earlier, current)),
        timeout=10,
    )
    with Session(stack.engine) as s:
        cached = s.get(CallerMatch, unknown)
        context = s.get(CallerContext, unknown)
    assert cached is not None
    assert cached.pinned
    assert context is not None
    assert context.context["lead_status"] == "Open - Not Contacted"

    # Another agent clicks later: the number has its Lead, none is made.
    agent_actions.request_lead(stack.engine, current, unknown, typed)
    settled(stack.engine, "salesforce_create_lead", count=len(clicks) + 1)
    assert len(stack.org.records("Lead")) == 1


def test_the_lead_form_is_checked_as_salesforce_would_check_the_lead() -> None:
    lead = agent_actions.read_lead_form(
        {"first_name": "G" * 41, "last_name": " ", "company": "Acme", "email": "gary@"}
    )
    assert lead.errors == {
        "last_name": "Required: Salesforce needs a Last Name on every Lead.",
        "email": "Not an e-mail address (name@example.com).",
        "first_name": "First name takes at most 40 characters.",
    }
    ok = agent_actions.read_lead_form({"last_name": " Okafor ", "company": "Globex"})
    assert ok.errors == {}
    assert ok.fields("+14155550177", None) == {
        "LastName": "Okafor",
        "Company": "Globex",
        "Phone": "+14155550177",
        "LeadSource": "Phone Inquiry",
    }  # no OwnerId: the integration user owns it


def test_a_pick_is_remembered_and_moves_the_calls_task(stack: Stack) -> None:
    older = stack.org.insert("Contact", {"LastName": "Older", "Phone": CALLER})
    newer = stack.org.insert("Contact", {"LastName": "Newer", "Phone": CALLER})
    call_id = _answered(stack)
    wait_for(lambda: (_task(stack, call_id) or {}).get("WhoId") == newer, timeout=10)

    agent_actions.pick(stack.engine, call_id, CALLER, Match("Contact", older, "Older"))
    wait_for(lambda: _task(stack, call_id)["WhoId"] == older, timeout=10)
    (job,) = settled(stack.engine, "caller_context")
    assert job.result == {"sobject": "Contact", "id": older}
    _end(stack, call_id)
    second = _answered(stack)
    wait_for(lambda: (_task(stack, second) or {}).get("WhoId") == older, timeout=10)


def test_the_context_is_read_once_per_number_in_at_most_two_requests(stack: Stack) -> None:
    account = _account_with_opportunity(stack)
    owner = stack.org.add_user("Olivia Owner", "olivia@example.com")
    contact = stack.org.insert(
        "Contact", {"LastName": "Jennings", "Phone": CALLER, "AccountId": account, "OwnerId": owner}
    )
    lead = stack.org.insert("Lead", {"LastName": "Lee", "Company": "Initech", "Phone": CALLER})
    sf = SalesforceClient(stack.settings)
    try:
        sf.query("SELECT Id FROM Organization LIMIT 1")  # sign in first: not counted below
        before = sf.usage.total_requests
        context = caller_context(
            stack.engine, sf, CALLER, Match("Contact", contact, ""), max_age=60
        )
        assert sf.usage.total_requests - before == 2
        assert context["owner"] == "Olivia Owner"
        assert context["company"] == "Acme Corp"
        assert (context["opportunity"], context["stage"]) == ("Acme renewal", "Negotiation/Review")
        again = caller_context(stack.engine, sf, CALLER, Match("Contact", contact, ""), max_age=60)
        assert again == context
        assert sf.usage.total_requests - before == 2

        before = sf.usage.total_requests
        for_lead = caller_context(stack.engine, sf, CALLER, Match("Lead", lead, ""), max_age=60)
        assert sf.usage.total_requests - before == 1
        assert (for_lead["company"], for_lead["lead_status"]) == ("Initech", "Open - Not Contacted")
    finally:
        sf.close()


def test_the_insight_card_carries_the_same_context_as_the_dashboard() -> None:
    matches = [{"type": "Contact", "id": "003000000000001AAA", "name": "Gary", "modified": ""}]
    context = {
        "sobject": "Contact",
        "id": "003000000000001AAA",
        "owner": "Olivia Owner",
        "company": "Acme Corp",
        "opportunity": "Acme renewal",
        "stage": "Prospecting",
        "updated": "2031-01-02",
    }
    contents = card_contents(CALLER, matches, Policy(), "https://org", context)
    lines = {c.get("label"): c["text"] for c in contents if c["type"] == "shortText"}
    assert lines["Owner"] == "Olivia Owner"
    assert lines["Account"] == "Acme Corp"
    assert lines["Open opportunity"] == "Acme renewal (Prospecting)"
    assert lines["Last updated"] == "2031-01-02"


def test_an_agent_acts_on_their_own_calls_only(site: Site) -> None:
    data = {
        "id": 501,
        "direction": "inbound",
        "status": "answered",
        "started_at": int(time.time()),
        "raw_digits": "+1 415-555-0100",
        "user": {"id": 2, "name": "Leo Martin", "email": "leo@example.com"},
    }
    body = envelope("call.answered", data, WEBHOOK_TOKEN)
    deliveries.accept(site.engine, parse(body, [SecretStr(WEBHOOK_TOKEN)]))
    maya = site.user("maya@example.com", "agent")
    boss = site.user("boss@example.com", "manager")
    form = {"tag": "Sale", "note": "", "csrf_token": maya.csrf}
    assert maya.client.post("/calls/501/disposition", data=form).status_code == 403
    assert maya.client.post("/calls/501/lead", data={"csrf_token": maya.csrf}).status_code == 403
    assert maya.client.get("/calls/501/caller").status_code == 403
    no_token = boss.client.post("/calls/501/disposition", data={"tag": "Sale"})
    assert no_token.status_code == 403
    picked = boss.client.post(
        "/calls/501/pick", data={"record": "Contact:003000000000009AAA", "csrf_token": boss.csrf}
    )
    assert picked.status_code == 400  # not one of the number's matches
    sent = boss.client.post("/calls/501/disposition", data={**form, "csrf_token": boss.csrf})
    assert sent.status_code == 303
    assert len(jobs(site.engine, kinds.AGENT_DISPOSITION)) == 1
