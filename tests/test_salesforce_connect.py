"""Connecting Salesforce from the browser (the web-server flow with PKCE) over real HTTP against
the emulator: what is stored and where, what Salesforce refuses, refresh, disconnect, and jobs
that wait for a connection instead of failing."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import Session

from integrations.errors import NotConfigured, RemoteRejected
from integrations.salesforce import oauth
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Fault, Org
from integrations.salesforce_connection import (
    CALLBACK_PATH,
    NOT_CONNECTED,
    TokenSource,
    box,
)
from integrations.secrets import NO_KEY, new_key
from integrations.store import connections
from integrations.store.models import Job
from tests.conftest import Stack, StackWith
from tests.helpers import answered_inbound_call, jobs, settled
from tests.signin import PASSWORD, SignedIn, sign_in

MANAGER = "sam@example.com"
SF_USER = "integration@example.com"
SF_PASSWORD = "emulated-password-1"
KEY = new_key()
CONTINUE = re.compile(r'id="salesforce-continue"')


def browser_flow_stack(stack_with: StackWith, **extra: object):
    """The stack with no Salesforce flow in the environment (the consumer key only), so the
    connection made on the page is the one used."""
    values: dict[str, object] = {
        "salesforce_client_secret": SecretStr(""),
        "callbridge_secret_key": SecretStr(KEY),
        **extra,
    }
    return stack_with(**values)


def manager(stack: Stack) -> SignedIn:
    from integrations.store import accounts

    accounts.add_user(stack.engine, MANAGER, "manager", PASSWORD)
    return sign_in(stack.app.url, MANAGER)


def start(stack: Stack, who: SignedIn, secret: str | None = None) -> str:
    """Press Connect (as htmx does); the authorize URL the browser is sent to."""
    answer = who.client.post(
        "/settings/connections/salesforce/connect",
        data={
            "login": "my_domain",
            "my_domain": stack.settings.salesforce_login_url,
            "client_secret": stack.org.client_secret if secret is None else secret,
        },
        headers={"HX-Request": "true", "X-CSRF-Token": who.csrf},
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["HX-Redirect"]


def salesforce_sign_in(authorize: str) -> str:
    """Sign in on the emulator's page; the callback URL (with code and state) it sends back to."""
    with httpx.Client(timeout=10) as browser:
        page = browser.get(authorize)
        assert page.status_code == 200, page.text
        hidden = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', page.text))
        form = {**hidden, "username": SF_USER, "pw": SF_PASSWORD, "action": "login"}
        back = browser.post(
            f"{authorize.split('/services')[0]}/services/oauth2/authorize", data=form
        )
    assert back.status_code == 302, back.text
    return back.headers["location"]


def register(stack: Stack) -> None:
    stack.org.web_flow.add_callback(stack.app.url + CALLBACK_PATH)
    stack.org.web_flow.set_password(SF_USER, SF_PASSWORD)


def connect(stack: Stack, who: SignedIn) -> httpx.Response:
    register(stack)
    location = salesforce_sign_in(start(stack, who))
    back = who.client.get(location.removeprefix(stack.app.url))
    assert back.status_code == 303, back.text
    return who.client.get("/settings/connections")


def stored_secret(stack: Stack) -> dict:
    conn = connections.load(stack.engine, box(stack.settings), connections.SALESFORCE)
    assert conn is not None
    return conn.secret


