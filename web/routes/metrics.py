"""``GET /metrics`` in the Prometheus text format, behind ``METRICS_TOKEN``; and the counting of
webhook deliveries, wrapped around their receivers."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.errors import BadInput, BadToken
from integrations.metrics import Metrics
from web.security import BodyTooLarge, Endpoint

REASONS: dict[type[Exception], str] = {
    BadToken: "bad_token",
    BadInput: "bad_body",
    BodyTooLarge: "too_large",
}
STATUS_REASONS = {401: "bad_token", 400: "bad_body", 413: "too_large"}  # answered, not raised


def app_metrics(app: Starlette) -> Metrics:
    """The app's own metrics, made on first use (a webhook or a scrape)."""
    found = getattr(app.state, "metrics", None)
    if found is None:
        state = app.state
        found = state.metrics = Metrics(
            state.engine,
            state.settings.aircall_rate_limit,
            durations=lambda: getattr(getattr(state, "worker", None), "durations", None),
        )
    return found


def counted(source: str) -> Callable[[Endpoint], Endpoint]:
    """Count the deliveries a receiver accepts and refuses (and why) under ``source``."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def counting(request: Request) -> Response:
            metrics = app_metrics(request.app)
            try:
                response = await endpoint(request)
            except Exception as exc:
                metrics.refused(source, _reason(exc))
                raise
            if response.status_code < 400:
                metrics.accepted(source)
            else:
                metrics.refused(source, STATUS_REASONS.get(response.status_code, "error"))
            return response

        return counting

    return wrap


def _reason(exc: Exception) -> str:
    return next((reason for kind, reason in REASONS.items() if isinstance(exc, kind)), "error")


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token.get_secret_value()
    if not token:
        raise HTTPException(404)  # off: as if there were no such page
    if not _bearer_matches(request.headers.get("authorization", ""), token):
        return PlainTextResponse(
            "send the METRICS_TOKEN setting as a bearer token: Authorization: Bearer <token>",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await run_in_threadpool(app_metrics(request.app).render)  # reads the database
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES: list[Route] = [Route("/metrics", metrics, methods=["GET"])]
