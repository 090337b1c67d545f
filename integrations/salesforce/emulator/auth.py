"""The OAuth endpoints: ``POST /services/oauth2/token`` (client credentials, JWT bearer,
authorization code with PKCE, refresh token), ``/services/oauth2/authorize`` (the web-server
flow's sign-in), ``POST /services/oauth2/revoke`` and the identity URL ``/id/{org}/{user}``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import jwt

from .sessions import Code

if TYPE_CHECKING:
    from .org import Org

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
MAX_EXP_AHEAD = 180 + 5  # "within 3 minutes", plus a few seconds of clock skew
CODE_GRANT = "authorization_code"
REFRESH_GRANT = "refresh_token"
SCOPES = {"api", "refresh_token", "offline_access", "id", "openid", "web", "full"}


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


def _web_client(org: Org, form: dict[str, str], authorization: str | None) -> None:
    """The web-server and refresh flows: the consumer key always, the secret when the app's
    "Require secret" is on (and checked whenever one is sent)."""
    from_header = _basic(authorization)
    client_id, secret = from_header or (form.get("client_id"), form.get("client_secret"))
    if not client_id or not _same(client_id, org.client_id):
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if (secret or org.web_flow.require_secret) and not (
        secret and _same(secret, org.client_secret)
    ):
        raise OAuthError("invalid_client", "invalid client credentials")


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _authorization_code(
    org: Org, form: dict[str, str], authorization: str | None
) -> tuple[str, str, str | None]:
    _web_client(org, form, authorization)
    value = form.get("code")
    if not value:
        raise OAuthError("invalid_request", "code is missing")
    code = org.web_flow.take_code(value)
    if code is None:
        raise OAuthError("invalid_grant", "invalid authorization code")
    if time.monotonic() > code.expires:
        raise OAuthError("invalid_grant", "expired authorization code")
    if form.get("redirect_uri") != code.redirect_uri:
        raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
    verifier = form.get("code_verifier", "")
    if code.challenge and not (verifier and _same(_challenge(verifier), code.challenge)):
        raise OAuthError("invalid_grant", "invalid code verifier")
    if not code.challenge and verifier:
        raise OAuthError("invalid_grant", "invalid code verifier")
    user = org.get("User", code.user_id)
    if user is None or not user["IsActive"]:
        raise OAuthError("invalid_grant", "inactive user")
    access, refresh = org.web_flow.issue(code.client_id, code.user_id, code.scope)
    return code.user_id, access, refresh


def _refresh(org: Org, form: dict[str, str], authorization: str | None) -> tuple[str, str]:
    _web_client(org, form, authorization)
    value = form.get("refresh_token")
    if not value:
        raise OAuthError("invalid_request", "refresh_token is missing")
    grant = org.web_flow.grant(value)
    if grant is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    user = org.get("User", grant.user_id)
    if user is None or not user["IsActive"]:
        raise OAuthError("invalid_grant", "inactive user")
    access = org.web_flow.refresh(value)
    if access is None:  # revoked meanwhile
        raise OAuthError("invalid_grant", "expired access/refresh token")
    return grant.user_id, access


def issue(org: Org, form: dict[str, str], authorization: str | None, host: str) -> dict:
    """Answer a token request or raise OAuthError. ``host`` is the request's Host header."""
    base_url = f"https://{host}"
    grant = form.get("grant_type")
    access: str | None = None
    refresh: str | None = None
    scope = "api"
    if grant == "client_credentials":
        user_id = _client_credentials(org, form, authorization, host)
    elif grant == JWT_GRANT:
        user_id = _jwt_bearer(org, form, base_url)
    elif grant == CODE_GRANT:
        user_id, access, refresh = _authorization_code(org, form, authorization)
        scope = "refresh_token api" if refresh else "api"
    elif grant == REFRESH_GRANT:
        user_id, access = _refresh(org, form, authorization)
        scope = "refresh_token api"
    elif not grant:
        raise OAuthError("invalid_request", "grant type is missing")
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    issued_at = str(int(time.time() * 1000))
    identity = f"{base_url}/id/{org.org_id}/{user_id}"
    signature = base64.b64encode(
        hmac.new(
            org.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode()
    answer = {
        "access_token": access or org.issue_token(user_id),
        "signature": signature,
        "token_format": "opaque",
        "scope": scope,
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
    if refresh:
        answer["refresh_token"] = refresh
    return answer


# -- the web-server flow's authorize step ------------------------------------------------------


class AuthorizePageError(Exception):
    """Shown on Salesforce's own page: the client or redirect_uri cannot be trusted with a
    redirect. ``query`` is the ``error=...&error_description=...`` text Salesforce shows."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.query = urlencode({"error": error, "error_description": description})


class AuthorizeRedirectError(Exception):
    """Sent back to the (registered) redirect_uri as ``?error=...&error_description=...``."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    challenge: str

    def redirect(self, **params: str) -> str:
        if self.state is not None:
            params["state"] = self.state
        joiner = "&" if "?" in self.redirect_uri else "?"
        return self.redirect_uri + joiner + urlencode(params)


def check_authorize(org: Org, params: dict[str, str]) -> AuthorizeRequest:
    """What Salesforce checks before it shows its sign-in page."""
    client_id = params.get("client_id", "")
    if not client_id or not _same(client_id, org.client_id):
        raise AuthorizePageError("invalid_client_id", "client identifier invalid")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in org.web_flow.callback_urls:  # exact match, as Salesforce
        raise AuthorizePageError("redirect_uri_mismatch", "redirect_uri must match configuration")
    scope = params.get("scope") or "api"
    request = AuthorizeRequest(
        client_id, redirect_uri, params.get("state"), scope, params.get("code_challenge", "")
    )
    if params.get("response_type") != "code":
        raise AuthorizeRedirectError(
            request.redirect(
                error="unsupported_response_type", error_description="response type not supported"
            )
        )
    if any(s not in SCOPES for s in scope.split()):
        raise AuthorizeRedirectError(
            request.redirect(
                error="invalid_scope", error_description="the requested scope is not allowed"
            )
        )
    method = params.get("code_challenge_method")
    if request.challenge or method:
        if method not in (None, "S256"):
            raise AuthorizeRedirectError(
                request.redirect(
                    error="invalid_request", error_description="invalid code challenge method"
                )
            )
        if len(request.challenge) != 43:  # base64url of a SHA-256 digest, unpadded
            raise AuthorizeRedirectError(
                request.redirect(
                    error="invalid_request", error_description="invalid code challenge"
                )
            )
    elif org.web_flow.require_pkce:
        raise AuthorizeRedirectError(
            request.redirect(
                error="invalid_request", error_description="missing required code challenge"
            )
        )
    return request


def sign_in(org: Org, request: AuthorizeRequest, username: str, password: str) -> str | None:
    """The redirect carrying a new code, or None when the username or password is wrong."""
    user = org.user_by_username(username) if username else None
    expected = org.web_flow.password_of(username) if user else None
    if user is None or expected is None or not _same(password, expected) or not user["IsActive"]:
        return None
    code = Code(
        client_id=request.client_id,
        redirect_uri=request.redirect_uri,
        challenge=request.challenge,
        user_id=user["Id"],
        scope=request.scope,
        expires=time.monotonic() + org.web_flow.code_seconds,
    )
    return request.redirect(code=org.web_flow.new_code(code))


def identity(
    org: Org, org_id: str, user_id: str, access_token: str | None, base_url: str
) -> dict | None:
    """The identity URL's document, or None (403 Bad_OAuth_Token) for a token that is not
    live or not this user's in this org."""
    holder = org.token_user(access_token) if access_token else None
    if holder is None or holder != user_id or org_id != org.org_id:
        return None
    user = org.get("User", user_id)
    if user is None:
        return None
    rest = f"{base_url}/services/data/v{{version}}/"
    return {
        "id": f"{base_url}/id/{org_id}/{user_id}",
        "asserted_user": True,
        "user_id": user_id,
        "organization_id": org_id,
        "username": user["Username"],
        "nick_name": user["Alias"],
        "display_name": user["Name"],
        "email": user["Email"],
        "email_verified": True,
        "first_name": user["FirstName"],
        "last_name": user["LastName"],
        "timezone": user["TimeZoneSidKey"],
        "active": user["IsActive"],
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": -28800000,
        "last_modified_date": user["LastModifiedDate"],
        "urls": {
            "rest": rest,
            "sobjects": rest + "sobjects/",
            "search": rest + "search/",
            "query": rest + "query/",
            "custom_domain": base_url,
        },
    }
