"""Real servers on loopback, a real database per test, and the two emulators."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

if TYPE_CHECKING:
    from integrations.aircall.emulator import Company, WebhookSender
    from integrations.salesforce.client import SalesforceClient
    from integrations.salesforce.emulator import Org
    from tests.signin import Site

from integrations.loopback import Running, serve
from integrations.settings import Settings
from integrations.store import db
from integrations.sync.runtime import prepare

PG_ADMIN = os.environ.get("CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
WEBHOOK_TOKEN = "0123456789abcdef0123456789abcdef"
OUTBOUND_TOKEN = "outbound-0123456789abcdef0123456789"  # the secret in the T05 URL


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """One test CA for the session, trusted the standard way (as a deployment would)."""
    from integrations.salesforce.emulator import make_tls

    ca, cert, key = make_tls(tmp_path_factory.mktemp("tls"))
    os.environ["SSL_CERT_FILE"] = ca
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    return ca, cert, key


def _postgres_url() -> Iterator[str]:
    name = f"cb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            + f"/{name}"
        )
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: the store and queue tests run on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callbridge.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'callbridge.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    prepare(engine)
    yield engine
    engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "org(profile): the emulated org's profile, 'messy' (the default) or 'pristine'",
    )


@pytest.fixture
def org(request: pytest.FixtureRequest) -> Org:
    """The org of a real customer (``profiles.messy``: blocking duplicate rules, an admin's
    validation rule and trigger, search lag); ``@pytest.mark.org("pristine")`` for a new one."""
    from integrations.salesforce.emulator import profiles

    marker = request.node.get_closest_marker("org")
    return profiles.PROFILES[marker.args[0] if marker else "messy"]()


@pytest.fixture
def salesforce(org: Org, tls: tuple[str, str, str]) -> Iterator[Running]:
    from integrations.salesforce.emulator import create_app as salesforce_app

    _ca, cert, key = tls
    with serve(
        salesforce_app(org), ssl_certfile=cert, ssl_keyfile=key, url_host="localhost"
    ) as srv:
        yield srv


@pytest.fixture
def company() -> Company:
    from integrations.aircall.emulator import Company

    return Company()


@pytest.fixture
def aircall(company: Company) -> Iterator[Running]:
    from integrations.aircall.emulator import create_app as aircall_app

    with serve(aircall_app(company)) as srv:
        yield srv


def make_settings(
    salesforce: Running, aircall: Running, org: Org, database_url: str, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "aircall_api_url": aircall.url,
        "aircall_api_id": "emulator-id",
        "aircall_api_token": SecretStr("emulator-token"),
        "aircall_webhook_tokens": [SecretStr(WEBHOOK_TOKEN)],
        "salesforce_login_url": salesforce.url,
        "salesforce_client_id": org.client_id,
        "salesforce_client_secret": SecretStr(org.client_secret),
        "salesforce_org_id": org.org_id,
        "outbound_message_token": SecretStr(OUTBOUND_TOKEN),
        "salesforce_timeout_seconds": 2.0,
        "retry_base_seconds": 0.05,
        "job_lease_seconds": 3.0,
        "task_log_delay_seconds": 0.0,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)


SettingsWith = Callable[..., Settings]


@pytest.fixture
def settings_with(
    salesforce: Running, aircall: Running, org: Org, database_url: str
) -> SettingsWith:
    """The test settings with some changed: ``settings_with(task_logged_at="end")``."""

    def changed(**extra: object) -> Settings:
        return make_settings(salesforce, aircall, org, database_url, **extra)

    return changed


@pytest.fixture
def settings(settings_with: SettingsWith) -> Settings:
    return settings_with()


@pytest.fixture
def sf(
    salesforce: Running, aircall: Running, org: Org, sqlite_url: str
) -> Iterator[SalesforceClient]:
    """A Salesforce client on the emulated org, for tests of the wire (no store involved)."""
    from integrations.salesforce.client import SalesforceClient

    client = SalesforceClient(make_settings(salesforce, aircall, org, sqlite_url))
    yield client
    client.close()


@dataclass
class Stack:
    """The app with its in-process worker, both emulators, and a webhook sender aimed at it."""

    app: Running
    settings: Settings
    engine: Engine
    org: Org
    company: Company
    sender: WebhookSender


@contextmanager
def running_stack(
    settings: Settings, engine: Engine, org: Org, company: Company, *, worker: bool = True
) -> Iterator[Stack]:
    """Serve the app (with or without its in-process worker) and aim Aircall's webhooks at it."""
    from integrations.aircall.emulator import WebhookSender
    from web.app import create_app

    with serve(create_app(settings, engine=engine, worker=worker)) as app:
        # The webhook's token is the one our settings hold, as after a real set-up.
        company.add_webhook(f"{app.url}/webhooks/aircall", token=WEBHOOK_TOKEN)
        sender = WebhookSender(company)
        sender.start()
        try:
            yield Stack(app, settings, engine, org, company, sender)
        finally:
            sender.stop()


@pytest.fixture
def stack(settings: Settings, engine: Engine, org: Org, company: Company) -> Iterator[Stack]:
    with running_stack(settings, engine, org, company) as running:
        yield running


StackWith = Callable[..., AbstractContextManager[Stack]]


@pytest.fixture
def stack_with(
    settings_with: SettingsWith, engine: Engine, org: Org, company: Company
) -> StackWith:
    """The stack on the test settings with some changed:
    ``with stack_with(log_missed="") as stack:`` (``worker=False`` to serve it without one)."""

    def changed(*, worker: bool = True, **extra: object) -> AbstractContextManager[Stack]:
        return running_stack(settings_with(**extra), engine, org, company, worker=worker)

    return changed


# -- the browser side: the app's pages without emulators (tests/signin.py signs people in) ----


@pytest.fixture
def site(engine: Engine, database_url: str) -> Iterator[Site]:
    from tests.signin import Site
    from web.app import create_app

    settings = Settings(
        _env_file=None,
        database_url=database_url,
        aircall_webhook_tokens=[SecretStr(WEBHOOK_TOKEN)],
        live_poll_seconds=0.05,
        task_log_delay_seconds=0.0,
    )
    app = create_app(settings, engine=engine, worker=False)
    with serve(app) as running:
        yield Site(running.url, engine, settings, app)
