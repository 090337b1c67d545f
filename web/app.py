"""The Starlette application: routes, error handlers, and the in-process worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.settings import Settings
from integrations.store import db
from integrations.sync.worker import Worker, make_context
from web import errors
from web.routes import webhooks


async def healthz(request: Request) -> Response:
    """200 once webhooks can be taken: database reachable and migrations applied."""
    try:
        ready = await run_in_threadpool(db.is_current, request.app.state.engine)
    except Exception:  # noqa: BLE001  (any database failure means "not ready")
        ready = False
    if not ready:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings, *, engine: Engine | None = None, worker: bool = True
) -> Starlette:
    """The app for ``settings``; ``worker=False`` serves the web tier alone."""
    engine = engine or db.make_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running = None
        if worker:
            running = Worker(make_context(settings, engine))
            running.start()
        app.state.worker = running
        try:
            yield
        finally:
            if running is not None:
                await running.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/webhooks/aircall", webhooks.aircall, methods=["POST"]),
        ],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    return app
