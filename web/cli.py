"""The ``callbridge`` command: serve, worker, migrate, emulate, demo. Reads Settings once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import click
import uvicorn
from pydantic import ValidationError
from sqlalchemy import Engine

from integrations import logs
from integrations.errors import NotConfigured
from integrations.settings import Settings
from integrations.store import db
from integrations.sync.jobs.worker import make_context
from integrations.sync.runtime import make_worker, prepare


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise click.ClickException(f"{name}: {first['msg']}") from None


def _production() -> tuple[Settings, Engine]:
    """Settings with every credential production needs, and a migrated database."""
    settings = _settings()
    try:
        settings.require_credentials()
    except NotConfigured as exc:
        raise click.ClickException(str(exc)) from None
    engine = db.make_engine(settings.database_url)
    prepare(engine)
    return settings, engine


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def main(log_level: str) -> None:
    """Callbridge: Aircall and Salesforce kept in sync, in real time."""
    logs.setup(log_level.upper())


@main.group()
def user() -> None:
    """Accounts that sign in to the dashboard and the review pages."""


def _new_password() -> str:
    """Asked twice on a terminal; else CALLBRIDGE_PASSWORD (scripts, containers)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    password = os.environ.get("CALLBRIDGE_PASSWORD", "")
    if not password:
        raise click.ClickException("no terminal to ask on: set CALLBRIDGE_PASSWORD")
    return password


@user.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["agent", "manager"]), required=True)
def user_add(email: str, role: str) -> None:
    """Create an account. An agent's EMAIL is the one of their Aircall and Salesforce users.

    The password is asked for; without a terminal it is read from CALLBRIDGE_PASSWORD.
    """
    from integrations.errors import BadInput
    from integrations.store import accounts

    password = _new_password()
    settings = _settings()
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
    try:
        created = accounts.add_user(engine, email, role, password)
    except BadInput as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {created.role} {created.email}")


@user.command("password")
@click.argument("email")
def user_password(email: str) -> None:
    """Set a new password; every session of the account ends (sign in again everywhere).

    The password is asked for; without a terminal it is read from CALLBRIDGE_PASSWORD.
    """
    from integrations.errors import BadInput
    from integrations.store import accounts

    password = _new_password()
    engine = db.make_engine(_settings().database_url)
    db.migrate(engine)
    try:
        changed = accounts.set_password(engine, email, password)
    except BadInput as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new password for {changed.email}; every session ended")


@user.command("signout")
@click.argument("email")
def user_signout(email: str) -> None:
    """Sign EMAIL out everywhere (as the Agents page's button does)."""
    from integrations.errors import BadInput
    from integrations.store import accounts

    engine = db.make_engine(_settings().database_url)
    db.migrate(engine)
    try:
        ended = accounts.end_sessions(engine, email)
    except BadInput as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{ended} session{'' if ended == 1 else 's'} ended")


@main.command("new-secret-key")
def new_secret_key() -> None:
    """Print a new CALLBRIDGE_SECRET_KEY (a Fernet key) for sealing stored credentials."""
    from integrations.secrets import new_key

    click.echo(new_key())


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = _settings()
    prepare(db.make_engine(settings.database_url))
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--no-worker", is_flag=True, help="Serve the web tier only; run `callbridge worker` beside it."
)
def serve(host: str, port: int, no_worker: bool) -> None:
    """Run the app (and, by default, the queue worker) for production."""
    from web.app import create_app

    settings, engine = _production()
    app = create_app(settings, engine=engine, worker=not no_worker)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        proxy_headers=True,
        server_header=False,
    )


@main.command()
@click.option(
    "--concurrency", type=int, default=None, help="Jobs run at once (WORKER_CONCURRENCY)."
)
def worker(concurrency: int | None) -> None:
    """Run a queue worker process (add as many as the load needs)."""

    settings, engine = _production()

    async def run() -> None:
        running = make_worker(make_context(settings, engine), concurrency=concurrency)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running.start()
        await stop.wait()
        await running.stop()

    asyncio.run(run())


