"""Versions in a real browser: restoring an old version confirms first, shows what changes, and
leaves the automation enabled or disabled as it is unless the manager asks."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from integrations.loopback import wait_for
from integrations.sync.automations import builder, definitions
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack
from tests.helpers import settled

MANAGER = "sam@example.com"
Opener = Callable[[str], Screen]
INBOUND_LEADS = {
    "name": "A Lead for every inbound call",
    "trigger": "E12",
    "enabled": False,
    "conditions": {"direction": "inbound"},
    "actions": [{"action": "salesforce:A04", "fields": {"Description": "Call {{call.id}}"}}],
}


def test_restoring_v1_confirms_shows_the_diff_and_keeps_the_automation_enabled(
    stack: Stack, open_screen: Opener
) -> None:
    add_account(stack.engine, MANAGER, "manager")
    first = definitions.save(stack.engine, INBOUND_LEADS, by=MANAGER)  # v1, disabled
    definitions.set_enabled(stack.engine, first.id, True, by=MANAGER)  # v2
    edited = {**INBOUND_LEADS, "name": "Every call", "enabled": True, "conditions": {}}
    definitions.save(stack.engine, edited, by=MANAGER, automation_id=first.id)  # v3

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    page = screen.page
    screen.go(f"/automations/{first.id}")
    page.get_by_role("link", name="Restore v1").click()

    changes = page.locator("#restore-changes")
    expect(changes).to_contain_text("Name")
    expect(changes.locator("tr", has_text="Name")).to_contain_text("Every call")
    expect(changes.locator("tr", has_text="Name")).to_contain_text("A Lead for every inbound call")
    expect(changes.locator("tr", has_text="Condition: direction")).to_contain_text("inbound")
    expect(page.locator("#restore-status")).to_have_text("The automation stays enabled.")
    expect(page.get_by_label("Also disable it, as version 1 was")).not_to_be_checked()
    screen.screenshot("automation_restore")
    assert definitions.definition(stack.engine, first.id)["name"] == "Every call"  # not yet

    page.get_by_role("button", name="Restore version 1").click()
    expect(page.locator("#saved")).to_have_text(
        "Version 1 restored as version 4; the automation is enabled."
    )
    expect(page.locator("#automation-status")).to_have_text("enabled")
    restored = definitions.definition(stack.engine, first.id)
    assert (restored["name"], restored["enabled"]) == ("A Lead for every inbound call", True)
    assert restored["conditions"] == {"direction": "inbound"}


def test_restoring_with_the_old_status_asked_for_disables_it(
    stack: Stack, open_screen: Opener
) -> None:
    add_account(stack.engine, MANAGER, "manager")
    first = definitions.save(stack.engine, INBOUND_LEADS, by=MANAGER)
    definitions.set_enabled(stack.engine, first.id, True, by=MANAGER)

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go(f"/automations/{first.id}/restore?version=1")
    expect(screen.page.locator("#restore-changes")).to_contain_text("Nothing")
    screen.page.get_by_label("Also disable it, as version 1 was").check()
    screen.page.get_by_role("button", name="Restore version 1").click()
    expect(screen.page.locator("#automation-status")).to_have_text("disabled")
    assert not definitions.definition(stack.engine, first.id)["enabled"]


def test_the_shipped_automations_show_the_runs_they_delegated(
    stack: Stack, open_screen: Opener
) -> None:
    """E12, E04 and E08 queue the call's Task sync and its insight card, not a job of their own:
    those jobs are their runs."""
    agent = stack.company.add_user("Maya Patel", "maya@example.com")
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    stack.org.add_user("Maya Patel", "maya@example.com")
    stack.org.insert(
        "Contact", {"FirstName": "Gary", "LastName": "Jennings", "Phone": "(415) 555-0100"}
    )
    add_account(stack.engine, MANAGER, "manager")
    call = stack.company.start_call(
        direction="inbound", external="+14155550100", number_id=number["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    wait_for(lambda: stack.company.insight_cards or None, timeout=15)  # while it rings on
    stack.company.comment(call["id"], "Wants a quote", user_id=agent["id"])
    stack.company.hangup(call["id"])
    stack.company.end(call["id"])
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call")

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    shipped = {s.builtin: s.id for s in builder.summaries(stack.engine) if s.builtin}
    for builtin in ("E12_log_call", "E08_comment_on_task", "E04_insight_card"):
        screen.go(f"/automations/{shipped[builtin]}")
        runs = screen.page.locator("#runs")
        expect(runs).not_to_contain_text("No run yet.")
        expect(runs.locator("summary").first).to_contain_text(f"call {call['id']}")
        expect(runs.locator("summary .badge").first).to_have_text("done")
    screen.go(f"/automations/{shipped['E12_log_call']}")
    # One run created the Task (whichever of the call's syncs came first); the others updated it.
    steps = screen.page.locator("#runs .run-steps")
    expect(steps.filter(has_text="Create a Task in Salesforce")).to_have_count(1)
    screen.screenshot("automation_runs")
