"""A manager connects Salesforce in a real browser through the emulator's sign-in page; the
worker then writes calls' Tasks with that connection, through a forced session expiry."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Browser, expect
from pydantic import SecretStr

from integrations.salesforce_connection import CALLBACK_PATH, box
from integrations.secrets import new_key
from integrations.store import connections
from tests.browser.conftest import Screen, add_account
from tests.conftest import StackWith
from tests.helpers import answered_inbound_call, jobs, settled

MANAGER = "sam@example.com"
SF_USER = "integration@example.com"
SF_PASSWORD = "emulated-password-1"


def connect_salesforce(
    screen: Screen,
    login_url: str,
    consumer_secret: str,
    *,
    before_connect: Callable[[], None] = lambda: None,
) -> None:
    """On the Connections page: My Domain, the secret, Connect, then the org's sign-in page."""
    page = screen.page
    card = page.locator("#salesforce-connection")
    card.get_by_label("My Domain", exact=True).check()
    card.get_by_label("My Domain URL").fill(login_url)
    card.get_by_label("Consumer secret").fill(consumer_secret)
    before_connect()
    card.get_by_role("button", name="Connect Salesforce").click()
    page.wait_for_url(re.compile(r"https://localhost:\d+/services/oauth2/authorize\?"))
    page.get_by_label("Username").fill(SF_USER)
    page.get_by_label("Password").fill(SF_PASSWORD)
    page.get_by_role("button", name="Log In").click()
    page.wait_for_url(screen.base_url + "/settings/connections")


def test_a_manager_connects_salesforce_and_the_worker_writes_tasks_with_it(
    stack_with: StackWith, browser: Browser
) -> None:
    # Only the consumer key in the environment: the browser's connection is the one used.
    settings = {
        "salesforce_client_secret": SecretStr(""),
        "callbridge_secret_key": SecretStr(new_key()),
    }
    with stack_with(**settings) as stack:
        add_account(stack.engine, MANAGER, "manager")
        stack.org.web_flow.add_callback(stack.app.url + CALLBACK_PATH)
        stack.org.web_flow.set_password(SF_USER, SF_PASSWORD)
        # The emulator's certificate comes from the tests' own CA, which Chromium does not know.
        context = browser.new_context(
            ignore_https_errors=True, viewport={"width": 1280, "height": 900}
        )
        try:
            screen = Screen(context.new_page(), stack.app.url)
            page = screen.page
            screen.sign_in(MANAGER)
            screen.go("/settings/connections")
            card = page.locator("#salesforce-connection")
            expect(card.locator("#salesforce-status")).to_contain_text("not connected")
            expect(card.locator("#salesforce-callback")).to_have_text(stack.app.url + CALLBACK_PATH)
            connect_salesforce(
                screen,
                stack.settings.salesforce_login_url,
                stack.org.client_secret,
                before_connect=lambda: screen.screenshot("connections_salesforce_connect"),
            )
            expect(page.locator("#salesforce-message")).to_have_text(
                f"Connected to Salesforce as {SF_USER}."
            )
            facts = page.locator("#salesforce-facts")
            expect(facts).to_contain_text(stack.org.org_id)
            expect(facts).to_contain_text(SF_USER)
            expect(facts).to_contain_text("59.0")
            expect(page.locator("#salesforce-usage")).to_contain_text("of 15,000")
            screen.screenshot("connections_salesforce_connected")
            assert screen.errors == []
        finally:
            context.close()

        agent = stack.company.add_user("Jane Agent", "jane.agent@example.com")
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call")
        assert len(stack.org.records("Task")) == 1

        def access_token() -> str:
            conn = connections.load(stack.engine, box(stack.settings), connections.SALESFORCE)
            assert conn is not None
            return conn.secret["access_token"]

        before = access_token()
        stack.org.revoke_tokens()  # the org's session timed out: only the refresh token lives
        answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550111")
        stack.sender.drain(timeout=10)
        settled(stack.engine, "log_call", count=2)

        assert len(stack.org.records("Task")) == 2
        assert [j.status for j in jobs(stack.engine) if j.status == "failed"] == []
        assert access_token() != before
        assert stack.org.check_token(access_token())
