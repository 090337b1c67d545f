"""What the benchmark scripts share: the machine, a scratch database, servers, the emulators.

The app under test always runs in its own process under uvicorn (``_server.py``), as in
production; the emulators and the measuring code run in the script's process.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.aircall.emulator import Company, WebhookSender
from integrations.aircall.emulator import create_app as aircall_app
from integrations.loopback import Running, serve, wait_for
from integrations.salesforce.emulator import Org, make_tls
from integrations.salesforce.emulator import create_app as salesforce_app
from integrations.settings import Settings
from integrations.store import db
from integrations.sync.automations import dispositions
from integrations.sync.runtime import prepare

BENCH = Path(__file__).resolve().parent
WEBHOOK_TOKEN = secrets.token_hex(16)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--database-url",
        help="postgresql+psycopg://USER@HOST:PORT/DB: a scratch database bench_<random> is "
        "created beside DB and dropped after. Default: a SQLite file in a temporary directory.",
    )
    return p


# -- figures --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def machine_busy() -> float | None:
    """CPU seconds spent by every core on anything but idling, since boot; None off Linux."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(pid: int, timeout: float = 15.0) -> None:
    """Wait until a process uses under a tenth of a core (its backlog, if any, is done)."""
    last = cpu_seconds(pid)
    if last is None:
        return

    def quiet() -> bool:
        nonlocal last
        time.sleep(0.25)
        now = cpu_seconds(pid) or 0.0
        calm, last = now - last < 0.025, now
        return calm

    wait_for(quiet, timeout=timeout, interval=0)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(database_url: str) -> list[str]:
    """Lines describing where the figures come from."""
    lines = [
        f"machine   {_cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, load average {os.getloadavg()[0]:.2f} at start",
        f"python    {platform.python_version()} ({platform.python_implementation()})",
    ]
    if database_url.startswith("sqlite"):
        lines.append(
            f"database  SQLite {sqlite3.sqlite_version}, file on "
            f"{Path(tempfile.gettempdir())}, WAL, synchronous=NORMAL"
        )
    else:
        url = make_url(database_url)
        with psycopg.connect(_libpq(database_url)) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
            fsync = conn.execute("SHOW fsync").fetchone()[0]
        lines.append(
            f"database  PostgreSQL {version} at {url.host}:{url.port or 5432}, "
            f"synchronous_commit={sync}, fsync={fsync}"
        )
    return lines


def header(title: str, database_url: str) -> None:
    print(title)
    print("=" * len(title))
    for line in machine(database_url):
        print(line)
    print()


# -- database -------------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A fresh database, prepared as the app's start does (migrations, shipped automations and
    disposition rules, the rules off: a fresh org's picklists lack their target values, and the
    benchmarks measure logging): a SQLite file, or ``bench_<random>`` beside ``url``'s."""
    if not url:
        with tempfile.TemporaryDirectory(prefix="callbridge-bench-") as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'callbridge.db'}"
            _prepare(sqlite_url)
            yield sqlite_url
        return
    admin = make_url(url)
    if not admin.drivername.startswith("postgresql"):
        raise SystemExit("--database-url: only postgresql+psycopg://... URLs are supported")
    name = f"bench_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        scratch = admin.set(drivername="postgresql+psycopg", database=name)
        scratch_url = scratch.render_as_string(hide_password=False)
        _prepare(scratch_url)
        yield scratch_url
    finally:
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _prepare(url: str) -> None:
    engine = db.make_engine(url)
    prepare(engine)
    for rule in dispositions.rules(engine):
        dispositions.set_rule(engine, rule.key, by="bench", enabled=False)
    engine.dispose()


def enable_disposition_rules(url: str) -> None:
    with engine_for(url) as engine:
        for rule in dispositions.rules(engine):
            dispositions.set_rule(engine, rule.key, by="bench", enabled=True)


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = db.make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


# -- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """An app served by ``_server.py`` in a child process."""

    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def server_process(
    kind: str, env: dict[str, str] | None = None, stack: str = "httptools"
) -> Iterator[Server]:
    """Run ``_server.py kind`` on a loopback socket bound here (port 0: no race), on uvicorn's
    ``httptools`` + ``uvloop`` (as ``callbridge serve``) or ``h11`` + ``asyncio``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    child_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(  # noqa: S603  (our own arguments)
        [
            sys.executable,
            str(BENCH / "_server.py"),
            kind,
            "--fd",
            str(sock.fileno()),
            "--stack",
            stack,
        ],
        pass_fds=[sock.fileno()],
        env=child_env,
    )
    sock.close()  # the child holds its own copy

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {process.returncode}")
        try:
            return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, interval=0.1)
        yield Server(url, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def app_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment a deployment would set for our app (emulator URLs and credentials)."""
    env = {
        "DATABASE_URL": database_url,
        "AIRCALL_WEBHOOK_TOKENS": WEBHOOK_TOKEN,
    }
    env.update({key.upper(): value for key, value in settings.items()})
    return env


