"""The OAuth 2.0 web-server flow with PKCE, as Callbridge's Connections page runs it: the
authorize URL, the code exchange, the refresh-token grant, the identity URL and revocation.

Only HTTP and the wire format live here; where the tokens are kept is
``integrations.salesforce_connection``'s business.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from integrations.errors import RemoteRejected, RemoteUnavailable
from integrations.salesforce.auth import token_request

SCOPES = "api refresh_token"
SCOPE_MISSING = (
    "Salesforce gave no refresh token: in Setup, the External Client App's OAuth scopes must "
    'include "Perform requests at any time (refresh_token, offline_access)"'
)


@dataclass(frozen=True)
class App:
    """The External Client App as Callbridge uses it: where to log in, its consumer key and
    (when "Require secret" is on) its consumer secret."""

    login_url: str
    client_id: str
    client_secret: str = ""

    def __repr__(self) -> str:  # the secret never shows
        return f"App(login_url={self.login_url!r}, client_id={self.client_id!r})"

    def client_form(self) -> dict[str, str]:
        form = {"client_id": self.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form


@dataclass(frozen=True)
class Grant:
    """What the code exchange returns."""

    access_token: str
    refresh_token: str
    instance_url: str
    identity_url: str

    def __repr__(self) -> str:
        return f"Grant(instance_url={self.instance_url!r})"


def new_verifier() -> str:
    """A PKCE code_verifier: 86 characters of the unreserved set (43 to 128 allowed)."""
    return secrets.token_urlsafe(64)


def challenge(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(app: App, redirect_uri: str, state: str, verifier: str) -> str:
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    return app.login_url.rstrip("/") + "/services/oauth2/authorize?" + urlencode(query)


def exchange_code(app: App, code: str, redirect_uri: str, verifier: str, timeout: float) -> Grant:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **app.client_form(),
    }
    body = token_request(app.login_url, form, timeout)
    if not body.get("refresh_token"):
        # The app's OAuth scopes lack "Perform requests at any time (refresh_token,
        # offline_access)": without it Callbridge could not keep working.
        raise RemoteRejected("salesforce", 200, {"error": "no_refresh_token"}, SCOPE_MISSING)
    return Grant(body["access_token"], body["refresh_token"], body["instance_url"], body["id"])


def refresh(app: App, refresh_token: str, timeout: float) -> dict[str, Any]:
    """A new access token (and, with refresh token rotation on, a new refresh token)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **app.client_form()}
    return token_request(app.login_url, form, timeout)


def identity(identity_url: str, access_token: str, timeout: float) -> dict[str, Any]:
    """The identity URL's document: who connected, in which org."""
    try:
        response = httpx.get(
            identity_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise RemoteUnavailable("salesforce", None, str(exc), "identity URL unreachable") from exc
    if response.status_code >= 500:
        raise RemoteUnavailable("salesforce", response.status_code, response.text[:2000])
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "user_id" not in body:
        raise RemoteRejected("salesforce", response.status_code, response.text[:2000])
    return body


def revoke(login_url: str, token: str, timeout: float) -> None:
    """Revoke a refresh token (and the access tokens issued from it)."""
    url = login_url.rstrip("/") + "/services/oauth2/revoke"
    try:
        response = httpx.post(url, data={"token": token}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RemoteUnavailable(
            "salesforce", None, str(exc), "revoke endpoint unreachable"
        ) from exc
    if response.status_code != 200:
        try:
            body: object = response.json()
        except ValueError:
            body = response.text[:2000]
        error = RemoteUnavailable if response.status_code >= 500 else RemoteRejected
        raise error("salesforce", response.status_code, body)
