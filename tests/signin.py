"""Accounts and signed-in HTTP clients for tests of the pages."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette

from integrations.settings import Settings
from integrations.store import accounts

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class SignedIn:
    client: httpx.Client
    csrf: str


def sign_in(base_url: str, email: str, password: str = PASSWORD) -> SignedIn:
    """A client holding ``email``'s session, and the CSRF token its pages carry."""
    client = httpx.Client(base_url=base_url, timeout=10)
    token = _CSRF.search(client.get("/signin").text)
    assert token, "the sign-in form carries a CSRF token"
    answer = client.post(
        "/signin", data={"email": email, "password": password, "csrf_token": token[1]}
    )
    assert answer.status_code == 303, answer.text
    csrf = _CSRF.search(client.get("/").text)
    assert csrf, "a signed-in page carries the CSRF token"
    return SignedIn(client, csrf[1])


@dataclass
class Site:
    """The app served on loopback (no worker, no emulators)."""

    url: str
    engine: Engine
    settings: Settings
    app: Starlette

    def user(self, email: str, role: str) -> SignedIn:
        accounts.add_user(self.engine, email, role, PASSWORD)
        return sign_in(self.url, email)
