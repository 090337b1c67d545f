"""The Starlette application: routes, error handlers, and the in-process worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.settings import Settings
from integrations.store import accounts, db
from integrations.sync.intake.live import Broadcaster
from integrations.sync.intake.writer import IntakeWriter
from integrations.sync.jobs.worker import make_context
from integrations.sync.runtime import make_worker
from web import errors, security
from web.routes import (
    auth,
    connect_aircall,
    connect_salesforce,
    connections,
    dashboard,
    dispositions,
    health,
    live,
    mappings,
    metrics,
    outbound,
    review,
    webhooks,
)
from web.routes import automations as builder
from web.routes import settings as admin
from web.templating import STATIC, make_templates

SIGN_IN_BODY = 64 * 1024  # an email, a password and a token; read before the CSRF check


async def healthz(request: Request) -> Response:
    """200 once webhooks can be taken: database reachable and migrations applied."""
    try:
        ready = await run_in_threadpool(db.is_current, request.app.state.engine)
    except Exception:  # noqa: BLE001  (any database failure means "not ready")
        ready = False
    if not ready:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    settings = request.app.state.settings
    return JSONResponse({"status": "ok", "outbound_messages": outbound.status(settings)})


class Callbridge(Starlette):
    """Starlette, with the sessionless webhook receivers served ahead of the middleware.

    Sessions, CSRF, the body limits of forms and the error pages are for browsers; a webhook
    receiver answers every input itself (4xx, or 500 when storing failed) and adds the security
    headers. ``direct`` maps a path to the ASGI app taking its POSTs.
    """

    def __init__(self, *, direct: dict[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.direct.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, *, engine: Engine | None = None, worker: bool = True
) -> Starlette:
    """The app for ``settings``; ``worker=False`` serves the web tier alone."""
    engine = engine or db.make_engine(settings.database_url)
    templates = make_templates(settings.display_time_zone, settings.aircall_call_url)
    broadcaster = Broadcaster(engine, poll_seconds=settings.live_poll_seconds)
    hub = live.Hub(broadcaster, engine, templates, settings.record_base_url)
    writer = IntakeWriter(
        engine, region=settings.default_region, log_delay=settings.task_log_delay_seconds
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running = None
        if worker:
            running = make_worker(make_context(settings, engine))
            running.start()
        app.state.worker = running
        broadcaster.start()
        hub.start()
        try:
            yield
        finally:
            await run_in_threadpool(writer.stop)
            await hub.stop()
            await broadcaster.stop()
            if running is not None:
                await running.stop()
            admin_client = getattr(app.state, "admin_salesforce", None)
            if admin_client is not None:
                admin_client.close()

    https = settings.public_url.startswith("https://")  # TLS may end at a proxy in front

    def session_key() -> str:
        return accounts.session_secret(engine, settings.session_secret.get_secret_value())

    receiver = webhooks.AircallReceiver(settings, engine, writer, broadcaster)
    app = Callbridge(
        direct={"/webhooks/aircall": receiver},
        routes=[
            Route("/healthz", healthz),
            # Served ahead of the middleware (``Callbridge``); listed for the 405 to other methods.
            Route("/webhooks/aircall", receiver, methods=["POST"]),
            # Without the URL's secret: a fault saying so, not a bare 404.
            Route(
                "/webhooks/salesforce/outbound-message", outbound.outbound_message, methods=["POST"]
            ),
            Route(
                "/webhooks/salesforce/outbound-message/{token}",
                outbound.outbound_message,
                methods=["POST"],
            ),
            Route("/", dashboard.dashboard),
            Route("/signin", auth.signin_form, methods=["GET"]),
            Route("/signin", auth.signin, methods=["POST"]),
            Route("/signout", auth.signout, methods=["POST"]),
            Route("/review", review.review_page),
            Route("/review/resync", review.bulk_resync, methods=["POST"]),
            Route("/review/batches/{batch_id:int}", review.batch_page),
            Route("/calls/{call_id:int}", review.call_page),
            Route("/calls/{call_id:int}/resync", review.resync_call, methods=["POST"]),
            Route("/calls/{call_id:int}/caller", dashboard.caller_panel),
            Route("/calls/{call_id:int}/actions", dashboard.call_actions),
            Route("/calls/{call_id:int}/disposition", dashboard.set_disposition, methods=["POST"]),
            Route("/calls/{call_id:int}/lead", dashboard.create_lead, methods=["POST"]),
            Route("/calls/{call_id:int}/pick", dashboard.pick_record, methods=["POST"]),
            Route("/charts", review.charts_page),
            Route("/automations", builder.automations_page),
            Route("/automations/new", builder.new_page, methods=["GET"]),
            Route("/automations/new", builder.create, methods=["POST"]),
            Route("/automations/preview", builder.preview, methods=["POST"]),
            Route("/automations/{automation_id:int}", builder.edit_page, methods=["GET"]),
            Route("/automations/{automation_id:int}", builder.update, methods=["POST"]),
            Route(
                "/automations/{automation_id:int}/enabled", builder.set_enabled, methods=["POST"]
            ),
            Route(
                "/automations/{automation_id:int}/restore", builder.restore_page, methods=["GET"]
            ),
            Route("/automations/{automation_id:int}/restore", builder.restore, methods=["POST"]),
            Route("/automations/mappings", mappings.mappings_page),
            Route("/automations/mappings/{sobject}", mappings.mapping_page, methods=["GET"]),
            Route("/automations/mappings/{sobject}", mappings.save_mapping, methods=["POST"]),
            Route("/automations/dispositions", dispositions.dispositions_page),
            Route(
                "/automations/dispositions/{key}", dispositions.save_disposition, methods=["POST"]
            ),
            Route("/settings/agents", admin.agents_page, methods=["GET"]),
            Route("/settings/agents", admin.map_agent, methods=["POST"]),
            Route("/settings/users/signout", admin.sign_out_everywhere, methods=["POST"]),
            Route("/settings/backfill", admin.start_backfill, methods=["POST"]),
            Route("/untagged", admin.untagged_page),
            *connections.ROUTES,
            *connect_salesforce.ROUTES,
            *connect_aircall.ROUTES,
            *health.ROUTES,
            *metrics.ROUTES,
            WebSocketRoute("/live", live.live),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(security.SecurityHeaders, https=https),
            Middleware(security.BodyLimit, limits={"/signin": SIGN_IN_BODY}),
            Middleware(
                security.Sessions,
                secret=session_key,
                max_age=settings.session_max_age_seconds,
                secure=settings.session_cookie_secure if not https else True,
            ),
        ],
        exception_handlers={**errors.HANDLERS, HTTPException: auth.http_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.templates = templates
    app.state.live = broadcaster
    app.state.intake = writer
    app.state.hub = hub
    return app
