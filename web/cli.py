"""The ``callbridge`` command: serve, worker, migrate, emulate, demo. Reads Settings once."""

from __future__ import annotations

import asyncio
import signal
import sys

import click
import uvicorn
from pydantic import ValidationError

from integrations import logs
from integrations.errors import NotConfigured
from integrations.settings import Settings
from integrations.store import db


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise click.ClickException(f"{name}: {first['msg']}") from None


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
def main(log_level: str) -> None:
    """Callbridge: Aircall and Salesforce kept in sync, in real time."""
    logs.setup(log_level.upper())


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    settings = _settings()
    db.migrate(db.make_engine(settings.database_url))
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

    settings = _settings()
    try:
        settings.require_credentials()
    except NotConfigured as exc:
        raise click.ClickException(str(exc)) from None
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)
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
    from integrations.sync.worker import Worker, make_context

    settings = _settings()
    try:
        settings.require_credentials()
    except NotConfigured as exc:
        raise click.ClickException(str(exc)) from None
    engine = db.make_engine(settings.database_url)
    db.migrate(engine)

    async def run() -> None:
        running = Worker(make_context(settings, engine), concurrency=concurrency)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running.start()
        await stop.wait()
        await running.stop()

    asyncio.run(run())


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
