"""The automation builder in a real browser: a manager builds an automation (trigger, action,
field mapping with its live preview, dry run), saves and enables it, and the next call's webhook
runs it against the Salesforce emulator. The screenshot goes to docs/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from integrations.loopback import wait_for
from integrations.sync.automations import definitions
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack
from tests.helpers import answered_inbound_call

AGENT = "maya@example.com"
MANAGER = "sam@example.com"
CALLER = "+14155550100"
Opener = Callable[[str], Screen]


def test_a_manager_builds_an_automation_that_then_fires_on_a_webhook(
    stack: Stack, open_screen: Opener
) -> None:
    agent = stack.company.add_user("Maya Patel", AGENT)
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    maya = stack.org.add_user("Maya Patel", AGENT)
    add_account(stack.engine, MANAGER, "manager")
    earlier = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)  # a real call.ended to preview against

    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    page = screen.page
    page.get_by_role("link", name="Automations").click()
    expect(page.locator("#automations")).to_contain_text("E12")
    page.get_by_role("link", name="New automation").click()

    page.get_by_label("Name").fill("A Lead for every inbound call")
    # Each choice re-renders the editor through htmx: wait for that before the next one.
    page.locator('select[name="trigger"]').select_option("E12")
    settle(page)
    page.locator('select[name="cond-direction"]').select_option("inbound")
    settle(page)
    page.locator('select[name="step-0-action"]').select_option("salesforce:A04")
    settle(page)
    expect(page.locator("#step-0 legend")).to_contain_text("Create Lead")
    page.locator('input[name="step-0-field-0-target"]').fill("Description")
    page.locator('input[name="step-0-field-0-source"]').fill(
        "Call {{call.id}} from {{contact_phone}}"
    )
    preview = page.locator("#automation-preview")
    expect(preview).to_contain_text(f"Call {earlier} from {CALLER}")  # the live preview
    expect(preview).to_contain_text("Would create a Lead in Salesforce")
    # At 1280 px the editor and the preview share the width; the side cards go below them.
    editor, shown = page.locator("#automation-form").bounding_box(), preview.bounding_box()
    assert editor
    assert shown
    assert editor["width"] >= 700
    assert shown["x"] > editor["x"] + 600

    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#preview-heading")).to_contain_text("Dry run")
    expect(page.locator("#automation-preview")).to_contain_text(f"Call {earlier} from {CALLER}")
    assert stack.org.records("Lead") == []  # a dry run sends nothing

    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/automations/\d+\?saved=1$"))
    expect(page.locator("#automation-status")).to_have_text("disabled")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#automation-status")).to_have_text("enabled")
    expect(page.locator("#history")).to_contain_text("enabled")
    expect(page.locator("#automation-preview")).to_contain_text(f"Call {earlier} from {CALLER}")
    screen.screenshot("automations")

    automation_id = int(page.url.rsplit("/", 1)[1].split("?")[0])
    stored = definitions.definition(stack.engine, automation_id)
    assert stored["enabled"]
    assert stored["conditions"] == {"direction": "inbound"}
    assert stored["actions"] == [
        {
            "action": "salesforce:A04",
            "fields": {"Description": "Call {{call.id}} from {{contact_phone}}"},
        }
    ]

    call = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    (lead,) = wait_for(lambda: stack.org.records("Lead") or None, timeout=15)
    assert lead["Description"] == f"Call {call} from {CALLER}"
    assert (lead["Phone"], lead["Company"], lead["LeadSource"]) == (
        CALLER,
        "Unknown (Aircall)",
        "Phone Inquiry",
    )
    assert lead["OwnerId"] == maya  # the agent's User, not the integration user


def settle(page: Page) -> None:
    """Wait until no htmx request, swap or settle is under way on the page."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def test_dry_runs_add_no_rows_and_a_refused_request_shows_on_the_page(
    stack: Stack, open_screen: Opener
) -> None:
    add_account(stack.engine, MANAGER, "manager")
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    page = screen.page
    screen.go("/automations/new?trigger=E12")
    page.get_by_label("Name").fill("Leads")
    page.locator('select[name="step-0-action"]').select_option("salesforce:A04")
    settle(page)
    page.locator('input[name="step-0-field-0-target"]').fill("Description")
    page.locator('input[name="step-0-field-0-source"]').fill("=Inbound")
    rows = page.locator("#step-0 table.mapping tbody tr")
    for _ in range(3):
        with page.expect_response(lambda answer: answer.url.endswith("/automations/new")):
            page.get_by_role("button", name="Dry run").click()
        settle(page)
        expect(rows).to_have_count(2)  # the field, and one blank row to type the next
    expect(page.locator('input[name="step-0-field-0-target"]')).to_have_value("Description")

    # A form the server refuses (more steps than it takes): the page says so.
    page.locator('select[name="step-0-action"]').evaluate("el => el.name = 'step-99-action'")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("alert")).to_contain_text("The server refused this (400)")
    expect(page.get_by_role("alert")).to_contain_text("at most 20 actions")
    screen.errors.clear()  # the browser and htmx report the 400 on the console too
