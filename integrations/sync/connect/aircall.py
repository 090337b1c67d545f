"""Aircall, connected from the browser: the API key checked against Aircall before it is
stored, and the webhook Callbridge manages.

``register`` creates the webhook at ``PUBLIC_URL/webhooks/aircall`` with the events Callbridge
needs, or updates (and re-enables) the one it registered before; the token Aircall returns is
stored sealed, so deliveries carrying it are accepted within seconds. ``check`` reads the webhook
back (the worker does so on start and every ``AIRCALL_WEBHOOK_CHECK_SECONDS``) and records what
is wrong in plain words (``webhook_problem``); after a repair, the calls of the gap are offered
for backfill (``gap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session

from integrations.aircall import credentials
from integrations.aircall.client import AircallClient, make_http
from integrations.errors import (
    BadInput,
    CallbridgeError,
    NotConfigured,
    RemoteRejected,
    RemoteUnavailable,
)
from integrations.settings import Settings
from integrations.store import connections
from integrations.store.automation_models import Automation
from integrations.store.models import OrgFact
from integrations.sync.automations.definitions import TRIGGERS
from integrations.sync.jobs import budget
from integrations.sync.jobs.context import Context
from integrations.sync.recovery import backfill

log = logging.getLogger(__name__)

WEBHOOK_NAME = "Callbridge"
WEBHOOK_PATH = "/webhooks/aircall"
# The call events the intake keeps (the live dashboard shows ringing calls; the rest write or
# update the call's Task), whatever the automations say.
CALL_EVENTS = (
    "call.created",
    "call.ringing_on_agent",
    "call.answered",
    "call.hungup",
    "call.ended",
    "call.tagged",
    "call.untagged",
    "call.commented",
    "call.voicemail_left",
    "call.comm_assets_generated",
)
WHERE_KEYS = "in the Aircall dashboard under Integrations & API → API keys"
WRONG_KEY = (
    "Aircall refused this API ID and token. Copy both again from the Aircall dashboard "
    "(Integrations & API → API keys; the token is shown only once, so create a new key if "
    "you no longer have it). Nothing was saved."
)
NO_PUBLIC_URL = (
    "PUBLIC_URL is not set: set it to the address Aircall can reach Callbridge at (for example "
    "https://callbridge.example.com) and restart, then register the webhook."
)


def _client(settings: Settings, engine: Engine, auth: httpx.Auth | None = None) -> AircallClient:
    """An Aircall client spending the shared request budget, as the worker's does."""

    async def spend() -> float:
        return await asyncio.to_thread(budget.take, engine, "aircall", settings.aircall_rate_limit)

    async def hold(until: float) -> None:
        await asyncio.to_thread(budget.block_until, engine, "aircall", until)

    return AircallClient(make_http(settings, engine=engine, auth=auth), spend, hold)


def _unanswered(exc: RemoteUnavailable) -> BadInput:
    return BadInput(
        f"Aircall did not answer ({exc.status or 'no response'}); nothing was changed. "
        "Try again in a minute."
    )


# -- the API key -------------------------------------------------------------------------------


async def connect_key(
    settings: Settings, engine: Engine, api_id: str, api_token: str, *, by: str = ""
) -> None:
    """Check an API ID and token with one request to Aircall, then store them sealed."""
    api_id, api_token = api_id.strip(), api_token.strip()
    if not api_id or not api_token:
        raise BadInput(f"Enter both the API ID and the API token (found {WHERE_KEYS}).")
    if len(api_id) > 200 or len(api_token) > 500:
        raise BadInput(f"That is not an Aircall API ID and token (found {WHERE_KEYS}).")
    credentials.box(settings)  # no CALLBRIDGE_SECRET_KEY: refused before anything is sent
    client = _client(settings, engine, httpx.BasicAuth(api_id, api_token))
    try:
        await client.ping()
    except RemoteRejected as exc:
        if exc.status in (401, 403):
            raise BadInput(WRONG_KEY) from None
        raise BadInput(f"Aircall answered {exc.status}; nothing was saved.") from None
    except RemoteUnavailable as exc:
        raise _unanswered(exc) from None
    finally:
        await client.aclose()
    await asyncio.to_thread(credentials.save_key, settings, engine, api_id, api_token, by=by)
    log.info("aircall.key_saved", extra={"api_id": api_id, "by": by})


# -- the webhook -------------------------------------------------------------------------------


def webhook_url(settings: Settings) -> str:
    if not settings.public_url:
        raise NotConfigured(NO_PUBLIC_URL)
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def needed_events(engine: Engine) -> list[str]:
    """The intake's call events and those the enabled automations are triggered by."""
    with Session(engine) as s:
        triggers = set(s.scalars(select(Automation.trigger).where(Automation.enabled)))
    events = set(CALL_EVENTS)
    events.update(TRIGGERS[t] for t in triggers if t in TRIGGERS and not t.startswith("T"))
    return sorted(events)


def _refused(exc: RemoteRejected) -> BadInput:
    if exc.status in (401, 403):
        return BadInput(
            f"Aircall refused Callbridge's API key: connect Aircall again ({WHERE_KEYS})."
        )
    body = exc.body if isinstance(exc.body, dict) else {}
    why = str(body.get("troubleshoot") or body.get("error") or body.get("message") or exc.body)
    return BadInput(
        f"Aircall refused the webhook: {why[:300]} (PUBLIC_URL must be a public https address)."
    )