# -- the two emulators ----------------------------------------------------------------------


class RequestLog:
    """ASGI wrapper counting an emulator's API requests by kind (``SOQL User``, ...)."""

    def __init__(self, app: ASGIApp, kind: Callable[[Scope], str | None]) -> None:
        self.app = app
        self.kind = kind
        self.kinds: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            kind = self.kind(scope)
            if kind:
                self.kinds[kind] += 1
        await self.app(scope, receive, send)


def _aircall_kind(scope: Scope) -> str | None:
    if not scope["path"].startswith("/v1/"):
        return None
    return f"{scope['method']} {re.sub(r'/[0-9]+', '/{id}', scope['path'])}"


def _salesforce_kind(scope: Scope) -> str | None:
    if "/services/data/" not in scope["path"]:
        return None
    method = scope["method"]
    parts = scope["path"].split("/services/data/", 1)[1].split("/")[1:]
    resource = parts[0] if parts else ""
    if resource in ("query", "queryAll"):
        q = parse_qs(scope["query_string"].decode()).get("q", [""])[0]
        found = re.search(r"\bFROM\s+(\w+)", q, re.IGNORECASE)
        return f"SOQL {found[1] if found else '?'}"
    if resource in ("search", "parameterizedSearch"):
        return "SOSL search"
    if resource == "sobjects" and len(parts) > 1:
        action = {"POST": "create", "PATCH": "update", "GET": "read", "DELETE": "delete"}
        return f"{action.get(method, method)} {parts[1]}"
    return f"{method} {resource}"


@dataclass
class Emulators:
    org: Org
    company: Company
    salesforce: Running
    aircall: Running
    ca: str
    salesforce_log: RequestLog
    aircall_log: RequestLog

    def app_env(self, database_url: str) -> dict[str, str]:
        org = self.org
        return {
            **app_env(
                database_url,
                aircall_api_url=self.aircall.url,
                aircall_api_id=self.company.api_id,
                aircall_api_token=self.company.api_token,
                salesforce_login_url=self.salesforce.url,
                salesforce_client_id=org.client_id,
                salesforce_client_secret=org.client_secret,
                salesforce_org_id=org.org_id,
            ),
            # The emulator's test CA, trusted the standard way (as a deployment trusts a custom CA).
            "SSL_CERT_FILE": self.ca,
            "REQUESTS_CA_BUNDLE": self.ca,
        }


@contextmanager
def emulators() -> Iterator[Emulators]:
    """The Salesforce (TLS) and Aircall emulators on loopback, in this process."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="callbridge-tls-")))
        ca, cert, key = make_tls(tmp)
        org, company = Org(), Company()  # Aircall: 120 requests a minute, as the real one
        sf_log = RequestLog(salesforce_app(org), _salesforce_kind)
        ac_log = RequestLog(aircall_app(company), _aircall_kind)
        sf = stack.enter_context(
            serve(sf_log, ssl_certfile=cert, ssl_keyfile=key, url_host="localhost")
        )
        ac = stack.enter_context(serve(ac_log))
        yield Emulators(org, company, sf, ac, ca, sf_log, ac_log)


@dataclass
class Flow:
    """The app with its in-process worker (own process), both emulators, webhooks flowing."""

    emulators: Emulators
    app: Server
    engine: Engine
    sender: WebhookSender

    @property
    def org(self) -> Org:
        return self.emulators.org

    @property
    def company(self) -> Company:
        return self.emulators.company


@contextmanager
def flow(database_url: str, overrides: dict[str, str]) -> Iterator[Flow]:
    """Serve everything; ``overrides`` are extra environment settings for the app."""
    with ExitStack() as stack:
        emu = stack.enter_context(emulators())
        env = {**emu.app_env(database_url), **overrides}
        app = stack.enter_context(server_process("app", env))
        emu.company.add_webhook(f"{app.url}/webhooks/aircall", token=WEBHOOK_TOKEN)
        sender = stack.enter_context(WebhookSender(emu.company))
        yield Flow(emu, app, stack.enter_context(engine_for(database_url)), sender)


def settings_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting for the app, e.g. TASK_LOGGED_AT=end (repeatable)",
    )


def overrides(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--setting {pair!r}: expected NAME=VALUE")
        found[name.strip().upper()] = value
    return found


def app_settings(values: dict[str, str], names: list[str]) -> str:
    """The app's effective value of each named setting (environment, overrides, defaults)."""
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in values.items()})
    return ", ".join(
        f"{name.upper()}={getattr(settings, name)}" for name in names if hasattr(settings, name)
    )
