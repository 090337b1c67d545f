"""Chaos: calls go on while everything that can fail does; at the end, one Task per call.

PostgreSQL; the web tier and two workers as separate processes (``callbridge worker``), each
worker reaching the database through a link this script can cut. Meanwhile: Salesforce answers
503 now and then, creates whose answer never comes (Salesforce did the work; the client times
out), expired sessions; Aircall answers 429; a worker is SIGKILLed every ``--kill-every``
seconds and started again; once, both workers' database links are cut for ``--outage`` seconds.
Then the faults stop and the queue drains. Printed: calls sent, calls with no Task (lost),
calls with more than one (duplicated), Salesforce requests per call.

A benchmark, not a test: CI does not run it.

    .venv/bin/python bench/chaos.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import _calls
import _stack
from sqlalchemy import make_url

from integrations.aircall.emulator import Fault as AircallFault
from integrations.aircall.emulator import WebhookSender
from integrations.loopback import TcpProxy, tcp_proxy
from integrations.salesforce.emulator import Fault

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TASK = r"/sobjects(/Task)?/?$"  # the single create and the batched one


@contextmanager
def worker(env: dict[str, str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """A ``callbridge worker`` process, restartable: the dict holds the current one."""
    holder = {"process": _start(env)}
    try:
        yield holder
    finally:
        process = holder["process"]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", "--log-level", "ERROR", "worker"], env=env
    )


def through(url: str, link: TcpProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=link.port).render_as_string(False)


def faults(emu: _stack.Emulators, stop: threading.Event, rng: random.Random) -> None:
    """Every half second, a few planned failures for the requests to come."""
    org, company = emu.org, emu.company
    while not stop.wait(0.5):
        if rng.random() < 0.5:
            org.faults.add(Fault(path=TASK, status=503, body=[{"errorCode": "SERVER_UNAVAILABLE"}]))
        if rng.random() < 0.3:
            org.faults.add(Fault(method="POST", path=TASK, kind="after_commit_delay", delay=8.0))
        if rng.random() < 0.1:
            org.faults.add(Fault(kind="expire_session"))
        if rng.random() < 0.3:
            company.faults.add(AircallFault(method="POST", status=429, reset=int(time.time()) + 2))


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.set_defaults(database_url=PG)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--rate", type=float, default=5.0, help="calls started per second (5)")
    p.add_argument("--callers", type=int, default=100)
    p.add_argument("--kill-every", type=float, default=30.0, help="seconds between SIGKILLs")
    p.add_argument("--outage", type=float, default=5.0, help="database outage, seconds")
    args = p.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("chaos runs on PostgreSQL: --database-url postgresql+psycopg://...")
    rng = random.Random(11)
    with _stack.scratch_database(args.database_url) as url, ExitStack() as stack:
        _stack.header("Chaos: faults, kills and a database outage; one Task per call?", url)
        emu = stack.enter_context(_stack.emulators())
        settings = {"TASK_LOG_DELAY_SECONDS": "0", "SALESFORCE_TIMEOUT_SECONDS": "5"}
        settings |= {"JOB_LEASE_SECONDS": "10", "RETRY_BASE_SECONDS": "0.5"}
        env = {**os.environ, **emu.app_env(url), **settings}
        web = stack.enter_context(_stack.server_process("receiver", env))
        emu.company.add_webhook(f"{web.url}/webhooks/aircall", token=_stack.WEBHOOK_TOKEN)
        sender = stack.enter_context(WebhookSender(emu.company))
        pg = make_url(url)
        links = [stack.enter_context(tcp_proxy((pg.host or "127.0.0.1", pg.port or 5432)))]
        links.append(stack.enter_context(tcp_proxy((pg.host or "127.0.0.1", pg.port or 5432))))
        workers = [
            stack.enter_context(worker({**env, "DATABASE_URL": through(url, link)}))
            for link in links
        ]
        engine = stack.enter_context(_stack.engine_for(url))
        print(
            f"load      {args.calls} calls from {args.callers} callers at {args.rate:g}/s; "
            f"web tier + 2 workers (processes); SIGKILL every {args.kill_every:g} s; "
            f"one {args.outage:g} s database outage for both workers"
        )
        print(f"app       {', '.join(f'{k}={v}' for k, v in settings.items())}")
        print()
        people = _calls.seed(emu.org, emu.company, callers=args.callers, contacts=40, leads=20)
        callers = people.callers * -(-args.calls // len(people.callers))
        rng.shuffle(callers)
        traffic = _calls.plan(emu.company, people, callers[: args.calls], rate=args.rate)
        stop = threading.Event()
        chaos = threading.Thread(target=faults, args=(emu, stop, rng), daemon=True)
        chaos.start()
        played = threading.Thread(target=traffic.play, daemon=True)
        started = time.monotonic()
        played.start()
        kills, exits, outage_done, next_kill = 0, 0, False, started + args.kill_every
        env_of = [{**env, "DATABASE_URL": through(url, link)} for link in links]
        while played.is_alive():
            played.join(timeout=0.5)
            now = time.monotonic()
            for n, held in enumerate(workers):  # as a supervisor would (systemd, Kubernetes)
                if held["process"].poll() is not None:
                    held["process"] = _start(env_of[n])
                    exits += 1
            if now >= next_kill:
                victim = kills % 2
                workers[victim]["process"].kill()
                workers[victim]["process"].wait()
                workers[victim]["process"] = _start(env_of[victim])
                kills += 1
                next_kill = now + args.kill_every
            if not outage_done and now - started > args.calls / args.rate / 2:
                for link in links:
                    link.cut()
                time.sleep(args.outage)  # the outage itself: its length is the point
                for link in links:
                    link.restore()
                outage_done = True
        stop.set()
        chaos.join()
        emu.org.faults.clear()
        emu.company.faults.clear()
        sender.drain(timeout=300)
        _calls.settled(engine, timeout=900)
        took = time.monotonic() - started
        ids = {str(call.id) for call in traffic.calls}
        per_call = Counter(t["CallObject"] for t in emu.org.records("Task") if t["CallObject"])
        lost = len(ids - set(per_call))
        duplicated = sum(1 for c in ids if per_call.get(c, 0) > 1)
        health = _calls.job_health(engine)
    print(
        f"ran       {took:.0f} s; {kills} worker kills, {exits} restarts of a worker that exited "
        f"on its own (the database down as it started); {health}"
    )
    print(f"calls     {len(ids)} sent, {lost} lost (no Task), {duplicated} duplicated (> 1 Task)")
    print(f"salesforce {emu.org.api_used} requests: {emu.org.api_used / len(ids):.2f} per call")
    print(f"verdict   {_stack.verdict(lost == 0 and duplicated == 0)}")


if __name__ == "__main__":
    main()