async def register(settings: Settings, engine: Engine, *, by: str = "") -> dict[str, Any]:
    """Create Callbridge's webhook, or update and re-enable the one it registered before.

    Idempotent: the stored webhook id (or, failing that, a webhook already at our URL) is
    updated, so running it twice leaves one webhook. Returns the stored details."""
    url = webhook_url(settings)
    credentials.box(settings)  # the token must be storable before a webhook is made
    events = await asyncio.to_thread(needed_events, engine)
    stored = await asyncio.to_thread(connections.details, engine, connections.AIRCALL_WEBHOOK)
    stored = stored or {}
    changes = {"custom_name": WEBHOOK_NAME, "url": url, "events": events, "active": True}
    client = _client(settings, engine)
    try:
        hook = None
        known = stored.get("webhook_id")
        if not known:
            same_url = [w for w in await client.list_webhooks() if w.get("url") == url]
            known = same_url[0]["webhook_id"] if same_url else None
        if known:
            try:
                hook = await client.update_webhook(known, changes)
            except RemoteRejected as exc:
                if exc.status != 404:
                    raise
        if hook is None:
            hook = await client.create_webhook(WEBHOOK_NAME, url, events)
        token = hook.get("token") or (await client.get_webhook(hook["webhook_id"])).get("token")
    except RemoteRejected as exc:
        raise _refused(exc) from None
    except RemoteUnavailable as exc:
        raise _unanswered(exc) from None
    finally:
        await client.aclose()
    if not isinstance(token, str) or not token:
        raise BadInput("Aircall returned the webhook without its token; try again.")
    now = time.time()
    details: dict[str, Any] = {
        "webhook_id": hook["webhook_id"],
        "url": url,
        "events": events,
        "registered_at": now,
        "checked_at": now,
        "problem": None,
        "bad_since": None,
        "gap": stored.get("gap"),
    }
    if stored.get("bad_since"):  # a repair: offer the calls Aircall did not deliver meanwhile
        since = int(stored["bad_since"]) - backfill.IN_PROGRESS_MARGIN
        details["gap"] = {"since": since, "until": int(now)}
    await asyncio.to_thread(credentials.save_webhook_token, settings, engine, token, details, by=by)
    log.info("aircall.webhook_registered", extra={"webhook_id": hook["webhook_id"], "url": url})
    return details


def _problems(hook: dict[str, Any], url: str, needed: list[str]) -> str | None:
    found = []
    if not hook.get("active"):
        found.append(
            "Aircall has disabled the webhook (it does so after repeated failed deliveries), "
            "so calls are not reaching Callbridge"
        )
    if hook.get("url") != url:
        found.append(f"the webhook points at {hook.get('url')} instead of {url}")
    missing = sorted(set(needed) - set(hook.get("events") or ()))
    if missing:
        found.append(f"the webhook does not send {', '.join(missing)}")
    if not found:
        return None
    text = "; ".join(found)
    return f"{text[0].upper()}{text[1:]}. Press Repair on the Connections page."


async def check(
    settings: Settings, engine: Engine, client: AircallClient, now: float | None = None
) -> str | None:
    """Read the registered webhook back and record what is wrong with it (None: all is well,
    or no webhook was registered). An Aircall outage changes nothing recorded."""
    stored = await asyncio.to_thread(connections.details, engine, connections.AIRCALL_WEBHOOK)
    if not stored or not stored.get("webhook_id"):
        return None
    url = webhook_url(settings) if settings.public_url else stored.get("url", "")
    needed = await asyncio.to_thread(needed_events, engine)
    try:
        problem = _problems(await client.get_webhook(stored["webhook_id"]), url, needed)
    except RemoteRejected as exc:
        if exc.status == 404:
            problem = (
                "The Aircall webhook Callbridge registered is gone (deleted in the Aircall "
                "dashboard?), so calls are not reaching Callbridge. Press Repair on the "
                "Connections page."
            )
        elif exc.status in (401, 403):
            problem = (
                "Callbridge cannot read its Aircall webhook back: Aircall refused the API key. "
                f"Connect Aircall again ({WHERE_KEYS})."
            )
        else:
            problem = f"Aircall answered {exc.status} when Callbridge read its webhook back."
    except RemoteUnavailable as exc:
        log.warning("aircall.webhook_check_failed", extra={"error": str(exc)[:300]})
        return stored.get("problem")
    now = time.time() if now is None else now
    bad_since = (stored.get("bad_since") or now) if problem else None
    await asyncio.to_thread(
        connections.update_details,
        engine,
        connections.AIRCALL_WEBHOOK,
        problem=problem,
        bad_since=bad_since,
        checked_at=now,
    )
    if problem and not stored.get("problem"):
        log.warning("aircall.webhook_problem", extra={"problem": problem})
    return problem


def webhook_problem(engine: Engine) -> str | None:
    """What is wrong with the Aircall webhook, in plain words, as last read back; or None."""
    stored = connections.details(engine, connections.AIRCALL_WEBHOOK)
    return (stored or {}).get("problem") or None


def gap(engine: Engine) -> dict[str, int] | None:
    """The window (UNIX seconds ``since``/``until``) to backfill after a repair, until a
    backfill has covered it."""
    stored = connections.details(engine, connections.AIRCALL_WEBHOOK) or {}
    window = stored.get("gap")
    if not window:
        return None
    with Session(engine) as s:
        covered = s.get(OrgFact, backfill.COVERED)
    if covered is not None and float(covered.value) >= window["until"]:
        return None
    return window


async def watch(ctx: Context, stopping: asyncio.Event) -> None:
    """Worker loop: read the webhook back on start, then every few minutes."""
    interval = ctx.settings.aircall_webhook_check_seconds
    if interval <= 0:
        return
    while not stopping.is_set():
        try:
            await check(ctx.settings, ctx.engine, ctx.aircall)
        except CallbridgeError as exc:
            log.warning("aircall.webhook_check_failed", extra={"error": str(exc)[:300]})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
