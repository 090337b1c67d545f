"""Access tokens for the Salesforce data API, fetched by us from ``SALESFORCE_LOGIN_URL``.

simple-salesforce's own login helpers only know ``*.salesforce.com`` hosts, so we fetch the
token (client-credentials or JWT bearer flow) and hand it to the library in session mode.
Neither flow returns a refresh token or an expiry: on ``INVALID_SESSION_ID`` we fetch again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from integrations.errors import RemoteRejected, RemoteUnavailable
from integrations.settings import Settings


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str

    def __repr__(self) -> str:  # never print the token itself
        return f"Token(instance_url={self.instance_url!r})"


def _jwt_audience(login_url: str) -> str:
    if "test.salesforce.com" in login_url or ".sandbox.my.salesforce.com" in login_url:
        return "https://test.salesforce.com"
    return "https://login.salesforce.com"


def _form(settings: Settings) -> dict[str, str]:
    if settings.salesforce_auth_flow == "jwt":
        assert settings.salesforce_private_key_file is not None  # noqa: S101  (checked by flow)
        claims = {
            "iss": settings.salesforce_client_id,
            "sub": settings.salesforce_username,
            "aud": _jwt_audience(settings.salesforce_login_url),
            "exp": int(time.time()) + 180,
        }
        key = settings.salesforce_private_key_file.read_bytes()
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(claims, key, algorithm="RS256"),
        }
    return {
        "grant_type": "client_credentials",
        "client_id": settings.salesforce_client_id,
        "client_secret": settings.salesforce_client_secret.get_secret_value(),
    }


def fetch_token(settings: Settings) -> Token:
    """POST the configured flow to the org's token endpoint (trusting ``SSL_CERT_FILE``)."""
    body = token_request(
        settings.salesforce_login_url, _form(settings), settings.salesforce_timeout_seconds
    )
    return Token(access_token=body["access_token"], instance_url=body["instance_url"])


def token_request(login_url: str, form: dict[str, str], timeout: float) -> dict[str, Any]:
    """POST ``form`` to ``{login_url}/services/oauth2/token``: the answer's JSON, or our error
    tree (``RemoteRejected`` with Salesforce's ``{"error","error_description"}`` verbatim)."""
    url = login_url.rstrip("/") + "/services/oauth2/token"
    try:
        response = httpx.post(
            url, data=form, headers={"Accept": "application/json"}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise RemoteUnavailable("salesforce", None, str(exc), "token endpoint unreachable") from exc
    try:
        body = response.json()
    except ValueError:
        body = response.text[:2000]
    if response.status_code >= 500:
        raise RemoteUnavailable("salesforce", response.status_code, body)
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        # {"error","error_description"}: wrong credentials or app set-up; retrying cannot help.
        raise RemoteRejected("salesforce", response.status_code, body)
    return body
