"""Salesforce requests per call with the calls' writes batched (sObject Collections), against the
same traffic with batching off (``SALESFORCE_BATCH_WINDOW_SECONDS=0``) in the same run.

Three loads, each on a fresh database, callers already known to Callbridge (looked up once, as
after their first call), ``TASK_LOG_DELAY_SECONDS=0``:

- quiet: one call at a time, 3 s apart (each ends well after the last one's Task is written):
  ``call.ended`` -> Task final, p50/p99;
- steady: ``--rate`` calls ending per second for ``--seconds``: requests per call, p99;
- backfill: ``--backfill`` calls Aircall holds whose webhooks never came, logged by
  ``callbridge backfill``: requests per call;
- resync: ``--resync`` calls whose Task Salesforce refused, then a bulk re-sync of the failed
  calls once the refusal is fixed: requests per call of the re-sync;
- new: a backfill of ``--new`` calls from as many new callers (Contacts in Salesforce that
  Callbridge has never looked up): SOSL searches per new caller (each alone would be one).

Requests are the Salesforce emulator's (``Org.api_used``) for the measured traffic only.

    .venv/bin/python bench/write_batching.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import _calls
import _stack
from call_to_task import timings

from integrations.phones import to_e164
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.emulator import Fault
from integrations.settings import Settings
from integrations.sync.callers.matching import Policy, caller_decision
from integrations.sync.review.browse import Filters
from integrations.sync.review.resync import start_bulk_resync

TARGETS = {"steady": 0.3, "backfill": 0.02, "resync": 0.02}
STEADY_P99 = 3.0  # seconds, call.ended -> Task final
QUIET_SLOWDOWN = 1.10  # quiet p99 with batching on, at most this times batching off


@dataclass
class Result:
    calls: int
    logged: int
    requests: int
    p50: float | None = None
    p99: float | None = None
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def per_call(self) -> float:
        return self.requests / self.logged if self.logged else float("inf")


def known(flow: _stack.Flow, people: _calls.People, env: dict[str, str]) -> None:
    """Every caller a Contact Callbridge has already looked up (as after its first call)."""
    settings = Settings(_env_file=None, **{key.lower(): value for key, value in env.items()})
    trusted = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ.update({name: env[name] for name in trusted})  # the emulator's test CA, for now
    sf = SalesforceClient(settings)
    try:
        for i, caller in enumerate(people.callers):
            fields = {"FirstName": "Pat", "LastName": f"Known{i}", "Phone": caller}
            flow.org.insert("Contact", fields)
            people.known[caller] = "Contact"
            e164 = str(to_e164(caller, settings.default_region))
            caller_decision(
                flow.engine,
                sf,
                e164,
                region=settings.default_region,
                max_age=3600,
                policy=Policy.from_settings(settings),
            )
    finally:
        sf.close()
        for name, value in trusted.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def live(flow: _stack.Flow, people: _calls.People, callers: list[str], rate: float) -> Result:
    kinds = {"inbound_answered": 3, "outbound_answered": 1}
    traffic = _calls.plan(
        flow.company, people, callers, rate=rate, comment_after_end=0, kinds=kinds
    )
    before, kinds = flow.org.api_used, flow.org.requests.copy()
    traffic.play()
    flow.sender.drain(timeout=180)
    _calls.settled(flow.engine, timeout=180)
    ids = [call.id for call in traffic.calls]
    took = sorted(timings(flow.engine, ids).values())
    logged = {t["CallObject"] for t in flow.org.records("Task")} & {str(c) for c in ids}
    return Result(
        len(ids),
        len(logged),
        flow.org.api_used - before,
        _stack.percentile(took, 50) if took else None,
        _stack.percentile(took, 99) if took else None,
        flow.org.requests - kinds,
    )


def backfill(flow: _stack.Flow, people: _calls.People, url: str, count: int) -> Result:
    """``count`` ended calls Aircall holds and never delivered, then ``callbridge backfill``."""
    company = flow.company
    (webhook,) = company.list_webhooks()
    company.update_webhook(webhook["webhook_id"], {"active": False})
    start = int(time.time()) - 3 * 3600
    ids = []
    for i in range(count):
        at = start + i * 3
        call = company.start_call(
            direction="inbound",
            external=people.callers[i % len(people.callers)],
            number_id=people.number_id,
            user_id=people.agents[i % len(people.agents)],
            at=at,
        )
        company.answer(call["id"], user_id=people.agents[i % len(people.agents)], at=at + 1)
        company.hangup(call["id"], at=at + 2)
        company.end(call["id"])
        ids.append(call["id"])
    before, kinds = flow.org.api_used, flow.org.requests.copy()
    since = datetime.fromtimestamp(start - 60, UTC).isoformat()
    env = {**os.environ, **flow.emulators.app_env(url)}
    subprocess.run(  # noqa: S603  (our own CLI, our arguments)
        [sys.executable, "-m", "web.cli", "--log-level", "WARNING", "backfill", "--since", since],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _calls.settled(flow.engine, timeout=600)
    logged = {t["CallObject"] for t in flow.org.records("Task")} & {str(c) for c in ids}
    return Result(count, len(logged), flow.org.api_used - before, kinds=flow.org.requests - kinds)


PICKLIST = [
    {
        "message": "bad value for restricted picklist field: Inbound",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["CallType"],
    }
]


def resync(flow: _stack.Flow, people: _calls.People, callers: list[str], rate: float) -> Result:
    """Calls whose Task Salesforce refused; the refusal fixed, a manager's bulk re-sync of
    every failed call (what "Re-sync all failed calls" does)."""
    refusal = Fault(
        method="POST", path=r"/sobjects(/Task)?/?$", status=400, body=PICKLIST, times=None
    )
    flow.org.faults.add(refusal)
    kinds = {"inbound_answered": 1}
    traffic = _calls.plan(
        flow.company, people, callers, rate=rate, comment_after_end=0, kinds=kinds
    )
    traffic.play()
    flow.sender.drain(timeout=180)
    _calls.settled(flow.engine, timeout=180)
    flow.org.faults.clear()
    before, seen = flow.org.api_used, flow.org.requests.copy()
    start_bulk_resync(flow.engine, Filters(status="failed"), "UTC", "bench")
    _calls.settled(flow.engine, timeout=600)
    ids = {str(call.id) for call in traffic.calls}
    logged = {t["CallObject"] for t in flow.org.records("Task")} & ids
    return Result(len(ids), len(logged), flow.org.api_used - before, kinds=flow.org.requests - seen)


def run(url: str, load: str, batching: bool, args: object) -> Result:
    overrides = {"TASK_LOG_DELAY_SECONDS": "0", "SALESFORCE_POLL_SECONDS": "0"}
    if not batching:
        overrides["SALESFORCE_BATCH_WINDOW_SECONDS"] = "0"
    with _stack.scratch_database(url) as scratch, _stack.flow(scratch, overrides) as flow:
        if load == "new":
            people = _calls.seed(
                flow.org, flow.company, callers=args.new, contacts=args.new, leads=0
            )
            _calls.warm_up(flow, people)
            return backfill(flow, people, scratch, args.new)
        people = _calls.seed(flow.org, flow.company, callers=args.callers, contacts=0, leads=0)
        known(flow, people, flow.emulators.app_env(scratch))
        _calls.warm_up(flow, people)
        callers = people.callers * -(-max(args.backfill, 1000) // len(people.callers))
        if load == "quiet":
            # Alone: a call's steps take up to 2.7 s, so each ends well after the last one's Task.
            return live(flow, people, callers[: args.quiet], rate=1 / 3.0)
        if load == "steady":
            return live(flow, people, callers[: int(args.rate * args.seconds)], rate=args.rate)
        if load == "resync":
            return resync(flow, people, callers[: args.resync], rate=20.0)
        return backfill(flow, people, scratch, args.backfill)


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.add_argument("--callers", type=int, default=200)
    p.add_argument("--rate", type=float, default=5.0, help="steady: calls per second (5)")
    p.add_argument("--seconds", type=float, default=120.0, help="steady: how long (120)")
    p.add_argument("--quiet", type=int, default=20, help="quiet: calls, 3 s apart (20)")
    p.add_argument("--backfill", type=int, default=2000, help="backfill: calls (2000)")
    p.add_argument("--resync", type=int, default=500, help="resync: failed calls (500)")
    p.add_argument("--new", type=int, default=200, help="new: calls, each a new caller (200)")
    p.add_argument(
        "--loads",
        default="quiet,steady,backfill,resync,new",
        help="which loads, comma-separated (default: all five)",
    )
    args = p.parse_args()
    url = args.database_url
    with _stack.scratch_database(url) as scratch:
        _stack.header("Salesforce writes batched: requests per call, batching off vs on", scratch)
    print(
        f"callers   {args.callers}, all Contacts Callbridge has looked up already (new: "
        f"{args.new} it has not); TASK_LOG_DELAY_SECONDS=0, SALESFORCE_POLL_SECONDS=0"
    )
    print()
    print(
        f"  {'load':9} {'batching':9} {'calls':>6} {'logged':>7} {'requests':>9} "
        f"{'per call':>9} {'p50':>9} {'p99':>9}"
    )
    results: dict[tuple[str, bool], Result] = {}
    loads = [load for load in args.loads.split(",") if load]
    for load in loads:
        for batching in (False, True):
            r = results[(load, batching)] = run(url, load, batching, args)
            p50 = _stack.ms(r.p50) if r.p50 is not None else "-"
            p99 = _stack.ms(r.p99) if r.p99 is not None else "-"
            print(
                f"  {load:9} {'on' if batching else 'off':9} {r.calls:6d} {r.logged:7d} "
                f"{r.requests:9d} {r.per_call:9.3f} {p50:>9} {p99:>9}",
                flush=True,
            )
            print("            " + ", ".join(f"{k} {n}" for k, n in r.kinds.most_common()))
    print()
    if "quiet" in loads:
        quiet_off, quiet_on = results[("quiet", False)], results[("quiet", True)]
        ratio = (quiet_on.p99 or 0) / (quiet_off.p99 or 1)
        print(
            f"quiet: p99 on/off {ratio:.2f} (target <= {QUIET_SLOWDOWN}: "
            f"{_stack.verdict(ratio <= QUIET_SLOWDOWN)}); requests per call "
            f"{quiet_on.per_call:.2f} (a lone call still costs about one)"
        )
    if "steady" in loads:
        steady = results[("steady", True)]
        print(
            f"steady: {steady.per_call:.3f} requests per call (target <= {TARGETS['steady']}: "
            f"{_stack.verdict(steady.per_call <= TARGETS['steady'])}), "
            f"{results[('steady', False)].per_call / steady.per_call:.1f}x fewer than batching "
            f"off; p99 {_stack.ms(steady.p99 or 0)} (target <= {STEADY_P99:g} s: "
            f"{_stack.verdict((steady.p99 or 1e9) <= STEADY_P99)})"
        )
    for load in ("backfill", "resync"):
        if load not in loads:
            continue
        bulk, target = results[(load, True)], TARGETS[load]
        print(
            f"{load}: {bulk.per_call:.3f} requests per call (target <= {target}: "
            f"{_stack.verdict(bulk.per_call <= target)}), "
            f"{results[(load, False)].per_call / bulk.per_call:.1f}x fewer than batching off"
        )
    if "new" in loads:
        off, on = results[("new", False)], results[("new", True)]
        print(
            f"new: {on.kinds['GET search'] / on.calls:.3f} SOSL searches per new caller "
            f"({on.kinds['GET search']} for {on.calls}; batching off "
            f"{off.kinds['GET search'] / off.calls:.3f}), {on.per_call:.3f} requests per call"
        )


if __name__ == "__main__":
    main()
