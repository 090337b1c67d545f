"""The mapping editor refuses a computed value for a restricted picklist (issue 15, bug 3):
"Priority = call.tags|join" passed the describe, then every call's Task failed."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from integrations.sync.automations import mapping_store
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack

MANAGER = "sam@example.com"
Opener = Callable[[str], Screen]


def test_a_computed_value_for_a_restricted_picklist_is_not_saved(
    stack: Stack, open_screen: Opener
) -> None:
    add_account(stack.engine, MANAGER, "manager")
    screen = open_screen(stack.app.url)
    screen.sign_in(MANAGER)
    page = screen.page
    screen.go("/automations/mappings/Task")
    rows = page.locator("table.mapping tbody tr")
    blank = rows.last
    blank.get_by_label("Field").fill("Priority")
    blank.get_by_label("Value").fill("call.tags|join")
    page.get_by_role("button", name="Check and save").click()

    problems = page.locator("#mapping-problems")
    expect(problems).to_contain_text("Not saved")
    expect(problems).to_contain_text("Salesforce refuses every value but High, Normal, Low")
    expect(problems).to_contain_text("call.tags|join is computed from each call")
    row = page.locator("tr.invalid")
    expect(row.get_by_label("Field")).to_have_value("Priority")  # next to its row, kept as typed
    expect(row.get_by_label("Value")).to_have_value("call.tags|join")
    expect(page.locator("#saved")).to_have_count(0)
    assert "Priority" not in mapping_store.load_mapping(stack.engine, "Task", max_age=0)
    screen.errors.clear()  # the browser reports the refused form's 400 on the console

    row.get_by_label("Value").fill("=High")
    page.get_by_role("button", name="Check and save").click()
    expect(page.locator("#saved")).to_be_visible()
    assert mapping_store.load_mapping(stack.engine, "Task", max_age=0)["Priority"] == "=High"
