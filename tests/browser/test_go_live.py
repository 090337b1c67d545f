"""Going live from the browser alone (issue 11): a fresh install with no credentials in the
environment; a manager connects Salesforce through its sign-in page, enters the Aircall key,
registers the webhook; a call then becomes a Task, and keeps doing so after the org's session
expires (the refresh token gets a new access token, no job fails). No secret shows anywhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from pydantic import SecretStr
from sqlalchemy import Engine

from integrations.aircall.emulator import Company
from integrations.salesforce.emulator import Org
from integrations.salesforce_connection import CALLBACK_PATH, box
from integrations.store import connections
from tests.browser.conftest import Screen, add_account
from tests.browser.test_connect_salesforce import SF_PASSWORD, SF_USER, connect_salesforce
from tests.conftest import SettingsWith
from tests.helpers import jobs
from tests.test_webhook_registration import a_call_becomes_a_task, managed_stack, people

API_ID = "7c1d2e3f"
API_TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
MANAGER = "sam@example.com"


@pytest.fixture
def company() -> Company:
    return Company(api_id=API_ID, api_token=API_TOKEN, loopback_http_webhooks=True)


def test_live_in_ten_minutes_from_the_connections_page(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company, browser: Browser
) -> None:
    nothing = {  # only the consumer key: every credential comes from the browser
        "aircall_api_id": "",
        "aircall_api_token": SecretStr(""),
        "salesforce_client_secret": SecretStr(""),
    }
    with managed_stack(settings_with, engine, org, company, **nothing) as stack:
        agent_id, number_id = people(stack)
        add_account(engine, MANAGER, "manager")
        org.web_flow.add_callback(stack.app.url + CALLBACK_PATH)
        org.web_flow.set_password(SF_USER, SF_PASSWORD)
        context = browser.new_context(  # the emulator's certificate is the tests' own CA
            ignore_https_errors=True, viewport={"width": 1280, "height": 900}
        )
        try:
            screen = Screen(context.new_page(), stack.app.url)
            page = screen.page
            screen.sign_in(MANAGER)
            screen.go("/settings/connections")

            connect_salesforce(screen, stack.settings.salesforce_login_url, org.client_secret)
            expect(page.locator("#salesforce-facts")).to_contain_text(org.org_id)

            aircall = page.locator("#aircall-connection")
            aircall.get_by_label("API ID").fill(API_ID)
            aircall.get_by_label("API token").fill(API_TOKEN)
            aircall.get_by_role("button", name="Check and save").click()
            expect(aircall.locator("#aircall-key-notice")).to_contain_text("Aircall is connected")
            aircall.get_by_role("button", name="Register webhook").click()
            expect(aircall.locator("#aircall-webhook-status")).to_contain_text("active")
            shown = page.content()
            assert API_TOKEN not in shown
            assert org.client_secret not in shown
            assert screen.errors == []
        finally:
            context.close()

        (hook,) = company.webhooks.values()
        a_call_becomes_a_task(stack, agent_id, number_id)  # sent with the token Aircall gave
        assert {d["envelope"]["token"] for d in company.deliveries} == {hook["token"]}

        org.revoke_tokens()  # the org's session timed out: only the refresh token still works
        a_call_becomes_a_task(stack, agent_id, number_id)
        assert [job.kind for job in jobs(engine) if job.status == "failed"] == []

        stored = connections.load(engine, box(stack.settings), connections.SALESFORCE)
        assert stored is not None
        assert org.check_token(stored.secret["access_token"])  # the refreshed one, kept
