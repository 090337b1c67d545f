"""Where Salesforce access tokens come from: the environment's flow when it is set up, else the
connection a manager made in the browser (the web-server flow, ``salesforce.oauth``), kept
sealed in the store.

It joins the store, the secret box and the OAuth calls, so it sits beside them rather than in
``integrations/salesforce/`` (which knows nothing of the store). Several processes share one
stored connection; each refresh is written only over the value it replaced (compare and set
on the sealed text), so two processes refreshing at once both end up with a working token and
neither overwrites a newer one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, update
from sqlmodel import Session

from integrations.errors import BadInput, NotConfigured, RemoteError, RemoteRejected
from integrations.salesforce import oauth
from integrations.salesforce.auth import Token, fetch_token
from integrations.secrets import SecretBox
from integrations.settings import Settings
from integrations.store import connections
from integrations.store.connections import SALESFORCE, StoredConnection
from integrations.store.models import Job

log = logging.getLogger(__name__)

NOT_CONNECTED = "Salesforce is not connected: a manager connects it on Automations → Connections"
REFUSED = (
    "Salesforce refused the stored connection ({reason}): the refresh token was revoked or the "
    "app's access removed; a manager connects Salesforce again on Automations → Connections"
)
EXPIRED_SIGN_IN = "This Salesforce sign-in has expired or was already used: press Connect again"
CALLBACK_PATH = "/settings/connections/salesforce/callback"
PENDING_PREFIX = "sf_oauth_"  # one row per sign-in under way, named by a hash of its state
PENDING_SECONDS = 600.0
WAITING_CODE = NotConfigured.__name__  # the error code the worker gives jobs that wait for it


def env_flow(settings: Settings) -> str | None:
    """``client_credentials`` or ``jwt`` when the environment holds a complete flow: it wins
    over a stored connection. A consumer key alone is the browser flow's app."""
    if not settings.salesforce_client_id:
        return None
    if settings.salesforce_auth_flow == "jwt":
        return "jwt"
    if settings.salesforce_client_secret.get_secret_value():
        return "client_credentials"
    return None


def box(settings: Settings) -> SecretBox:
    """The secret box; NotConfigured (``secrets.NO_KEY``) without CALLBRIDGE_SECRET_KEY."""
    return SecretBox(settings.callbridge_secret_key.get_secret_value())


def available(settings: Settings, engine: Engine) -> bool:
    """Whether Salesforce can be called at all (the environment's flow or a stored connection)."""
    return env_flow(settings) is not None or connections.details(engine, SALESFORCE) is not None


# -- connecting from the browser -----------------------------------------------------------


def _pending_name(state: str) -> str:
    return PENDING_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:24]


def start(
    settings: Settings, engine: Engine, app: oauth.App, redirect_uri: str, by: str
) -> tuple[str, str]:
    """Begin a sign-in: the state (for the browser session) and the authorize URL. The PKCE
    verifier and the consumer secret stay here, sealed, until the callback."""
    sealer = box(settings)
    with Session(engine) as s:  # sign-ins abandoned long ago
        s.execute(
            delete(StoredConnection).where(
                StoredConnection.name.startswith(PENDING_PREFIX),  # type: ignore[attr-defined]
                StoredConnection.updated_at < time.time() - PENDING_SECONDS,
            )
        )
        s.commit()
    state, verifier = secrets.token_urlsafe(32), oauth.new_verifier()
    secret = {"code_verifier": verifier, "client_secret": app.client_secret}
    details = {"login_url": app.login_url, "client_id": app.client_id, "redirect_uri": redirect_uri}
    connections.save(engine, sealer, _pending_name(state), secret, details, by)
    return state, oauth.authorize_url(app, redirect_uri, state, verifier)


def _take_pending(engine: Engine, sealer: SecretBox, state: str) -> connections.Connection:
    """The sign-in ``state`` began, once: the first callback deletes it, a second finds none."""
    name = _pending_name(state)
    pending = connections.load(engine, sealer, name)
    with Session(engine) as s:
        taken = s.execute(delete(StoredConnection).where(StoredConnection.name == name)).rowcount
        s.commit()
    if pending is None or not taken or pending.updated_at < time.time() - PENDING_SECONDS:
        raise BadInput(EXPIRED_SIGN_IN)
    return pending


def abandon(engine: Engine, state: str) -> None:
    """Forget a sign-in Salesforce refused (the user denied access, the app is wrong)."""
    connections.delete(engine, _pending_name(state))


