"""A follow-up Task made in the builder is a to-do, not a second logged call (issue 15, bug 10):
it carries what its step sets, never the call-log fields of the call's own Task."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from integrations.loopback import wait_for
from integrations.sync.automations.task_fields import CALL_LOG_FIELDS
from tests.browser.conftest import Screen, add_account
from tests.browser.test_automation_builder import settle
from tests.conftest import Stack
from tests.helpers import answered_inbound_call

AGENT = "maya@example.com"
MANAGER = "sam@example.com"
CALLER = "+14155550100"
Opener = Callable[[str], Screen]


def test_a_follow_up_task_does_not_copy_the_calls_log_fields(
    stack: Stack, open_screen: Opener
) -> None:
    agent = stack.company.add_user("Maya Patel", AGENT)
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    maya = stack.org.add_user("Maya Patel", AGENT)
    gary = stack.org.insert("Contact", {"LastName": "Jennings", "Phone": CALLER})
    add_account(stack.engine, MANAGER, "manager")
    earlier = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)  # a real call.ended to preview against
    wait_for(lambda: len(stack.org.records("Task")) == 1, timeout=15)

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    page = screen.page
    screen.go("/automations/new?trigger=E12")
    page.get_by_label("Name").fill("Follow up every call")
    page.locator('select[name="step-0-action"]').select_option("salesforce:A09")
    settle(page)
    page.locator('input[name="step-0-field-0-target"]').fill("Subject")
    page.locator('input[name="step-0-field-0-source"]').fill("=Send the quote")
    page.get_by_role("button", name="Dry run").click()
    preview = page.locator("#automation-preview")
    expect(page.locator("#preview-heading")).to_contain_text("Dry run")
    expect(preview).to_contain_text("Send the quote")
    expect(preview).to_contain_text("a follow-up Task, not a logged call")
    assert len(stack.org.records("Task")) == 1  # a dry run sends nothing
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/automations/\d+\?saved=1$"))
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#automation-status")).to_have_text("enabled")

    call = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    wait_for(lambda: len(stack.org.records("Task")) == 3, timeout=20)
    tasks = [t for t in stack.org.records("Task") if t["CallObject"] != str(earlier)]
    (logged,) = (t for t in tasks if t.get("CallType"))
    (follow_up,) = (t for t in tasks if t is not logged)
    assert logged["CallObject"] == str(call)
    assert logged["TaskSubtype"] == "Call"
    assert follow_up["Subject"] == "Send the quote"
    assert {name: follow_up.get(name) for name in CALL_LOG_FIELDS} == dict.fromkeys(CALL_LOG_FIELDS)
    assert follow_up.get("TaskSubtype") != "Call"
    assert follow_up["OwnerId"] == maya  # the agent's, as the Task mapping says
    assert "Aircall call" not in (follow_up.get("Description") or "")  # the call's text
    assert logged["WhoId"] == gary
