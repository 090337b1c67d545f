"""Webhook receivers. Verify, parse, store, answer: no Salesforce or Aircall call in here.

Aircall's receiver is a plain ASGI app that ``web.app`` serves ahead of the middleware: it has
no session, cookie, CSRF token or page, and each delivery is on the hot path (tens of
microseconds of middleware and ``Request`` objects are a large share of what it costs).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from integrations.aircall import credentials, events
from integrations.errors import BadInput, BadToken
from integrations.metrics import Metrics
from integrations.settings import Settings
from integrations.sync.intake.live import Broadcaster
from integrations.sync.intake.writer import IntakeWriter
from web.routes.metrics import app_metrics
from web.security import BodyTooLarge, headers_for

log = logging.getLogger(__name__)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (declared or actual)."""
    return await receive_body(request.scope, request.receive, limit)


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """``read_body`` on the bare ASGI messages (the Aircall receiver has no ``Request``)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class AircallReceiver:
    """``POST /webhooks/aircall``: 200 once the event is committed (or known as a retry), 400
    for a malformed delivery, 401 for a wrong token, 413 over ``events.MAX_BODY``, and 500 (no
    details) when storing failed: Aircall sends it again."""

    def __init__(
        self, settings: Settings, engine: Engine, intake: IntakeWriter, live: Broadcaster
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.intake = intake
        self.live = live
        self._metrics: Metrics | None = None
        self._https = settings.public_url.startswith("https://")  # TLS may end at a proxy
        self._answers: dict[tuple[bool, bool], Message] = {}

    def _is_https(self, scope: Scope) -> bool:
        return self._https or scope.get("scheme") == "https"

    def _answer(self, scope: Scope, duplicate: bool) -> Message:
        """The 200's start message, made once (its body is one of two constants)."""
        https = self._is_https(scope)
        key = (https, duplicate)
        if key not in self._answers:
            headers = [
                (b"content-length", str(len(_OK[duplicate])).encode()),
                (b"content-type", b"application/json"),
                *headers_for(scope, https),
            ]
            self._answers[key] = {"type": "http.response.start", "status": 200, "headers": headers}
        return self._answers[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self._metrics
        if metrics is None:
            metrics = self._metrics = app_metrics(scope["app"])
        try:
            # AIRCALL_WEBHOOK_TOKENS and the registered webhook's (cached: no query each time)
            tokens = await credentials.webhook_tokens(self.settings, self.engine)
            event = events.parse(await receive_body(scope, receive, events.MAX_BODY), tokens)
            stored = await self.intake.accept(event)  # committed (group commit)
        except ClientDisconnect:  # nobody to answer
            return
        except (BadInput, BadToken, BodyTooLarge) as exc:
            reason, status, text = next(v for kind, v in _REFUSED.items() if isinstance(exc, kind))
            metrics.refused("aircall", reason)
            await self._refuse(scope, receive, send, status, text or str(exc))
            return
        except Exception:
            log.exception("webhook.store_failed")
            metrics.refused("aircall", "error")
            await self._refuse(scope, receive, send, 500, "internal error")
            return
        metrics.accepted("aircall")
        await send(self._answer(scope, not stored))
        await send({"type": "http.response.body", "body": _OK[not stored]})
        # Committed. On PostgreSQL the intake's NOTIFY has told every process; on SQLite the
        # dashboards of this process hear of it now that Aircall has its answer.
        if stored and event.call_id is not None and not self.live.notifies_on_commit:
            await self.live.publish(event.call_id)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, text: str
    ) -> None:
        secure = headers_for(scope, self._is_https(scope))
        headers = {name.decode(): value.decode() for name, value in secure}
        await JSONResponse({"error": text}, status_code=status, headers=headers)(
            scope, receive, send
        )


def _render(content: dict[str, bool]) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()  # as JSONResponse renders it


_OK = {duplicate: _render({"ok": True, "duplicate": duplicate}) for duplicate in (False, True)}
# The metrics' reason, the status, and the text (None: the exception's own).
_REFUSED: dict[type[Exception], tuple[str, int, str | None]] = {
    BadInput: ("bad_body", 400, None),
    BadToken: ("bad_token", 401, "unknown webhook token"),
    BodyTooLarge: ("too_large", 413, None),
}
