"""Sessions kept on the server (issue 14, item 4): signing out, a new password and a manager's
"sign out everywhere" end a session at once, including every copy of its cookie."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import Session, select

from integrations.store import accounts
from integrations.store.accounts import BrowserSession
from tests.signin import PASSWORD, SignedIn, Site, sign_in
from web.cli import main
from web.security import COOKIE

MANAGER, AGENT = "sam@example.com", "jane.agent@example.com"


def copy_of(signed: SignedIn) -> httpx.Client:
    """Another client holding the same cookie, as an attacker who copied it would."""
    client = httpx.Client(base_url=str(signed.client.base_url), timeout=10)
    client.cookies.set(COOKIE, signed.client.cookies[COOKIE])
    return client


def refused(client: httpx.Client, csrf: str) -> None:
    """Neither a page nor a state change with the old CSRF token gets through."""
    page = client.get("/review")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin")
    change = client.post("/review/resync", data={"csrf_token": csrf})
    assert change.status_code == 401
    htmx = client.post("/review/resync", headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert htmx.status_code == 401


def test_a_copied_cookie_stops_working_once_its_session_signs_out(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    stolen = copy_of(manager)
    assert stolen.get("/review").status_code == 200  # the copy works while the session lives
    assert manager.client.post("/signout", data={"csrf_token": manager.csrf}).status_code == 303
    refused(stolen, manager.csrf)
    with Session(site.engine) as s:
        assert s.exec(select(func.count()).select_from(BrowserSession)).one() == 0


def test_signing_out_one_browser_leaves_the_others_signed_in(site: Site) -> None:
    site.user(MANAGER, "manager")
    laptop, phone = sign_in(site.url, MANAGER), sign_in(site.url, MANAGER)
    laptop.client.post("/signout", data={"csrf_token": laptop.csrf})
    assert phone.client.get("/review").status_code == 200


def test_a_manager_signs_a_user_out_everywhere(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    agent = site.user(AGENT, "agent")
    second = sign_in(site.url, AGENT)
    stolen = copy_of(agent)
    refused_without_token = manager.client.post("/settings/users/signout", data={"email": AGENT})
    assert refused_without_token.status_code == 403  # CSRF-protected like every change
    assert agent.client.get("/").status_code == 200
    answer = manager.client.post(
        "/settings/users/signout", data={"csrf_token": manager.csrf, "email": AGENT}
    )
    assert answer.status_code == 303
    page = manager.client.get(answer.headers["location"]).text
    assert f"Signed {AGENT} out everywhere (2 sessions ended)" in page
    for client in (agent.client, second.client, stolen):
        assert client.get("/").status_code == 303
    assert manager.client.get("/review").status_code == 200


def test_an_agent_cannot_sign_others_out(site: Site) -> None:
    manager = site.user(MANAGER, "manager")
    agent = site.user(AGENT, "agent")
    answer = agent.client.post(
        "/settings/users/signout", data={"csrf_token": agent.csrf, "email": MANAGER}
    )
    assert answer.status_code == 403
    assert manager.client.get("/review").status_code == 200


def test_a_new_password_ends_every_session(
    site: Site, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = site.user(MANAGER, "manager")
    stolen = copy_of(manager)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CALLBRIDGE_PASSWORD", "a brand new passphrase")
    result = CliRunner().invoke(main, ["user", "password", MANAGER])
    assert result.exit_code == 0, result.output
    refused(stolen, manager.csrf)
    assert manager.client.get("/").status_code == 303
    assert accounts.authenticate(site.engine, MANAGER, PASSWORD) is None
    assert sign_in(site.url, MANAGER, "a brand new passphrase").client.get("/").status_code == 200


def test_the_cli_signs_a_user_out_everywhere(
    site: Site, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = site.user(AGENT, "agent")
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["user", "signout", AGENT])
    assert result.exit_code == 0, result.output
    assert "1 session ended" in result.output
    assert agent.client.get("/").status_code == 303
    unknown = CliRunner().invoke(main, ["user", "signout", "nobody@example.com"])
    assert unknown.exit_code != 0
    assert "no user with the email nobody@example.com" in unknown.output


def test_an_expired_session_is_refused_by_the_server(site: Site) -> None:
    agent = site.user(AGENT, "agent")
    with Session(site.engine) as s:
        for row in s.exec(select(BrowserSession)):
            row.created_at -= site.settings.session_max_age_seconds + 1
            s.add(row)
        s.commit()
    assert agent.client.get("/").status_code == 303
