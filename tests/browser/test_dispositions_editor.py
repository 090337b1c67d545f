"""The disposition rules in a real browser: a target value the org's picklist lacks is refused
at save with the values it has, as the field mapping editor refuses its rows."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect
from sqlmodel import Session

from integrations.store.automation_models import DispositionRule
from integrations.sync.automations import dispositions
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack

MANAGER = "sam@example.com"
Opener = Callable[[str], Screen]


def _lead_status(stack: Stack) -> str | None:
    with Session(stack.engine) as s:
        rule = s.get(DispositionRule, "interested")
        assert rule is not None
        return rule.lead_status


def test_a_lead_status_the_org_lacks_is_refused_at_save(stack: Stack, open_screen: Opener) -> None:
    add_account(stack.engine, MANAGER, "manager")
    before = _lead_status(stack)
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/automations/dispositions")
    rule = screen.page.locator("#rule-interested")
    rule.get_by_label("Lead Status").fill("Warm-ish")
    rule.get_by_role("button", name="Save").click()

    rule = screen.page.locator("#rule-interested")
    expect(rule.get_by_role("alert")).to_contain_text("Lead Status has no value 'Warm-ish'")
    expect(rule.get_by_role("alert")).to_contain_text("Working - Contacted")
    expect(rule.get_by_role("status")).to_have_count(0)  # no "Saved."
    expect(rule.get_by_label("Lead Status")).to_have_value("Warm-ish")  # kept as typed
    screen.screenshot("dispositions_refused")
    assert _lead_status(stack) == before

    rule.get_by_label("Lead Status").fill("Working - Contacted")
    rule.get_by_label("Opportunity Stage").fill("Qualification")
    rule.get_by_role("button", name="Save").click()
    expect(screen.page.locator("#rule-interested").get_by_role("status")).to_have_text("Saved.")
    assert _lead_status(stack) == "Working - Contacted"
    screen.errors.clear()  # the refused post's 400 page load is reported on the console


def test_the_rules_say_which_tags_aircall_has_and_which_it_lacks(
    stack: Stack, open_screen: Opener
) -> None:
    dispositions.set_rule(stack.engine, "interested", by="test", tags=["Interested", "Hot lead"])
    stack.company.add_tag("Interested")  # Aircall has the first, not the second
    add_account(stack.engine, MANAGER, "manager")
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    screen.go("/automations/dispositions")
    listed = screen.page.locator("#aircall-tags")
    expect(listed.locator(".tag", has_text="Interested")).to_have_count(1)  # Aircall has it
    missing = screen.page.locator("#rule-interested .tags-missing")
    expect(missing).to_contain_text("Not a tag in Aircall yet: Hot lead.")
    expect(missing).not_to_contain_text("Interested")
    screen.screenshot("dispositions_tags")
