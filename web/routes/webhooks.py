"""Webhook receivers. Verify, parse, store, answer: no Salesforce or Aircall call in here."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from integrations.aircall import credentials, events
from web.routes.metrics import counted
from web.security import BodyTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (declared or actual)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


@counted("aircall")
async def aircall(request: Request) -> Response:
    settings = request.app.state.settings
    # AIRCALL_WEBHOOK_TOKENS and the registered webhook's (cached: no query per delivery)
    tokens = await credentials.webhook_tokens(settings, request.app.state.engine)
    event = events.parse(await read_body(request, events.MAX_BODY), tokens)
    stored = await request.app.state.intake.accept(event)  # committed (group commit)
    # Committed. On PostgreSQL the intake's NOTIFY has told every process; on SQLite the
    # dashboards of this process hear of it once Aircall has its answer.
    publish = None
    live = request.app.state.live
    if stored and event.call_id is not None and not live.notifies_on_commit:
        publish = BackgroundTask(live.publish, event.call_id)
    return JSONResponse({"ok": True, "duplicate": not stored}, background=publish)
