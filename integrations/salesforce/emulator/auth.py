"""``POST /services/oauth2/token``: client credentials (body or Basic) and the JWT bearer flow."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from .org import Org

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
MAX_EXP_AHEAD = 180 + 5  # "within 3 minutes", plus a few seconds of clock skew


class OAuthError(Exception):
    """A token failure: always 400 with ``{"error","error_description"}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.body = {"error": error, "error_description": description}


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "invalid client credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "invalid client credentials")
    return client_id, secret


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _client_credentials(
    org: Org, form: dict[str, str], authorization: str | None, host: str
) -> str:
    if host.split(":")[0].lower() in LOGIN_HOSTS:
        raise OAuthError("invalid_grant", "request not supported on this domain")
    from_header = _basic(authorization)
    from_body = (form.get("client_id"), form.get("client_secret"))
    if from_header and any(from_body) and from_body != from_header:
        raise OAuthError("invalid_client", "invalid client credentials")
    client_id, secret = from_header or from_body
    if not client_id or not _same(client_id, org.client_id):
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not secret or not _same(secret, org.client_secret):
        raise OAuthError("invalid_client", "invalid client credentials")
    return org.run_as_user_id


def _jwt_bearer(org: Org, form: dict[str, str], base_url: str) -> str:
    if org.jwt_public_key_pem is None:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    assertion = form.get("assertion")
    if not assertion:
        raise OAuthError("invalid_request", "assertion is missing")
    try:
        claims = jwt.decode(
            assertion,
            org.jwt_public_key_pem,
            algorithms=["RS256"],
            options={
                "verify_exp": False,  # checked below: Salesforce takes exp as a numeric string too
                "verify_aud": False,
                "verify_iss": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if claims.get("iss") != org.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    audiences = claims.get("aud")
    allowed = {f"https://{h}" for h in LOGIN_HOSTS} | {base_url}
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or not any(a in allowed for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    exp = claims.get("exp")
    if isinstance(exp, str):
        try:
            exp = float(exp)
        except ValueError:
            exp = None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise OAuthError("invalid_grant", "invalid assertion")
    now = time.time()
    if exp <= now:
        raise OAuthError("invalid_grant", "expired authorization code")
    if exp > now + MAX_EXP_AHEAD:
        raise OAuthError("invalid_grant", "invalid assertion")
    subject = claims.get("sub")
    if not isinstance(subject, str) or subject.lower() != org.jwt_username.lower():
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    user = org.user_by_username(subject)
    if user is None:  # a pre-authorised username that is not seeded: act as the run-as user
        return org.run_as_user_id
    if not user["IsActive"]:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return user["Id"]


def issue(org: Org, form: dict[str, str], authorization: str | None, host: str) -> dict:
    """Answer a token request or raise OAuthError. ``host`` is the request's Host header."""
    base_url = f"https://{host}"
    grant = form.get("grant_type")
    if grant == "client_credentials":
        user_id = _client_credentials(org, form, authorization, host)
    elif grant == JWT_GRANT:
        user_id = _jwt_bearer(org, form, base_url)
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    issued_at = str(int(time.time() * 1000))
    identity = f"{base_url}/id/{org.org_id}/{user_id}"
    signature = base64.b64encode(
        hmac.new(
            org.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode()
    return {
        "access_token": org.issue_token(user_id),
        "signature": signature,
        "token_format": "opaque",
        "scope": "api",
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