def finish(settings: Settings, engine: Engine, state: str, code: str, by: str) -> dict[str, Any]:
    """Exchange the callback's code (with the verifier), read who signed in from the identity
    URL, store the tokens sealed; waiting jobs run at once. What may be shown is returned."""
    sealer = box(settings)
    pending = _take_pending(engine, sealer, state)
    app = oauth.App(
        pending.details["login_url"],
        pending.details["client_id"],
        pending.secret.get("client_secret", ""),
    )
    timeout = settings.salesforce_timeout_seconds
    grant = oauth.exchange_code(
        app, code, pending.details["redirect_uri"], pending.secret["code_verifier"], timeout
    )
    try:
        who = oauth.identity(grant.identity_url, grant.access_token, timeout)
    except RemoteError:
        with contextlib.suppress(RemoteError):  # nothing keeps the tokens: leave none alive
            oauth.revoke(app.login_url, grant.refresh_token, timeout)
        raise
    details = {
        "username": who.get("username", ""),
        "display_name": who.get("display_name", ""),
        "user_id": who.get("user_id", ""),
        "org_id": who.get("organization_id", ""),
        "instance_url": grant.instance_url,
        "api_version": settings.salesforce_api_version,
        "login_url": app.login_url,
        "client_id": app.client_id,
        "connected_at": time.time(),
        "connected_by": by,
    }
    secret = {
        "refresh_token": grant.refresh_token,
        "access_token": grant.access_token,
        "client_secret": app.client_secret,
    }
    connections.save(engine, sealer, SALESFORCE, secret, details, by)
    _wake_waiting_jobs(engine)
    log.info("salesforce.connected", extra={"org_id": details["org_id"], "by": by})
    return details


def _wake_waiting_jobs(engine: Engine) -> None:
    with Session(engine) as s:
        s.execute(
            update(Job)
            .where(Job.status == "queued", Job.error_code == WAITING_CODE)  # type: ignore[arg-type]
            .values(run_at=time.time())
        )
        s.commit()


def disconnect(settings: Settings, engine: Engine) -> str | None:
    """Revoke the refresh token in Salesforce and delete the stored connection, which goes
    even when the revoke fails; what went wrong with the revoke, or None."""
    stored = connections.details(engine, SALESFORCE)
    if stored is None:
        return None
    problem = None
    try:
        conn = connections.load(engine, box(settings), SALESFORCE)
        if conn is not None:
            oauth.revoke(
                conn.details["login_url"],
                conn.secret["refresh_token"],
                settings.salesforce_timeout_seconds,
            )
    except (RemoteError, NotConfigured) as exc:
        problem = str(exc)[:500]
        log.warning("salesforce.revoke_failed", extra={"error": problem})
    connections.delete(engine, SALESFORCE)
    return problem


# -- the token source -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    sealed: str
    secret: dict[str, Any]
    details: dict[str, Any]


class TokenSource:
    """``SalesforceClient``'s token source. The client asks again only when Salesforce said
    ``INVALID_SESSION_ID``: the stored access token is then used if another process already
    replaced the one we handed out, else the refresh token gets a new one."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._lock = threading.Lock()
        self._handed_out: str | None = None

    def __repr__(self) -> str:
        return "TokenSource(...)"

    def __call__(self) -> Token:
        if env_flow(self._settings):
            return fetch_token(self._settings)
        with self._lock:
            stored = self._read()
            access = stored.secret.get("access_token", "")
            if access and access != self._handed_out:
                self._handed_out = access
                return Token(access, stored.details["instance_url"])
            token = self._refresh(stored)
            self._handed_out = token.access_token
            return token

    def _read(self) -> _Stored:
        with Session(self._engine) as s:
            row = s.get(StoredConnection, SALESFORCE)
            if row is None or not row.sealed:
                raise NotConfigured(NOT_CONNECTED)
            sealed, details = row.sealed, dict(row.details)
        return _Stored(sealed, box(self._settings).open(sealed), details)

    def _refresh(self, stored: _Stored) -> Token:
        app = oauth.App(
            stored.details["login_url"],
            stored.details["client_id"],
            stored.secret.get("client_secret", ""),
        )
        try:
            body = oauth.refresh(
                app, stored.secret["refresh_token"], self._settings.salesforce_timeout_seconds
            )
        except RemoteRejected as exc:
            again = self._read()
            if again.sealed != stored.sealed:  # another process refreshed (and rotated) first
                return Token(again.secret["access_token"], again.details["instance_url"])
            reason = exc.body.get("error_description") if isinstance(exc.body, dict) else None
            raise NotConfigured(REFUSED.format(reason=reason or exc.error_code)) from exc
        instance_url = body.get("instance_url") or stored.details["instance_url"]
        secret = {
            **stored.secret,
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token") or stored.secret["refresh_token"],
        }
        details = {**stored.details, "instance_url": instance_url, "refreshed_at": time.time()}
        with Session(self._engine) as s:
            written = s.execute(
                update(StoredConnection)
                .where(
                    StoredConnection.name == SALESFORCE,  # type: ignore[arg-type]
                    StoredConnection.sealed == stored.sealed,  # type: ignore[arg-type]
                )
                .values(sealed=box(self._settings).seal(secret), details=details)
            ).rowcount
            s.commit()
        log.info("salesforce.token_refreshed", extra={"stored": bool(written)})
        return Token(body["access_token"], instance_url)