def test_connecting_stores_the_refresh_token_sealed_and_shows_who_connected(
    stack_with: StackWith, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with browser_flow_stack(stack_with, worker=False) as stack:
        page = connect(stack, manager(stack))
        secret = stored_secret(stack)
        details = connections.details(stack.engine, connections.SALESFORCE)
        with Session(stack.engine) as s:
            rows = s.execute(text("SELECT name, sealed, details FROM connections")).all()

    assert page.status_code == 200
    assert "Connected to Salesforce as integration@example.com" in page.text
    assert stack.org.org_id in page.text
    assert "API requests today" in page.text
    assert details is not None
    assert details["org_id"] == stack.org.org_id
    assert details["user_id"] == stack.org.run_as_user_id
    assert details["username"] == SF_USER
    assert details["connected_by"] == MANAGER
    assert details["instance_url"] == stack.settings.salesforce_login_url
    refresh = secret["refresh_token"]
    assert refresh.startswith("5Aep")
    assert [r.name for r in rows] == [connections.SALESFORCE]  # the sign-in under way is gone
    for row in rows:
        assert refresh not in row.sealed
        assert refresh not in str(row.details)
        assert secret["access_token"] not in row.sealed
    if database_url.startswith("sqlite"):
        db_file = Path(database_url.removeprefix("sqlite:///"))
        for path in [db_file, *db_file.parent.glob(db_file.name + "-*")]:
            assert refresh.encode() not in path.read_bytes()
    assert refresh not in page.text
    assert secret["access_token"] not in page.text
    assert refresh not in caplog.text
    assert stack.org.client_secret not in caplog.text


def test_state_from_another_session_is_refused_and_nothing_is_stored(
    stack_with: StackWith,
) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        register(stack)
        who = manager(stack)
        location = salesforce_sign_in(start(stack, who))
        other = sign_in(stack.app.url, MANAGER)  # a second browser, its own session
        other.client.get(location.removeprefix(stack.app.url))
        page = other.client.get("/settings/connections").text
        # The session that did start it cannot replay a used code either.
        who.client.get(location.removeprefix(stack.app.url))
        again = who.client.get(location.removeprefix(stack.app.url))
        assert again.status_code == 303
        second = who.client.get("/settings/connections").text
        assert "the state does not match" in page
        assert "the state does not match" in second
        assert connections.details(stack.engine, connections.SALESFORCE) is not None


def test_a_forged_state_changes_nothing(stack_with: StackWith) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        who = manager(stack)
        start(stack, who)
        who.client.get(f"{CALLBACK_PATH}?code=abc&state=forged")
        page = who.client.get("/settings/connections").text
        assert "the state does not match" in page
        assert connections.details(stack.engine, connections.SALESFORCE) is None


def _code(org: Org, salesforce_url: str, redirect: str, verifier: str) -> str:
    org.web_flow.add_callback(redirect)
    org.web_flow.set_password(SF_USER, SF_PASSWORD)
    app = oauth.App(salesforce_url, org.client_id, org.client_secret)
    location = salesforce_sign_in(oauth.authorize_url(app, redirect, "s1", verifier))
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


@pytest.fixture
def web_app(org: Org, salesforce) -> oauth.App:
    return oauth.App(salesforce.url, org.client_id, org.client_secret)


REDIRECT = "http://127.0.0.1:9/settings/connections/salesforce/callback"


def test_wrong_verifier_reused_code_and_wrong_redirect_uri_are_refused(
    org: Org, web_app: oauth.App
) -> None:
    verifier = oauth.new_verifier()
    code = _code(org, web_app.login_url, REDIRECT, verifier)
    with pytest.raises(RemoteRejected) as wrong:
        oauth.exchange_code(web_app, code, REDIRECT, oauth.new_verifier(), 5)
    assert wrong.value.body == {
        "error": "invalid_grant",
        "error_description": "invalid code verifier",
    }
    with pytest.raises(RemoteRejected) as reused:  # the failed attempt used the code up
        oauth.exchange_code(web_app, code, REDIRECT, verifier, 5)
    assert reused.value.body["error"] == "invalid_grant"

    code = _code(org, web_app.login_url, REDIRECT, verifier)
    with pytest.raises(RemoteRejected) as moved:
        oauth.exchange_code(web_app, code, REDIRECT + "?x=1", verifier, 5)
    assert moved.value.body == {
        "error": "redirect_uri_mismatch",
        "error_description": "redirect_uri must match configuration",
    }

    code = _code(org, web_app.login_url, REDIRECT, verifier)
    grant = oauth.exchange_code(web_app, code, REDIRECT, verifier, 5)
    with pytest.raises(RemoteRejected) as twice:
        oauth.exchange_code(web_app, code, REDIRECT, verifier, 5)
    assert twice.value.body["error"] == "invalid_grant"
    who = oauth.identity(grant.identity_url, grant.access_token, 5)
    assert (who["organization_id"], who["username"]) == (org.org_id, SF_USER)

    org.web_flow.code_seconds = 0.0  # Salesforce's codes live 15 minutes
    code = _code(org, web_app.login_url, REDIRECT, verifier)
    with pytest.raises(RemoteRejected) as late:
        oauth.exchange_code(web_app, code, REDIRECT, verifier, 5)
    assert late.value.body["error_description"] == "expired authorization code"
    org.web_flow.code_seconds = 900.0

    secretless = oauth.App(web_app.login_url, org.client_id)  # "Require secret" is on
    code = _code(org, web_app.login_url, REDIRECT, verifier)
    with pytest.raises(RemoteRejected) as no_secret:
        oauth.exchange_code(secretless, code, REDIRECT, verifier, 5)
    assert no_secret.value.body["error"] == "invalid_client"


def test_authorize_refuses_unknown_apps_callbacks_and_plain_challenges(
    org: Org, web_app: oauth.App
) -> None:
    org.web_flow.add_callback(REDIRECT)
    base = f"{web_app.login_url}/services/oauth2/authorize"
    good = {
        "response_type": "code",
        "client_id": org.client_id,
        "redirect_uri": REDIRECT,
        "state": "s",
        "code_challenge": oauth.challenge(oauth.new_verifier()),
        "code_challenge_method": "S256",
    }
    with httpx.Client(timeout=5) as client:
        assert client.get(base, params=good).status_code == 200
        unknown = client.get(base, params={**good, "client_id": "nope"})
        assert (unknown.status_code, "invalid_client_id" in unknown.text) == (400, True)
        elsewhere = client.get(base, params={**good, "redirect_uri": REDIRECT + "/"})
        assert (elsewhere.status_code, "redirect_uri_mismatch" in elsewhere.text) == (400, True)
        plain = client.get(base, params={**good, "code_challenge_method": "plain"})
        assert plain.status_code == 302
        assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]
        bare = {k: v for k, v in good.items() if not k.startswith("code_challenge")}
        missing = client.get(base, params=bare)
        assert "missing+required+code+challenge" in missing.headers["location"]
        token = client.get(base, params={**good, "response_type": "token"})
        assert "unsupported_response_type" in token.headers["location"]
        wrong = client.post(
            base, data={**good, "username": SF_USER, "pw": "bad", "action": "login"}
        )
        assert wrong.status_code == 401
        assert "check your username and password" in wrong.text


