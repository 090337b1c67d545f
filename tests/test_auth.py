"""Accounts, sessions, CSRF and roles, against the app served on loopback."""

from __future__ import annotations

import asyncio
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import websockets
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import Engine, update
from sqlmodel import Session, select
from starlette.routing import Route

from integrations.aircall.events import parse
from integrations.errors import BadInput
from integrations.loopback import serve
from integrations.settings import Settings
from integrations.store import accounts
from integrations.store.accounts import SignInAttempt, User
from integrations.sync.intake import deliveries
from tests.conftest import WEBHOOK_TOKEN
from tests.helpers import envelope
from tests.signin import PASSWORD, Site, sign_in
from web.app import create_app
from web.cli import main

CSRF_MESSAGE = "did not come from this site"


def store_call(engine: Engine, call_id: int, agent_email: str, status: str = "done") -> None:
    """A call as a webhook would have stored it."""
    data = {
        "id": call_id,
        "direction": "inbound",
        "status": status,
        "started_at": 1_764_000_000 + call_id,
        "duration": 42,
        "raw_digits": "+1 415-555-0100",
        "user": {"id": 1, "name": agent_email.split("@")[0], "email": agent_email},
        "tags": [],
    }
    name = "call.ended" if status == "done" else "call.created"
    event = parse(envelope(name, data, WEBHOOK_TOKEN, timestamp=1), [SecretStr(WEBHOOK_TOKEN)])
    deliveries.accept(engine, event)


