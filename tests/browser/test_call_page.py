"""A call's page follows the call as it happens: state, tags, comments and the timeline."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_screens import CALLER, MANAGER, Opener, people
from tests.conftest import Stack


def test_the_call_page_updates_live(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.sender.drain(timeout=10)
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go(f"/calls/{call['id']}")
    summary = screen.page.locator("#call-summary")
    expect(summary.locator(".badge")).to_have_text("ringing")
    expect(summary.locator("#call-tags")).to_have_text("No disposition set.")

    stack.company.answer(call["id"], user_id=agent_id)
    stack.company.tag(call["id"], "Sale", user_id=agent_id)
    stack.company.comment(call["id"], "Wants a <b>quote</b>", user_id=agent_id)
    expect(summary.locator(".badge")).to_have_text("in progress", timeout=10_000)
    expect(summary.locator("#call-tags")).to_have_text("Sale")
    expect(summary.locator("#call-comments")).to_contain_text("Wants a <b>quote</b>")
    assert summary.locator("#call-comments b").count() == 0  # shown as text
    timeline = screen.page.locator("#call-timeline")
    expect(timeline).to_contain_text("call.tagged")
    expect(timeline).to_contain_text("call.commented")

    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    expect(summary.locator(".badge")).to_have_text("ended", timeout=10_000)
    expect(timeline).to_contain_text("Create a Task in Salesforce", timeout=20_000)
    (task,) = stack.org.records("Task")
    jobs = screen.page.locator("#call-jobs")
    expect(jobs.get_by_role("link", name=f"Task {task['Id']}")).to_be_visible(timeout=10_000)
    screen.screenshot("call_live")
