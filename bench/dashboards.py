"""Live dashboards: from a webhook received to its fragment at 200 open dashboards, and the
server's memory with 1,000 open.

The app runs web-tier only (no worker) in its own process; the dashboards are signed-in
WebSocket clients (the ``websockets`` library) in another process, each a manager's dashboard,
so every call goes to every one of them. A call's time at a dashboard is the call's
``events.received_at`` (committed by the server) to the moment that dashboard's client read the
row (``id="call-N"``); both clocks are this machine's. Then the clients open 1,000 dashboards and
the server's resident memory (``VmRSS``) is read, beside its memory with none open.

    .venv/bin/python bench/dashboards.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import _stack
import httpx
from sqlalchemy import func, select

from integrations.store import accounts
from integrations.store.models import Event

TARGET = 0.100
PASSWORD = "bench-password-not-secret"  # noqa: S105  (scratch accounts)
USERS = 20  # managers signed in; the dashboards are spread over their sessions
_ROW = re.compile(rb'id="call-(\d+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- the dashboards (child process) ---------------------------------------------------------


async def _dashboard(
    url: str, cookie: str, arrivals: dict[int, float], opened: asyncio.Event, stop: asyncio.Event
) -> None:
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://") + "/live"
    async with connect(
        ws_url,
        additional_headers={"Cookie": cookie},
        origin=url,  # type: ignore[arg-type]
        max_size=None,
        ping_interval=None,
    ) as ws:
        for _ in range(2):  # the snapshot: the calls table, then the context card
            await ws.recv()
        opened.set()
        reading = asyncio.ensure_future(ws.recv(decode=False))
        halt = asyncio.ensure_future(stop.wait())
        while True:
            done, _ = await asyncio.wait({reading, halt}, return_when=asyncio.FIRST_COMPLETED)
            if halt in done:
                reading.cancel()
                return
            message = reading.result()
            now = time.time()
            for found in _ROW.finditer(message):
                arrivals.setdefault(int(found[1]), now)
            reading = asyncio.ensure_future(ws.recv(decode=False))


async def _clients(url: str, cookies: list[str], count: int) -> None:
    """Open ``count`` dashboards, say "ready N", then on "stop" print the arrival times."""
    stop = asyncio.Event()
    arrivals: list[dict[int, float]] = [{} for _ in range(count)]
    opened = [asyncio.Event() for _ in range(count)]
    tasks = []
    for i in range(count):  # open a few at a time, as a room of agents would
        tasks.append(
            asyncio.create_task(
                _dashboard(url, cookies[i % len(cookies)], arrivals[i], opened[i], stop)
            )
        )
        if i % 50 == 49:
            await asyncio.gather(*(event.wait() for event in opened[: i + 1]))
    await asyncio.gather(*(event.wait() for event in opened))
    print(f"ready {count}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stop.set()
    await asyncio.gather(*tasks)
    print(json.dumps([{str(k): v for k, v in a.items()} for a in arrivals]), flush=True)


def client_main(url: str, count: int) -> None:
    cookies = json.loads(sys.stdin.readline())
    asyncio.run(_clients(url, cookies, count))


# -- the measuring side --------------------------------------------------------------------


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def sign_in(url: str, email: str) -> str:
    """A signed-in session's cookie header."""
    with httpx.Client(base_url=url, timeout=30) as client:
        token = _CSRF.search(client.get("/signin").text)
        if token is None:
            raise RuntimeError("the sign-in form carries no CSRF token")
        answer = client.post(
            "/signin", data={"email": email, "password": PASSWORD, "csrf_token": token[1]}
        )
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in failed: {answer.status_code}")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


