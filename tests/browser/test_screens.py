"""The three screens in a real browser: sign-in and the live dashboard, the manager's review
with fix-and-re-sync, the charts; access and escaping. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr
from sqlalchemy import Engine

from integrations.aircall.events import parse
from integrations.loopback import serve
from integrations.salesforce.emulator import Fault
from integrations.settings import Settings
from integrations.sync.intake import deliveries
from tests.browser.conftest import Screen, add_account
from tests.conftest import WEBHOOK_TOKEN, Stack
from tests.helpers import envelope, post_webhook, settled
from web.app import create_app

AGENT = "maya@example.com"
MANAGER = "sam@example.com"
CALLER = "+14155550100"
PICKLIST_ERROR = [
    {
        "message": "bad value for restricted picklist field: Sale",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["CallDisposition"],
    }
]
Opener = Callable[[str], Screen]


def people(stack: Stack) -> tuple[int, int]:
    """An agent known to Aircall, Salesforce and Callbridge; a manager; a known caller."""
    agent = stack.company.add_user("Maya Patel", AGENT)
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    stack.org.add_user("Maya Patel", AGENT)
    stack.org.insert(
        "Contact", {"FirstName": "Gary", "LastName": "Jennings", "Phone": "(415) 555-0100"}
    )
    for tag in ("Sale", "Callback"):
        stack.company.add_tag(tag)
    add_account(stack.engine, AGENT, "agent")
    add_account(stack.engine, MANAGER, "manager")
    return agent["id"], number["id"]


def test_a_call_appears_live_with_its_salesforce_context(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    screen = open_screen(stack.app.url)
    screen.go("/signin")
    screen.screenshot("signin")
    screen.sign_in(AGENT)
    page = screen.page
    expect(page.locator("#live-status")).to_have_text("Live")

    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    row = page.locator(f"#call-{call['id']}")
    expect(row).to_contain_text("ringing")
    stack.company.answer(call["id"], user_id=agent_id)
    expect(row).to_contain_text("in progress")
    card = page.locator("#context-card")
    expect(card).to_contain_text("Gary Jennings")
    expect(card.get_by_role("link", name="Gary Jennings")).to_have_attribute(
        "href",
        f"{stack.settings.record_base_url}/lightning/r/Contact/"
        f"{stack.org.records('Contact')[0]['Id']}/view",
    )
    (insight,) = stack.company.insight_cards
    assert insight["call_id"] == call["id"]
    screen.screenshot("dashboard")

    stack.company.tag(call["id"], "Sale", user_id=agent_id)
    expect(row).to_contain_text("Sale")
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    expect(row).to_contain_text("ended")
    expect(card).to_contain_text("No active call")
    expect(row.locator(".job.done", has_text="Task")).to_be_visible()
    assert page.locator("tr.call").count() == 1


def test_the_dashboard_reconnects_and_catches_up(
    engine: Engine, database_url: str, open_screen: Opener
) -> None:
    """The app restarts; a call arrives meanwhile; the page reconnects and shows it."""
    add_account(engine, AGENT, "agent")
    settings = Settings(_env_file=None, database_url=database_url)
    with serve(create_app(settings, engine=engine, worker=False)) as first:
        screen = open_screen(first.url)
        screen.sign_in(AGENT)
        status = screen.page.locator("#live-status")
        expect(status).to_have_text("Live")
        port = first.port
    expect(status).to_have_text("Reconnecting…")
    accept_call(engine, 77, AGENT)  # received by another process while this one was down
    with serve(create_app(settings, engine=engine, worker=False), port=port):
        expect(status).to_have_text("Live", timeout=15_000)
        expect(screen.page.locator("#call-77")).to_contain_text("ringing")
        screen.page.close()  # before the server stops, or the page retries again
    screen.errors.clear()  # the browser reports the refused reconnection attempts


def test_a_hostile_contact_name_renders_as_text(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    hostile = "<script>alert(1)</script>"
    stack.company.add_contact(hostile, "<img src=x onerror=alert(2)>", ["+1 646 555 0106"])
    screen = open_screen(stack.app.url)
    screen.sign_in(AGENT)
    call = stack.company.start_call(
        direction="inbound", external="+1 646 555 0106", number_id=number_id, user_id=agent_id
    )
    row = screen.page.locator(f"#call-{call['id']}")
    expect(row).to_contain_text(hostile)
    expect(row).to_contain_text("<img src=x onerror=alert(2)>")
    assert row.locator("script, img").count() == 0
    screen.go(f"/calls/{call['id']}")
    expect(screen.page.locator("h1")).to_contain_text(hostile)
    assert screen.dialogs == []


def test_a_manager_resyncs_a_failed_call_after_the_fix(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    stack.org.faults.add(
        Fault(method="POST", path=r"/sobjects/Task", status=400, body=PICKLIST_ERROR, times=99)
    )
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(call["id"], user_id=agent_id)
    stack.company.tag(call["id"], "Sale", user_id=agent_id)
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    job = settled(stack.engine, "log_call")[-1]  # the newest: the answer's may have ended waiting
    assert job.status == "failed"

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/review?status=failed")
    row = screen.page.locator(f"#review-call-{call['id']}")
    expect(row).to_contain_text("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    expect(row).to_contain_text("bad value for restricted picklist field: Sale")
    screen.screenshot("review")

    stack.org.faults.clear()  # the fix, made in Salesforce
    row.get_by_role("button", name="Re-sync").click()
    expect(row.locator(".job.done", has_text="Task")).to_be_visible(timeout=15_000)
    (task,) = stack.org.records("Task")
    expect(row.get_by_role("link", name=f"Task {task['Id']}")).to_be_visible()
    assert task["CallObject"] == str(call["id"])

    screen.go(f"/calls/{call['id']}")
    timeline = screen.page.locator(".timeline")
    expect(timeline).to_contain_text("call.ended")
    expect(timeline).to_contain_text("Create a Task in Salesforce (failed)")
    screen.screenshot("call")


def test_a_bulk_resync_of_50_failed_calls_makes_50_tasks(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    stack.org.faults.add(
        # The single create and the batched one (sObject Collections) alike.
        Fault(
            method="POST", path=r"/sobjects(/Task)?/?$", status=400, body=PICKLIST_ERROR, times=999
        )
    )
    for _ in range(50):
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
    stack.sender.drain(timeout=60)  # 250 deliveries: room for a busy machine
    assert {job.status for job in settled(stack.engine, "log_call", count=50)} == {"failed"}

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/review?status=failed")
    expect(screen.page.locator(".count")).to_have_text("50 calls")
    stack.org.faults.clear()
    screen.page.get_by_role("button", name="Re-sync all failed calls of this filter").click()
    progress = screen.page.locator("#resync-progress")
    expect(progress).to_contain_text("Re-sync finished: 50 of 50 done, 0 failed", timeout=30_000)
    expect(screen.page.locator(".count")).to_have_text("0 calls")  # the table reloaded
    tasks = stack.org.records("Task")
    assert len(tasks) == 50
    assert len({task["CallObject"] for task in tasks}) == 50


def test_an_agent_cannot_do_manager_things_by_posting_directly(
    stack: Stack, open_screen: Opener
) -> None:
    _agent_id, number_id = people(stack)
    other = stack.company.add_user("Leo Martin", "leo@example.com")
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=other["id"]
    )
    stack.sender.drain(timeout=10)
    screen = open_screen(stack.app.url)
    screen.sign_in(AGENT)
    token = screen.page.locator("form.signout input[name=csrf_token]").input_value()
    request = screen.page.request
    assert request.post(f"{stack.app.url}/review/resync", form={"csrf_token": token}).status == 403
    answer = request.post(f"{stack.app.url}/calls/{call['id']}/resync", form={"csrf_token": token})
    assert answer.status == 403
    screen.go("/review")
    expect(screen.page.locator("h1")).to_have_text("403")
    assert screen.page.locator(f"#call-{call['id']}").count() == 0
    screen.errors.clear()  # the 403 page load is reported on the console


def test_the_charts_are_drawn(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    for tag in ("Sale", "Sale", "Callback"):
        call = stack.company.start_call(
            direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
        )
        stack.company.answer(call["id"], user_id=agent_id)
        stack.company.tag(call["id"], tag, user_id=agent_id)
        stack.company.hangup(call["id"])
        stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call", count=3)
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/charts")
    expect(screen.page.locator("body")).to_have_attribute("data-charts", "drawn")
    expect(screen.page.locator("#api-usage-text")).to_contain_text("used")
    screen.screenshot("charts")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dashboard_sees_a_call_received_by_another_process(
    stack: Stack, open_screen: Opener
) -> None:
    people(stack)
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    expect(screen.page.locator("#live-status")).to_have_text("Live")
    with serve(create_app(stack.settings, engine=stack.engine, worker=False)) as other:
        body = envelope("call.created", call_data(88, AGENT), WEBHOOK_TOKEN)
        assert post_webhook(other.url, body).status_code == 200
        expect(screen.page.locator("#call-88")).to_contain_text("ringing")


def call_data(call_id: int, agent: str) -> dict:
    return {
        "id": call_id,
        "direction": "inbound",
        "status": "initial",
        "started_at": int(time.time()),
        "duration": 0,
        "raw_digits": "+1 415-555-0100",
        "user": {"id": 1, "name": "Maya Patel", "email": agent},
        "tags": [],
    }


def accept_call(engine: Engine, call_id: int, agent: str) -> None:
    body = envelope("call.created", call_data(call_id, agent), WEBHOOK_TOKEN)
    deliveries.accept(engine, parse(body, [SecretStr(WEBHOOK_TOKEN)]))
