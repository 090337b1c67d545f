"""The Health page in a real browser: a field hidden from the integration user is named with
where to fix it, and the top bar warns on every page until Health finds nothing wrong."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from integrations.sync.automations import dispositions
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack

MANAGER = "sam@example.com"
AGENT = "maya@example.com"
Opener = Callable[[str], Screen]


def test_health_names_a_hidden_field_and_the_top_bar_warns_until_it_is_fixed(
    stack: Stack, open_screen: Opener
) -> None:
    for rule in dispositions.rules(stack.engine):  # a fresh org lacks their target values
        dispositions.set_rule(stack.engine, rule.key, by="test", enabled=False)
    stack.org.hide_field("Contact", "AssistantPhone")
    add_account(stack.engine, MANAGER, "manager")
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    expect(screen.page.locator("a.health-warning")).to_have_count(0)  # Health never ran

    screen.go("/settings/health")
    row = screen.page.get_by_role("row", name="Contact.AssistantPhone")
    expect(row.locator(".badge")).to_have_text("problem")
    expect(row).to_contain_text("the integration user cannot see this field")
    expect(row).to_contain_text(
        "Setup → Object Manager → Contact → Fields & Relationships → AssistantPhone → "
        "Set Field-Level Security"
    )
    ok = screen.page.get_by_role("row", name="Salesforce connection")
    expect(ok.locator(".badge")).to_have_text("ok")
    expect(screen.page.locator(".health-summary")).to_contain_text("1 problem needs fixing")
    screen.screenshot("health")

    screen.go("/automations")
    warning = screen.page.locator("a.health-warning")
    expect(warning).to_have_text("1 problem: see Health")
    warning.click()
    screen.page.wait_for_url(stack.app.url + "/settings/health")

    stack.org.show_field("Contact", "AssistantPhone")  # the admin fixes the profile
    screen.go("/settings/health")
    expect(screen.page.locator(".health-summary")).to_contain_text("Everything")
    expect(screen.page.locator("a.health-warning")).to_have_count(0)


def test_agents_cannot_open_health_nor_see_the_warning(stack: Stack, open_screen: Opener) -> None:
    stack.org.hide_field("Contact", "AssistantPhone")
    add_account(stack.engine, AGENT, "agent")
    screen = open_screen(stack.app.url)
    screen.sign_in(AGENT)
    response = screen.page.goto(stack.app.url + "/settings/health")
    assert response is not None
    assert response.status == 403
    expect(screen.page.get_by_role("row", name="Contact.AssistantPhone")).to_have_count(0)
    screen.errors.clear()  # the refused page load is reported on the console
