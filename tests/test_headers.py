"""Response headers and body limits (issue 14, item 6): HSTS over https, the security headers on
500s too, and a sign-in body refused before it is parsed."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.applications import Starlette

from integrations.loopback import serve
from integrations.settings import Settings
from integrations.sync.review import browse
from tests.conftest import WEBHOOK_TOKEN
from tests.signin import Site
from web.app import create_app
from web.security import COOKIE

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _app(engine: Engine, database_url: str, **extra: object) -> Starlette:
    config = Settings(
        _env_file=None,
        database_url=database_url,
        aircall_webhook_tokens=[SecretStr(WEBHOOK_TOKEN)],
        **extra,
    )
    return create_app(config, engine=engine, worker=False)


def test_no_hsts_over_plain_http(site: Site) -> None:
    assert "strict-transport-security" not in httpx.get(f"{site.url}/signin").headers


def test_hsts_and_a_secure_cookie_when_the_public_url_is_https(
    engine: Engine, database_url: str
) -> None:
    app = _app(engine, database_url, public_url="https://callbridge.example.com")
    with serve(app) as running:  # plain http on loopback: TLS ends at the proxy
        answer = httpx.get(f"{running.url}/signin")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in answer.headers["set-cookie"].lower()


def test_hsts_when_served_over_https(
    engine: Engine, database_url: str, tls: tuple[str, str, str]
) -> None:
    ca, cert, key = tls
    app = _app(engine, database_url)
    with serve(app, ssl_certfile=cert, ssl_keyfile=key, url_host="localhost") as running:
        answer = httpx.get(f"{running.url}/healthz", verify=ssl.create_default_context(cafile=ca))
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


@pytest.fixture
def broken_review(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(browse, "list_calls", boom)


@pytest.mark.usefixtures("broken_review")
def test_a_500_carries_the_security_headers(engine: Engine, database_url: str) -> None:
    from integrations.store import accounts
    from tests.signin import PASSWORD, sign_in

    accounts.add_user(engine, "sam@example.com", "manager", PASSWORD)
    with serve(_app(engine, database_url)) as running:
        manager = sign_in(running.url, "sam@example.com")
        answer = manager.client.get("/review")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


def _signin_token(client: httpx.Client) -> str:
    found = _CSRF.search(client.get("/signin").text)
    assert found
    return found[1]


def test_a_sign_in_body_over_64_kib_is_refused_before_it_is_read(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        token = _signin_token(client)
        big = {"csrf_token": token, "email": "a@example.com", "password": "x" * (65 * 1024)}
        declared = client.post("/signin", data=big)
        assert declared.status_code == 413
        assert declared.text == "body larger than 64 KiB"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield f"csrf_token={token}&email=a%40example.com&password=".encode()
            for _ in range(200):
                yield b"x" * 1024

        streamed = client.post(
            "/signin",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert streamed.status_code == 413
        assert COOKIE not in streamed.headers.get("set-cookie", "")
        small = client.post("/signin", data={**big, "password": "x" * 100})
        assert small.status_code == 400  # read, checked, and simply the wrong password


def test_a_sign_in_without_the_csrf_token_is_still_refused(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        client.get("/signin")
        answer = client.post("/signin", data={"email": "a@example.com", "password": "x" * 12})
    assert answer.status_code == 403


def test_the_webhook_receiver_answers_ahead_of_the_middleware_with_the_same_headers(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served before sessions and error pages (``web.app.Callbridge``), it still sends the
    security headers and no cookie; other methods get the 405 of the routes; a failed store is
    a 500 without details (Aircall sends the delivery again)."""
    from integrations.sync.intake import deliveries

    app = _app(engine, database_url, public_url="https://callbridge.example.com")
    with serve(app) as running, httpx.Client(base_url=running.url) as client:
        refused = client.post("/webhooks/aircall", content=b'{"token": "x"}')
        assert refused.status_code == 401
        assert refused.json() == {"error": "unknown webhook token"}
        assert "script-src 'self'" in refused.headers["content-security-policy"]
        assert refused.headers["strict-transport-security"] == "max-age=31536000"
        assert "set-cookie" not in refused.headers
        assert client.get("/webhooks/aircall").status_code == 405

        def broken(*_args: object, **_kwargs: object) -> list[bool]:
            raise RuntimeError("disk full")

        monkeypatch.setattr(deliveries, "accept_many", broken)
        body = (
            '{"resource": "call", "event": "call.created", "timestamp": 1700000000, '
            f'"token": "{WEBHOOK_TOKEN}", "data": {{"id": 1, "direction": "inbound", '
            '"status": "initial"}}'
        )
        failed = client.post("/webhooks/aircall", content=body)
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal error"}
    assert "script-src 'self'" in failed.headers["content-security-policy"]
