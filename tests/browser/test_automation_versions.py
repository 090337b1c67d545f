"""Versions in a real browser: restoring an old version confirms first, shows what changes, and
leaves the automation enabled or disabled as it is unless the manager asks."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from integrations.sync.automations import definitions
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack

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