def test_user_add_creates_an_account_that_can_sign_in(
    site: Site, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CALLBRIDGE_PASSWORD", PASSWORD)
    result = CliRunner().invoke(main, ["user", "add", "Maya@Example.com", "--role", "agent"])
    assert result.exit_code == 0, result.output
    assert "added agent maya@example.com" in result.output
    with Session(site.engine) as s:
        user = s.exec(select(User)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    signed = sign_in(site.url, "maya@example.com")
    assert "maya@example.com" in signed.client.get("/").text


def test_user_add_without_a_terminal_needs_the_password_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("CALLBRIDGE_PASSWORD", raising=False)
    result = CliRunner().invoke(main, ["user", "add", "sam@example.com", "--role", "manager"])
    assert result.exit_code != 0
    assert "CALLBRIDGE_PASSWORD" in result.output


def test_user_add_refuses_a_second_account_and_bad_input(engine: Engine) -> None:
    accounts.add_user(engine, "sam@example.com", "manager", PASSWORD)
    with pytest.raises(BadInput, match="already exists"):
        accounts.add_user(engine, "SAM@example.com", "agent", PASSWORD)
    with pytest.raises(BadInput, match="at least"):
        accounts.add_user(engine, "leo@example.com", "agent", "short")
    with pytest.raises(BadInput, match="role"):
        accounts.add_user(engine, "leo@example.com", "admin", PASSWORD)
    with pytest.raises(BadInput, match="email"):
        accounts.add_user(engine, "not an email", "agent", PASSWORD)


def test_pages_send_the_signed_out_to_the_sign_in_form(site: Site) -> None:
    answer = httpx.get(f"{site.url}/review?status=failed")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Freview%3Fstatus%3Dfailed"
    form = httpx.get(f"{site.url}/signin").text
    assert '<label for="email">Email</label>' in form
    assert '<label for="password">Password</label>' in form
    assert ">Sign in</button>" in form


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    client = httpx.Client(base_url=site.url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)[1]
    answers = [
        client.post("/signin", data={"email": email, "password": password, "csrf_token": token})
        for email, password in [("sam@example.com", "wrong password!"), ("x@example.com", "x")]
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert all("Email or password is incorrect." in a.text for a in answers)
    assert client.get("/").status_code == 303


def _attempt(client: httpx.Client, email: str, password: str) -> httpx.Response:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)[1]
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": token})


def _window_passes(site: Site) -> None:
    """Every recorded attempt becomes as old as the window: the clock moves, no one waits."""
    with Session(site.engine) as s:
        window = site.settings.sign_in_failure_window_seconds
        s.exec(update(SignInAttempt).values(at=SignInAttempt.at - window))
        s.commit()


def test_five_failures_lock_the_email_even_for_the_right_password(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    client = httpx.Client(base_url=site.url)
    wrong = [_attempt(client, "sam@example.com", "wrong password!") for _ in range(5)]
    assert [a.status_code for a in wrong] == [400] * 5
    locked = _attempt(client, "sam@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert "Try again in 15 minutes." in locked.text
    assert 890 <= int(locked.headers["retry-after"]) <= 900
    assert client.get("/").status_code == 303  # not signed in
    maya = site.user("maya@example.com", "agent")  # another account, same address: unaffected
    assert "maya@example.com" in maya.client.get("/").text
    _window_passes(site)
    assert _attempt(client, "sam@example.com", PASSWORD).status_code == 303
    assert "sam@example.com" in client.get("/").text


def test_an_email_without_an_account_is_locked_the_same_way(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    client = httpx.Client(base_url=site.url)
    answers = {
        email: [_attempt(client, email, "wrong password!") for _ in range(6)]
        for email in ("sam@example.com", "nobody@example.com")
    }
    codes = {email: [a.status_code for a in found] for email, found in answers.items()}
    assert codes["sam@example.com"] == codes["nobody@example.com"] == [400] * 5 + [429]
    texts = {found[-1].text.replace("nobody@", "sam@") for found in answers.values()}
    assert len(texts) == 1  # the same page, but for the email typed


def test_a_successful_sign_in_clears_the_emails_failures(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    client = httpx.Client(base_url=site.url)
    for _ in range(4):
        assert _attempt(client, "sam@example.com", "wrong password!").status_code == 400
    assert _attempt(httpx.Client(base_url=site.url), "sam@example.com", PASSWORD).status_code == 303
    for _ in range(5):
        assert _attempt(client, "sam@example.com", "wrong password!").status_code == 400
    assert _attempt(client, "sam@example.com", PASSWORD).status_code == 429


def test_failures_from_one_address_lock_it_for_every_email(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site.settings, "sign_in_failures_per_ip", 3)
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    client = httpx.Client(base_url=site.url)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        assert _attempt(client, email, "wrong password!").status_code == 400
    assert _attempt(client, "sam@example.com", PASSWORD).status_code == 429
    _window_passes(site)
    assert _attempt(client, "sam@example.com", PASSWORD).status_code == 303


def test_parallel_guesses_get_no_more_tries_than_sequential_ones(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    clients = [httpx.Client(base_url=site.url, timeout=30) for _ in range(12)]
    tokens = [
        re.search(r'name="csrf_token" value="([^"]+)"', c.get("/signin").text)[1] for c in clients
    ]

    def guess(index: int) -> int:
        data = {
            "email": "sam@example.com",
            "password": f"guess {index}",
            "csrf_token": tokens[index],
        }
        return clients[index].post("/signin", data=data).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        codes = sorted(pool.map(guess, range(len(clients))))
    assert codes.count(400) + codes.count(429) == len(clients)
    assert codes.count(400) <= 5  # each guess is counted before its password is checked
    with Session(site.engine) as s:  # a refused guess is not kept as a failure
        assert len(s.exec(select(SignInAttempt)).all()) == codes.count(400)


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(site: Site) -> None:
    accounts.add_user(site.engine, "sam@example.com", "manager", PASSWORD)
    for target, expected in [("/review?page=2", "/review?page=2"), ("//evil.example", "/")]:
        client = httpx.Client(base_url=site.url)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)[1]
        answer = client.post(
            "/signin",
            data={
                "email": "sam@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert answer.headers["location"] == expected


def test_session_cookie_is_httponly_samesite_lax_and_secure_when_asked(
    engine: Engine, database_url: str
) -> None:
    for secure in (None, True):
        settings = Settings(_env_file=None, database_url=database_url, session_cookie_secure=secure)
        with serve(create_app(settings, engine=engine, worker=False)) as app:
            cookie = httpx.get(f"{app.url}/signin").headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert ("secure" in cookie) is bool(secure)  # plain http: Secure only when forced


def test_session_cookie_is_secure_when_served_over_https(
    engine: Engine, database_url: str, tls: tuple[str, str, str]
) -> None:
    ca, cert, key = tls
    settings = Settings(_env_file=None, database_url=database_url)
    app = create_app(settings, engine=engine, worker=False)
    with serve(app, ssl_certfile=cert, ssl_keyfile=key, url_host="localhost") as running:
        trust = ssl.create_default_context(cafile=ca)
        cookie = httpx.get(f"{running.url}/signin", verify=trust).headers["set-cookie"].lower()
    assert "; secure" in cookie


def test_state_changing_requests_without_the_csrf_token_are_refused(site: Site) -> None:
    manager = site.user("sam@example.com", "manager")
    store_call(site.engine, 7, "maya@example.com")
    for path in ["/calls/7/resync", "/review/resync", "/signout"]:
        answer = manager.client.post(path, data={"csrf_token": "forged"})
        assert answer.status_code == 403, path
        assert CSRF_MESSAGE in answer.text
    fresh = httpx.Client(base_url=site.url)
    fresh.get("/signin")
    answer = fresh.post("/signin", data={"email": "sam@example.com", "password": PASSWORD})
    assert answer.status_code == 403


def test_every_state_changing_route_checks_the_csrf_token(site: Site) -> None:
    """A route added later without the guard fails here."""
    manager = site.user("sam@example.com", "manager")
    store_call(site.engine, 7, "maya@example.com")
    app = create_app(site.settings, engine=site.engine, worker=False)
    posts = [
        re.sub(r"\{\w+\}", "x", re.sub(r"\{\w+:int\}", "7", r.path))
        for r in app.routes
        if isinstance(r, Route)
        and "POST" in (r.methods or ())
        and not r.path.startswith("/webhooks/")  # token-authenticated, outside the sign-in
    ]
    assert len(posts) >= 4
    for path in posts:
        assert manager.client.post(path).status_code == 403, path


def test_htmx_requests_carry_the_token_in_a_header(site: Site) -> None:
    manager = site.user("sam@example.com", "manager")
    store_call(site.engine, 7, "maya@example.com")
    page = manager.client.get("/review").text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{manager.csrf}"}}\'' in page
    answer = manager.client.post(
        "/calls/7/resync", headers={"X-CSRF-Token": manager.csrf, "HX-Request": "true"}
    )
    assert answer.status_code == 200


def test_an_agent_cannot_use_manager_routes(site: Site) -> None:
    agent = site.user("maya@example.com", "agent")
    assert agent.client.get("/review").status_code == 403
    assert agent.client.get("/charts").status_code == 403
    answer = agent.client.post("/review/resync", data={"csrf_token": agent.csrf})
    assert answer.status_code == 403
    assert "manager role" in answer.text


def test_an_agent_sees_and_resyncs_only_their_own_calls(site: Site) -> None:
    store_call(site.engine, 7, "maya@example.com")
    store_call(site.engine, 8, "leo@example.com")
    agent = site.user("maya@example.com", "agent")
    assert agent.client.get("/calls/7").status_code == 200
    assert agent.client.get("/calls/8").status_code == 403
    other = agent.client.post("/calls/8/resync", data={"csrf_token": agent.csrf})
    assert other.status_code == 403
    own = agent.client.post("/calls/7/resync", data={"csrf_token": agent.csrf})
    assert own.status_code == 303
    dashboard = agent.client.get("/").text
    assert 'id="call-7"' in dashboard
    assert 'id="call-8"' not in dashboard


def test_signing_out_ends_the_session(site: Site) -> None:
    manager = site.user("sam@example.com", "manager")
    answer = manager.client.post("/signout", data={"csrf_token": manager.csrf})
    assert answer.status_code == 303
    assert manager.client.get("/").status_code == 303


def test_pages_forbid_inline_and_third_party_script(site: Site) -> None:
    headers = httpx.get(f"{site.url}/signin").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_the_live_socket_wants_a_session_and_our_origin(site: Site) -> None:
    manager = site.user("sam@example.com", "manager")
    url = site.url.replace("http://", "ws://") + "/live"
    cookie = "; ".join(f"{c.name}={c.value}" for c in manager.client.cookies.jar)

    async def handshake(headers: dict[str, str], origin: str) -> str:
        try:
            async with websockets.connect(url, additional_headers=headers, origin=origin) as socket:
                return await asyncio.wait_for(socket.recv(), 5)
        except websockets.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"

    own = site.url
    assert asyncio.run(handshake({}, own)) == "refused 403"
    assert asyncio.run(handshake({"Cookie": cookie}, "http://evil.example")) == "refused 403"
    assert 'id="live-calls"' in asyncio.run(handshake({"Cookie": cookie}, own))


def test_the_session_key_is_made_once_and_shared(engine: Engine) -> None:
    first = accounts.session_secret(engine, "")
    assert len(first) >= 32
    assert accounts.session_secret(engine, "") == first
    assert accounts.session_secret(engine, "x" * 40) == "x" * 40


def test_a_short_session_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(_env_file=None, session_secret="short")


def test_templates_are_found_from_a_source_checkout() -> None:
    from web.templating import STATIC, TEMPLATES

    assert (TEMPLATES / "base.html").is_file()
    assert (STATIC / "app.js").is_file()
    assert Path(TEMPLATES).parent == Path(STATIC).parent


def test_the_accounts_migration_goes_down_and_up_again(engine: Engine) -> None:
    from alembic import command

    from integrations.store import db

    accounts.add_user(engine, "sam@example.com", "manager", PASSWORD)
    command.downgrade(db._alembic_config(engine), "0001")
    with engine.connect() as connection:
        assert not engine.dialect.has_table(connection, "users")
        assert not engine.dialect.has_table(connection, "sign_in_attempts")
    db.migrate(engine)
    assert accounts.count_users(engine) == 0
