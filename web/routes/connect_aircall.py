"""Connecting Aircall from the browser: the API key, checked before it is stored, and the
webhook Callbridge registers."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from integrations.aircall import credentials
from integrations.errors import BadInput, NotConfigured
from integrations.secrets import NO_KEY
from integrations.store import connections
from integrations.store.accounts import MANAGER
from integrations.sync.connect import aircall
from web import security

PAGE = "/settings/connections"
FLASH = "aircall_flash"  # what the last POST said, shown once by the page it redirects to


def _shown(engine: Any) -> dict[str, Any]:
    return {
        "key": connections.details(engine, connections.AIRCALL),
        "webhook": connections.details(engine, connections.AIRCALL_WEBHOOK),
        "gap": aircall.gap(engine),
    }


async def context(request: Request) -> dict[str, Any]:
    """What ``partials/connection_aircall.html`` shows: never a token, only the API ID."""
    settings = request.app.state.settings
    stored = await run_in_threadpool(_shown, request.app.state.engine)
    webhook = stored["webhook"] or {}
    return {
        **stored,
        "flash": request.session.pop(FLASH, None) or {},
        "env_key": credentials.env_key(settings) is not None,
        "env_api_id": settings.aircall_api_id,
        "env_tokens": bool(settings.aircall_webhook_tokens),
        "can_store": bool(settings.callbridge_secret_key.get_secret_value()),
        "no_secret_key": NO_KEY,
        "public_url": settings.public_url,
        "webhook_url": aircall.webhook_url(settings) if settings.public_url else "",
        "no_public_url": aircall.NO_PUBLIC_URL,
        "problem": webhook.get("problem"),
        "registered": bool(webhook.get("webhook_id")),
        "where_keys": aircall.WHERE_KEYS,
    }


def _back(request: Request, **flash: str) -> Response:
    request.session[FLASH] = flash
    return RedirectResponse(f"{PAGE}#aircall-connection", status_code=303)


@security.guard(MANAGER)
async def save_key(request: Request) -> Response:
    """Check the API ID and token with Aircall, then store them; the token is never echoed."""
    form = await request.form()
    api_id, api_token = str(form.get("api_id") or ""), str(form.get("api_token") or "")
    try:
        await aircall.connect_key(
            request.app.state.settings,
            request.app.state.engine,
            api_id,
            api_token,
            by=request.state.user.email,
        )
    except (BadInput, NotConfigured) as exc:
        return _back(request, error=str(exc), api_id=api_id.strip()[:200])
    return _back(request, notice="Aircall is connected: the API key works and is stored.")


@security.guard(MANAGER)
async def register_webhook(request: Request) -> Response:
    """Register the webhook, or repair (update and re-enable) the one registered before."""
    try:
        await aircall.register(
            request.app.state.settings, request.app.state.engine, by=request.state.user.email
        )
    except (BadInput, NotConfigured) as exc:
        return _back(request, webhook_error=str(exc))
    return _back(request, webhook_notice="The Aircall webhook is registered and active.")


ROUTES: list[Route] = [
    Route(f"{PAGE}/aircall", save_key, methods=["POST"]),
    Route(f"{PAGE}/aircall/webhook", register_webhook, methods=["POST"]),
]