def test_an_expired_session_is_refreshed_once_for_every_process(
    stack_with: StackWith, database_url: str
) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        connect(stack, manager(stack))
        first = stored_secret(stack)["access_token"]
        stack.org.revoke_tokens()  # the org's session timeout: access tokens die, refresh lives
        sources = [TokenSource(stack.settings, stack.engine) for _ in range(4)]
        clients = [SalesforceClient(stack.settings, source) for source in sources]
        found: list[object] = []

        def use(client: SalesforceClient) -> None:
            found.append(len(client.query("SELECT Id FROM Organization")))

        threads = [threading.Thread(target=use, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stored = stored_secret(stack)["access_token"]
        assert found == [1, 1, 1, 1]
        assert stored != first
        assert stack.org.check_token(stored)

        # Someone revoked Callbridge's access in Salesforce: jobs wait, saying so.
        stack.org.web_flow.revoke(stored_secret(stack)["refresh_token"])
        later = SalesforceClient(stack.settings, TokenSource(stack.settings, stack.engine))
        with pytest.raises(NotConfigured, match="connects Salesforce again"):
            later.query("SELECT Id FROM Organization")
        for c in [*clients, later]:
            c.close()


def test_disconnect_revokes_the_refresh_token_and_a_failed_revoke_still_forgets_it(
    stack_with: StackWith,
) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        who = manager(stack)
        connect(stack, who)
        assert stack.org.web_flow.live_refresh_tokens() == 1
        who.client.post(
            "/settings/connections/salesforce/disconnect", data={"csrf_token": who.csrf}
        )
        page = who.client.get("/settings/connections").text
        assert "the refresh token was revoked" in page
        assert stack.org.web_flow.live_refresh_tokens() == 0
        assert connections.details(stack.engine, connections.SALESFORCE) is None
        with pytest.raises(NotConfigured, match="not connected"):
            TokenSource(stack.settings, stack.engine)()

        connect(stack, who)
        stack.org.faults.add(Fault(path="/services/oauth2/revoke", status=503))
        who.client.post(
            "/settings/connections/salesforce/disconnect", data={"csrf_token": who.csrf}
        )
        page = who.client.get("/settings/connections").text
        assert "did not confirm the refresh token was revoked" in page
        assert connections.details(stack.engine, connections.SALESFORCE) is None


def test_connect_without_a_secret_key_is_refused_with_the_reason(stack_with: StackWith) -> None:
    with stack_with(worker=False, salesforce_client_secret=SecretStr("")) as stack:
        who = manager(stack)
        page = who.client.get("/settings/connections").text
        assert "CALLBRIDGE_SECRET_KEY is not set" in page
        answer = who.client.post(
            "/settings/connections/salesforce/connect",
            data={"login": "production", "csrf_token": who.csrf},
        )
        assert answer.status_code == 303
        page = who.client.get("/settings/connections").text
        assert NO_KEY.split(":")[0] in page
        assert connections.details(stack.engine, connections.SALESFORCE) is None


def test_connect_needs_the_manager_role_and_the_csrf_token(stack_with: StackWith) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        from integrations.store import accounts

        accounts.add_user(stack.engine, "maya@example.com", "agent", PASSWORD)
        agent = sign_in(stack.app.url, "maya@example.com")
        refused = agent.client.post(
            "/settings/connections/salesforce/connect",
            data={"login": "production", "csrf_token": agent.csrf},
        )
        assert refused.status_code == 403
        who = manager(stack)
        forged = who.client.post(
            "/settings/connections/salesforce/connect", data={"login": "production"}
        )
        assert forged.status_code == 403
        with Session(stack.engine) as s:
            assert s.execute(text("SELECT count(*) FROM connections")).scalar() == 0


def test_calls_wait_for_salesforce_without_using_attempts_then_run_once_connected(
    stack_with: StackWith, database_url: str
) -> None:
    with browser_flow_stack(stack_with) as stack:
        agent = stack.company.add_user("Jane Agent", "jane.agent@example.com")
        number = stack.company.add_number("Support line", "+1 212 555 0199")
        answered_inbound_call(stack.company, number["id"], agent["id"], "+14155550100")
        stack.sender.drain(timeout=10)

        def waiting() -> list[Job] | None:
            found = [j for j in jobs(stack.engine, "log_call") if j.error_code == "NotConfigured"]
            return found or None

        from integrations.loopback import wait_for

        (job,) = wait_for(waiting, timeout=15)
        assert job.status == "queued"
        assert job.attempts == 0
        assert job.last_error == NOT_CONNECTED
        assert stack.org.records("Task") == []

        connect(stack, manager(stack))  # wakes the waiting job at once
        (done,) = settled(stack.engine, "log_call")
        assert done.status == "done"
        (task,) = stack.org.records("Task")
        assert task["Subject"].startswith("Inbound call from")


def test_salesforce_refusals_are_explained_on_the_page(stack_with: StackWith) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        register(stack)
        who = manager(stack)
        # "Require secret for Web Server Flow" is on, and no secret was entered.
        location = salesforce_sign_in(start(stack, who, secret=""))
        who.client.get(location.removeprefix(stack.app.url))
        page = who.client.get("/settings/connections").text
        assert "Salesforce refused the sign-in: invalid client credentials" in page
        assert "Require secret for Web Server Flow" in page

        authorize = start(stack, who)
        with httpx.Client(timeout=10) as browser:
            hidden = dict(
                re.findall(r'name="([a-z_]+)" value="([^"]*)"', browser.get(authorize).text)
            )
            denied = browser.post(
                authorize.split("?")[0], data={**hidden, "action": "deny"}
            ).headers["location"]
        who.client.get(denied.removeprefix(stack.app.url))
        page = who.client.get("/settings/connections").text
        assert "end-user denied authorization" in page
        with Session(stack.engine) as s:  # neither a connection nor a sign-in under way is kept
            assert s.execute(text("SELECT count(*) FROM connections")).scalar() == 0
        assert stack.org.web_flow.live_refresh_tokens() == 0


def test_the_environments_flow_wins_and_the_page_says_so(stack_with: StackWith) -> None:
    with stack_with(worker=False, callbridge_secret_key=SecretStr(KEY)) as stack:
        who = manager(stack)
        page = who.client.get("/settings/connections").text
        assert "from the environment (client credentials flow)" in page
        assert "API requests today" in page
        assert 'id="salesforce-connect"' not in page
        answer = who.client.post(
            "/settings/connections/salesforce/connect",
            data={"login": "production", "csrf_token": who.csrf},
        )
        assert answer.status_code == 303
        assert "which wins" in who.client.get("/settings/connections").text


def test_my_domain_must_be_a_salesforce_https_address(stack_with: StackWith) -> None:
    with browser_flow_stack(stack_with, worker=False) as stack:
        who = manager(stack)
        for url in ("http://acme.my.salesforce.com", "https://evil.example.com", "not a url"):
            who.client.post(
                "/settings/connections/salesforce/connect",
                data={"login": "my_domain", "my_domain": url, "csrf_token": who.csrf},
            )
            page = who.client.get("/settings/connections").text
            assert "Enter your My Domain URL as Setup → My Domain shows it" in page
        ok = who.client.post(
            "/settings/connections/salesforce/connect",
            data={
                "login": "my_domain",
                "my_domain": "https://acme.my.salesforce.com",
                "csrf_token": who.csrf,
            },
        )
        assert ok.status_code == 200
        assert "https://acme.my.salesforce.com/services/oauth2/authorize?" in ok.text
        with Session(stack.engine) as s:
            names = s.execute(text("SELECT name FROM connections")).scalars().all()
        assert [n.startswith("sf_oauth_") for n in names] == [True]