@main.command()
def doctor() -> None:
    """Run every Health check: one line each, ``ok`` or the problem and its fix; exit 1 when
    any is a problem."""
    from integrations.health import report

    settings = _settings()
    engine = db.make_engine(settings.database_url)
    prepare(engine)

    async def run() -> list:
        ctx = make_context(settings, engine)
        try:
            return await report.run(ctx)
        finally:
            await ctx.aircall.aclose()
            ctx.salesforce.close()

    lines = asyncio.run(run())
    for line in lines:
        click.echo(line.text())
    if any(not line.ok for line in lines):
        sys.exit(1)


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 date-time; without an offset it is read as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-06-19T08:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command()
@click.option("--since", required=True, callback=_moment, help="ISO 8601 start (UTC by default).")
@click.option("--until", callback=_moment, help="ISO 8601 end  [default: now]")
@click.option("--wait", is_flag=True, help="Run a worker here until the queued calls are logged.")
def backfill(since: datetime, until: datetime | None, wait: bool) -> None:
    """Log the calls Aircall holds whose webhooks never came (an outage); calls already synced
    are left alone. Without --wait, a running worker logs them."""
    from integrations.errors import CallbridgeError
    from integrations.sync.recovery import backfill as recovery

    settings, engine = _production()

    async def run() -> None:
        running = make_worker(make_context(settings, engine))
        try:
            report = await recovery.backfill(running.ctx, since, until)
            click.echo(report.summary())
            if wait and report.queued:
                running.start()
                counts = await asyncio.to_thread(recovery.progress, engine, report)
                while not recovery.settled(counts):
                    await asyncio.sleep(1.0)
                    counts = await asyncio.to_thread(recovery.progress, engine, report)
                click.echo(f"logged {counts.get('done', 0)}, failed {counts.get('failed', 0)}")
        except CallbridgeError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await running.stop()

    asyncio.run(run())


@main.command("register-webhook")
def register_webhook() -> None:
    """Create Callbridge's Aircall webhook at PUBLIC_URL, or update and re-enable it."""
    from integrations.errors import CallbridgeError
    from integrations.sync.connect import aircall

    settings, engine = _production()
    try:
        done = asyncio.run(aircall.register(settings, engine, by="callbridge register-webhook"))
    except CallbridgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"webhook {done['webhook_id']} sends {len(done['events'])} events to {done['url']}")
    if done.get("gap"):
        since, until = (datetime.fromtimestamp(done["gap"][k], UTC) for k in ("since", "until"))
        click.echo(
            f"calls may have been missed meanwhile: callbridge backfill "
            f"--since {since:%Y-%m-%dT%H:%M:%SZ} --until {until:%Y-%m-%dT%H:%M:%SZ}"
        )


@main.command()
@click.argument("service", type=click.Choice(["aircall", "salesforce"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=int, help="0 picks a free port.")
@click.option("--tls-dir", default="emulator-tls", show_default=True, type=click.Path())
def emulate(service: str, host: str, port: int, tls_dir: str) -> None:
    """Run the Aircall or Salesforce emulator alone, on loopback, until Ctrl-C."""
    import threading
    from pathlib import Path

    from integrations.loopback import serve

    if service == "aircall":
        from integrations.aircall.emulator import Company, create_app

        company = Company()
        server = serve(create_app(company), host=host, port=port)
        details = f"API id {company.api_id}, API token {company.api_token}"
    else:
        from integrations.salesforce.emulator import Org, make_tls
        from integrations.salesforce.emulator import create_app as sf_app

        org = Org()
        ca, cert, key = make_tls(Path(tls_dir))
        server = serve(
            sf_app(org),
            host=host,
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            url_host="localhost",
        )
        details = (
            f"client id {org.client_id}, client secret {org.client_secret}, "
            f"org id {org.org_id}, CA {ca} (use as SSL_CERT_FILE and REQUESTS_CA_BUNDLE)"
        )
    with server as running:
        click.echo(f"{service} emulator at {running.url}: {details}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("stopping")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", default="demo-data", show_default=True, type=click.Path())
@click.option("--calls", default=500, show_default=True, help="Calls to generate.")
@click.option("--pace", default=0.05, show_default=True, help="Real seconds per call second.")
def demo(host: str, port: int, data_dir: str, calls: int, pace: float) -> None:
    """The app with emulated Aircall and Salesforce, seeded data and live call traffic."""
    from pathlib import Path

    from web import demo as demo_module

    demo_module.run(host, port, Path(data_dir), calls, pace)


if __name__ == "__main__":
    sys.exit(main())
