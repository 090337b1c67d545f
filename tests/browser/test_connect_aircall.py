"""A manager connects Aircall in the browser: a wrong token first (a clear error, nothing
stored), then the right one, then "Register webhook"; a call Aircall then sends with the token
it returned becomes a Salesforce Task. When Aircall switches the webhook off, the page says so
and "Repair" switches it back on."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr
from sqlalchemy import Engine

from integrations.aircall.emulator import Company
from integrations.loopback import wait_for
from integrations.salesforce.emulator import Org
from integrations.store import connections
from tests.browser.conftest import Screen, add_account
from tests.conftest import SettingsWith
from tests.helpers import answered_inbound_call
from tests.test_webhook_registration import managed_stack, people

API_ID = "4f1c2a9e"
API_TOKEN = "5ec12e7a0a7c4e1b9d3f6a8b2c4d6e8f"
MANAGER = "sam@example.com"


@pytest.fixture
def company() -> Company:
    return Company(api_id=API_ID, api_token=API_TOKEN, loopback_http_webhooks=True)


def test_a_manager_connects_aircall_and_registers_the_webhook(
    settings_with: SettingsWith,
    engine: Engine,
    org: Org,
    company: Company,
    open_screen: Callable[[str], Screen],
) -> None:
    no_key = {"aircall_api_id": "", "aircall_api_token": SecretStr("")}
    checks = {"aircall_webhook_check_seconds": 0.2}
    with managed_stack(settings_with, engine, org, company, **no_key, **checks) as stack:
        agent_id, number_id = people(stack)
        add_account(engine, MANAGER, "manager")
        screen = open_screen(stack.app.url)
        screen.sign_in(MANAGER)
        screen.go("/settings/connections")
        page = screen.page
        card = page.locator("#aircall-connection")
        expect(card.locator("#aircall-key-status")).to_contain_text("Not connected yet")

        card.get_by_label("API ID").fill(API_ID)
        card.get_by_label("API token").fill("0" * 32)
        card.get_by_role("button", name="Check and save").click()
        expect(card.locator("#aircall-key-error")).to_contain_text(
            "Aircall refused this API ID and token"
        )
        expect(card.get_by_label("API ID")).to_have_value(API_ID)
        expect(card.get_by_label("API token")).to_have_value("")
        assert connections.details(engine, connections.AIRCALL) is None

        card.get_by_label("API token").fill(API_TOKEN)
        card.get_by_role("button", name="Check and save").click()
        expect(card.locator("#aircall-key-notice")).to_contain_text("Aircall is connected")
        expect(card.locator("#aircall-key-status")).to_contain_text(API_ID)

        card.get_by_role("button", name="Register webhook").click()
        expect(card.locator("#aircall-webhook-notice")).to_contain_text("registered and active")
        expect(card.locator("#aircall-webhook-status")).to_contain_text("active")
        screen.screenshot("connections_aircall")
        assert API_TOKEN not in page.content()

        (hook,) = company.webhooks.values()
        call_id = answered_inbound_call(company, number_id, agent_id, "+14155550100")
        (task,) = wait_for(lambda: org.records("Task"), timeout=20)
        assert task["CallObject"] == str(call_id)
        assert all(d["envelope"]["token"] == hook["token"] for d in company.deliveries)
        assert all(d["delivered"] for d in company.deliveries)

        # Aircall switches the webhook off: the read-back says so, Repair switches it on.
        company.update_webhook(hook["webhook_id"], {"active": False, "events": hook["events"]})
        problem = card.locator("#aircall-webhook-problem")
        wait_for(lambda: connections.details(engine, connections.AIRCALL_WEBHOOK)["problem"])
        page.reload()
        expect(problem).to_contain_text("Aircall has disabled the webhook")
        screen.screenshot("connections_aircall_problem")
        card.get_by_role("button", name="Repair").click()
        expect(card.locator("#aircall-webhook-notice")).to_contain_text("registered and active")
        expect(problem).to_have_count(0)
        expect(card.get_by_role("button", name="Backfill these calls")).to_be_visible()
        assert company.webhooks[hook["webhook_id"]]["active"] is True
