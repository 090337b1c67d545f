"""Both connections work, the org's API allocation, its time zone, the Outbound Message
endpoint: each from one cheap request or from the settings."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.errors import (
    BudgetExhausted,
    CallbridgeError,
    NotConfigured,
    RemoteRejected,
    RemoteUnavailable,
)
from integrations.health.lines import Line
from integrations.store import connections as stored
from integrations.sync.connect import aircall as connect_aircall
from integrations.sync.jobs.context import Context

ORG_QUERY = "SELECT Id, TimeZoneSidKey FROM Organization LIMIT 1"
OUTBOUND_PATH = "/webhooks/salesforce/outbound-message/"


def _short(exc: Exception) -> str:
    return str(exc)[:300]


def salesforce_refusal(exc: CallbridgeError) -> str:
    """What to do when a Salesforce request fails, in Setup's words."""
    if isinstance(exc, NotConfigured):
        return f"{exc}: connect Salesforce on the Connections page"
    if isinstance(exc, RemoteUnavailable):
        return (
            f"Salesforce could not be reached ({_short(exc)}): check SALESFORCE_LOGIN_URL "
            "(production, sandbox or My Domain) and that this server can reach it"
        )
    return (
        f"Salesforce refused Callbridge's sign-in or request ({_short(exc)}): reconnect on the "
        "Connections page, or check SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET in "
        "Setup → App Manager → your app → View → Manage Consumer Details, and that the app's "
        "Run As user is active"
    )


async def salesforce(ctx: Context) -> list[Line]:
    """The credentials (one query), then what that answer tells: API usage and the time zone."""
    try:
        rows = await asyncio.to_thread(ctx.salesforce.query, ORG_QUERY)
    except CallbridgeError as exc:
        return [Line("Salesforce connection", salesforce_refusal(exc))]
    return [Line("Salesforce connection"), _usage(ctx), _zone(ctx, rows)]


def _usage(ctx: Context) -> Line:
    usage = ctx.salesforce.usage
    threshold = ctx.settings.salesforce_api_threshold
    if not usage.max:
        return Line("Salesforce API usage", "Salesforce did not report its daily API usage")
    name = f"Salesforce API usage: {usage.used} of {usage.max} requests in the last 24 hours"
    if usage.ratio < threshold:
        return Line(name)
    return Line(
        name,
        f"{usage.ratio:.0%} used, past SALESFORCE_API_THRESHOLD ({threshold:.0%}): backfills "
        "and batched writes wait until usage falls. Every integration of the org shares this "
        "allocation: see Setup → Company Information → API Requests, Last 24 Hours, and ask "
        "Salesforce for a larger allocation or quiet the heaviest integration",
    )


def _zone(ctx: Context, rows: list[dict]) -> Line:
    org_zone = (rows[0].get("TimeZoneSidKey") if rows else None) or ""
    chosen = ctx.settings.salesforce_time_zone or org_zone
    where = "SALESFORCE_TIME_ZONE" if ctx.settings.salesforce_time_zone else "the org's"
    try:
        ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        return Line(
            "Org time zone",
            f"{where} time zone {chosen!r} is not one Callbridge knows, so due dates and "
            "meeting times use UTC: set it in Setup → Company Information → Default Time Zone, "
            "or set SALESFORCE_TIME_ZONE",
        )
    return Line(f"Org time zone: {chosen} ({where} setting)")


async def aircall(ctx: Context) -> list[Line]:
    try:
        await ctx.aircall.ping()
    except BudgetExhausted:
        return [Line("Aircall connection", "not checked: the Aircall rate budget is spent")]
    except RemoteRejected as exc:
        return [
            Line(
                "Aircall connection",
                f"Aircall refused the API ID and token ({exc.status}): create an API key in "
                "the Aircall dashboard → Integrations & API → API Keys and enter it on the "
                "Connections page (or set AIRCALL_API_ID and AIRCALL_API_TOKEN)",
            )
        ]
    except RemoteUnavailable as exc:
        return [
            Line(
                "Aircall connection",
                f"Aircall could not be reached ({_short(exc)}): check AIRCALL_API_URL and that "
                "this server can reach api.aircall.io",
            )
        ]
    return [Line("Aircall connection")]


async def outbound(ctx: Context) -> list[Line]:
    """The Outbound Message endpoint (T05); the token itself is never shown."""
    settings = ctx.settings
    if not settings.outbound_message_token.get_secret_value():
        return [Line("Outbound Messages: off (OUTBOUND_MESSAGE_TOKEN not set; polling runs)")]
    endpoint = (settings.public_url.rstrip("/") or "PUBLIC_URL") + OUTBOUND_PATH
    return [Line(f"Outbound Messages: on at {endpoint}<the token>")]


async def aircall_webhook(ctx: Context) -> list[Line]:
    """The webhook Callbridge registered, read back now (disabled, elsewhere, gone, events)."""
    name = "Aircall webhook"
    registered = await asyncio.to_thread(stored.details, ctx.engine, stored.AIRCALL_WEBHOOK)
    if not registered or not registered.get("webhook_id"):
        if ctx.settings.aircall_webhook_tokens:
            return [
                Line(f"{name}: made by hand (its token in AIRCALL_WEBHOOK_TOKENS), not read back")
            ]
        return [
            Line(
                name,
                "No Aircall webhook is registered, so no call reaches Callbridge: press "
                "Register webhook on Automations → Connections (it needs PUBLIC_URL).",
            )
        ]
    problem = await connect_aircall.check(ctx.settings, ctx.engine, ctx.aircall)
    if problem:
        return [Line(name, problem)]
    return [Line(f"{name}: active at {registered.get('url', '')}")]