class Dashboards:
    """The client process: ``count`` open dashboards."""

    def __init__(self, url: str, cookies: list[str], count: int) -> None:
        self.process = subprocess.Popen(  # noqa: S603  (our own script)
            [sys.executable, __file__, "--clients", str(count), "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        if self.stdin is None or self.stdout is None:
            raise RuntimeError("no pipe to the dashboards")
        self.stdin.write(json.dumps(cookies) + "\n")
        self.stdin.flush()
        line = self.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"dashboards did not open: {line!r}")

    def close(self) -> list[dict[int, float]]:
        self.stdin.write("stop\n")
        self.stdin.flush()
        arrivals = json.loads(self.stdout.readline())
        self.process.wait(timeout=60)
        return [{int(k): v for k, v in a.items()} for a in arrivals]


def call_created(call_id: int) -> bytes:
    data = {
        "id": call_id,
        "direction": "inbound",
        "status": "initial",
        "started_at": int(time.time()),
        "duration": 0,
        "raw_digits": "+1 415-555-0100",
        "user": {"id": 1, "name": "Jane Agent", "email": "jane.agent@example.com"},
        "tags": [],
        "comments": [],
    }
    body = {
        "resource": "call",
        "event": "call.created",
        "timestamp": int(time.time()),
        "token": _stack.WEBHOOK_TOKEN,
        "data": data,
    }
    return json.dumps(body).encode()


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.add_argument("--dashboards", type=int, default=200)
    p.add_argument("--calls", type=int, default=100, help="webhooks, each a new call (100)")
    p.add_argument("--rate", type=float, default=10.0, help="webhooks per second (10)")
    p.add_argument("--idle", type=int, default=1000, help="dashboards for the memory figure")
    p.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    _raise_file_limit()
    if args.clients:
        client_main(args.url, args.clients)
        return

    with _stack.scratch_database(args.database_url) as url:
        _stack.header("Live dashboards: webhook received -> fragment at each dashboard", url)
        with _stack.engine_for(url) as engine:
            for i in range(USERS):
                accounts.add_user(engine, f"manager{i}@example.com", "manager", PASSWORD)
            env = _stack.app_env(url)
            with _stack.server_process("receiver", env) as server:
                pid = server.process.pid
                cookies = [sign_in(server.url, f"manager{i}@example.com") for i in range(USERS)]
                idle_rss = rss_mib(pid)
                print(
                    f"traffic   {args.calls} call.created webhooks at {args.rate:g}/s, each a "
                    f"new call, to {args.dashboards} open manager dashboards ({USERS} sessions)"
                )
                dashboards = Dashboards(server.url, cookies, args.dashboards)
                first = 10_000_000
                with httpx.Client(base_url=server.url, timeout=10) as client:
                    start = time.perf_counter()
                    for i in range(args.calls):
                        due = start + i / args.rate
                        time.sleep(max(0.0, due - time.perf_counter()))
                        answer = client.post(
                            "/webhooks/aircall",
                            content=call_created(first + i),
                            headers={"content-type": "application/json"},
                        )
                        answer.raise_for_status()
                time.sleep(1.0)  # the last fragments on their way
                arrivals = dashboards.close()
                with engine.connect() as conn:
                    received = dict(
                        conn.execute(
                            select(Event.call_id, func.min(Event.received_at)).group_by(
                                Event.call_id
                            )
                        ).all()
                    )
                latencies = [
                    seen[call_id] - received[call_id]
                    for seen in arrivals
                    for call_id in seen
                    if call_id in received
                ]
                expected = args.calls * args.dashboards
                p50 = _stack.percentile(latencies, 50)
                p99 = _stack.percentile(latencies, 99)
                print(
                    f"latency   {len(latencies)} of {expected} fragments arrived; "
                    f"p50 {_stack.ms(p50)}, p99 {_stack.ms(p99)}, max "
                    f"{_stack.ms(max(latencies))}   target p99 < {_stack.ms(TARGET)}: "
                    f"{_stack.verdict(p99 < TARGET and len(latencies) == expected)}"
                )

                time.sleep(0.5)
                before = rss_mib(pid)
                many = Dashboards(server.url, cookies, args.idle)
                time.sleep(1.0)
                loaded = rss_mib(pid)
                many.close()
                print(
                    f"memory    server RSS {idle_rss:.1f} MiB after start, {before:.1f} MiB "
                    f"after the run above, {loaded:.1f} MiB with {args.idle} dashboards open "
                    f"({(loaded - before) * 1024 / args.idle:.1f} KiB per dashboard)"
                )


if __name__ == "__main__":
    main()
