"""Connecting Salesforce from the browser: the OAuth 2.0 web-server flow with PKCE.

Connect stores the sign-in under way (``salesforce_connection.start``) and sends the browser to
Salesforce; the callback checks the state against this browser's session and finishes it;
Disconnect revokes the refresh token. Each answers with a redirect to the page, carrying its
outcome in the session (one message, shown once).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from integrations import salesforce_connection as connection
from integrations.errors import (
    BadInput,
    CallbridgeError,
    NotConfigured,
    RemoteError,
    RemoteUnavailable,
)
from integrations.salesforce import oauth
from integrations.secrets import NO_KEY
from integrations.store import connections
from integrations.store.accounts import MANAGER
from web import org_fields, security
from web.routes import connect_aircall
from web.templating import render

PAGE = "/settings/connections"
STATE_KEY = "salesforce_state"
MESSAGE_KEY = "salesforce_message"
LOGINS = {"production": "https://login.salesforce.com", "sandbox": "https://test.salesforce.com"}
SALESFORCE_HOSTS = (".salesforce.com", ".force.com")
FLOWS = {"client_credentials": "client credentials flow", "jwt": "JWT bearer flow"}
HINTS = {
    "invalid_client_id": "the consumer key is not this app's: copy it from the app's "
    "Settings → OAuth Settings → Consumer Key and Secret",
    "invalid_client": "the consumer secret is wrong, or the app requires one: enter it, or turn "
    'off "Require secret for Web Server Flow" in the app\'s OAuth settings',
    "redirect_uri_mismatch": "the app's Callback URL must be exactly {callback}",
    "access_denied": "the Salesforce user did not allow access",
}


def callback_url(request: Request) -> str:
    """Where Salesforce sends the browser back: PUBLIC_URL's, else this request's base URL."""
    base = request.app.state.settings.public_url or str(request.base_url)
    return base.rstrip("/") + connection.CALLBACK_PATH


def _flash(request: Request, kind: str, text: str) -> None:
    request.session[MESSAGE_KEY] = {"kind": kind, "text": text}


def _back(request: Request) -> Response:
    return RedirectResponse(PAGE, status_code=303)


def _login_url(form: Any, configured: str) -> str:
    """Production, Sandbox, or a My Domain: a Salesforce host (or SALESFORCE_LOGIN_URL's), since
    Callbridge posts the code and the consumer secret there."""
    choice = form.get("login")
    if choice in LOGINS:
        return LOGINS[choice]
    url = str(form.get("my_domain") or "").strip().rstrip("/")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    ours = host.endswith(SALESFORCE_HOSTS) or url == configured.rstrip("/")
    if parts.scheme != "https" or not ours or parts.path or parts.query:
        raise BadInput(
            "Enter your My Domain URL as Setup → My Domain shows it, "
            "e.g. https://acme.my.salesforce.com"
        )
    return url


def _usage(request: Request) -> tuple[dict[str, int] | None, str | None]:
    """The org's daily API requests (one request to /limits), or why they could not be read."""
    sf = org_fields.salesforce(request)
    if sf is None:
        return None, None
    try:
        daily = sf.limits().get("DailyApiRequests") or {}
    except CallbridgeError as exc:
        return None, f"Salesforce could not be reached with this connection: {str(exc)[:300]}"
    try:
        most, left = int(daily.get("Max", 0)), int(daily.get("Remaining", 0))
    except (TypeError, ValueError):
        return None, "Salesforce's limits did not include the daily API requests"
    return {"used": most - left, "max": most}, None


async def context(request: Request) -> dict[str, Any]:
    """What ``partials/connection_salesforce.html`` shows."""
    settings = request.app.state.settings
    engine = request.app.state.engine
    flow = connection.env_flow(settings)
    stored = await run_in_threadpool(connections.details, engine, connections.SALESFORCE)
    usage, usage_problem = await run_in_threadpool(_usage, request)
    login = settings.salesforce_login_url.rstrip("/")
    choice = next((name for name, url in LOGINS.items() if url == login), "my_domain")
    return {
        "how": "environment" if flow else ("browser" if stored else None),
        "flow": FLOWS.get(flow or ""),
        "details": stored or {},
        "env_login_url": login,
        "env_client_id": settings.salesforce_client_id,
        "env_org_id": settings.salesforce_org_id,
        "api_version": settings.salesforce_api_version,
        "login_choice": choice,
        "my_domain": login if choice == "my_domain" else "",
        "callback_url": callback_url(request),
        "public_url_missing": not settings.public_url,
        "no_key": None if settings.callbridge_secret_key.get_secret_value() else NO_KEY,
        "scopes": oauth.SCOPES,
        "usage": usage,
        "usage_problem": usage_problem,
        "message": request.session.pop(MESSAGE_KEY, None),
        "continue_url": None,
    }


@security.guard(MANAGER)
async def connect(request: Request) -> Response:
    """Begin the sign-in; the browser goes to Salesforce (htmx: ``HX-Redirect``, since the
    page's CSP ``form-action 'self'`` stops a form's redirect to another site)."""
    settings = request.app.state.settings
    form = await request.form()
    try:
        if connection.env_flow(settings):
            raise BadInput(
                "Salesforce is set up in the environment, which wins: remove "
                "SALESFORCE_CLIENT_SECRET (or the JWT key) to connect from the browser"
            )
        client_id = settings.salesforce_client_id or str(form.get("client_id") or "").strip()
        if not client_id:
            raise BadInput(
                "Enter the app's consumer key (Setup → External Client App Manager → your app → "
                "Settings → OAuth Settings → Consumer Key and Secret)"
            )
        login_url = _login_url(form, settings.salesforce_login_url)
        app = oauth.App(login_url, client_id, str(form.get("client_secret") or "").strip())
        state, url = await run_in_threadpool(
            connection.start,
            settings,
            request.app.state.engine,
            app,
            callback_url(request),
            request.state.user.email,
        )
    except (BadInput, NotConfigured) as exc:
        _flash(request, "error", str(exc))
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": PAGE})
        return _back(request)
    request.session[STATE_KEY] = state
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    page = {
        "tab": "connections",
        "salesforce": {**await context(request), "continue_url": url},
        "aircall": await connect_aircall.context(request),
    }
    return render(request, "pages/connections.html", page)


def _refusal(exc: RemoteError, callback: str) -> str:
    if isinstance(exc, RemoteUnavailable):
        reason = str(exc)[:200]
        return (
            f"Salesforce could not be reached to finish the sign-in ({reason}): press Connect again"
        )
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(body.get("error") or exc.error_code or exc.status)
    said = body.get("error_description") or str(exc)[:300]
    hint = HINTS.get(code, "").format(callback=callback)
    return f"Salesforce refused the sign-in: {said} [{code}]" + (f"; {hint}" if hint else "")


@security.guard(MANAGER)
async def callback(request: Request) -> Response:
    """Salesforce's redirect back: the state must be the one this session started, once."""
    params = request.query_params
    expected = request.session.pop(STATE_KEY, None)
    state = params.get("state") or ""
    if not (
        isinstance(expected, str)
        and state
        and secrets.compare_digest(state.encode(), expected.encode())
    ):
        _flash(
            request,
            "error",
            "This Salesforce sign-in was not started from this browser session (the state does "
            "not match): press Connect again",
        )
        return _back(request)
    callback = callback_url(request)
    if params.get("error"):
        await run_in_threadpool(connection.abandon, request.app.state.engine, state)
        refused = RemoteError("salesforce", None, dict(params))
        _flash(request, "error", _refusal(refused, callback))
        return _back(request)
    try:
        details = await run_in_threadpool(
            connection.finish,
            request.app.state.settings,
            request.app.state.engine,
            state,
            params.get("code") or "",
            request.state.user.email,
        )
    except (BadInput, NotConfigured) as exc:
        _flash(request, "error", str(exc))
    except RemoteError as exc:
        _flash(request, "error", _refusal(exc, callback))
    else:
        _flash(request, "ok", f"Connected to Salesforce as {details['username']}.")
    return _back(request)


@security.guard(MANAGER)
async def disconnect(request: Request) -> Response:
    problem = await run_in_threadpool(
        connection.disconnect, request.app.state.settings, request.app.state.engine
    )
    if problem:
        _flash(
            request,
            "error",
            "Disconnected here, but Salesforce did not confirm the refresh token was revoked "
            f"({problem}): revoke it in Setup → Connected Apps OAuth Usage",
        )
    else:
        _flash(request, "ok", "Disconnected from Salesforce; the refresh token was revoked.")
    return _back(request)


ROUTES: list[Route] = [
    Route("/settings/connections/salesforce/connect", connect, methods=["POST"]),
    Route(connection.CALLBACK_PATH, callback, methods=["GET"]),
    Route("/settings/connections/salesforce/disconnect", disconnect, methods=["POST"]),
]
