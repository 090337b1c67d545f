"""Webhook intake: deliveries accepted per second, and receive latency, against the ceiling.

Our receiver (the real app, web tier only: ``worker=False``; each event committed before the
200) and a bare Starlette endpoint that only parses the JSON (the ceiling) run the same way:
uvicorn, one process, the options of ``callbridge serve``, on httptools + uvloop (what it runs)
and on h11 + asyncio; each ratio is against the ceiling on the same stack. The load comes from
another process.

    .venv/bin/python bench/webhooks.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _load
import _stack
import uvicorn
from sqlalchemy import func, select

from integrations.store.models import Event

RATIO_TARGET = 0.35
CEILING, RECEIVER = "ceiling, httptools", "receiver, httptools"
P99_TARGET = 0.050
IDS = 10**9  # call ids per run, so no two runs share a delivery


@dataclass
class Measured:
    result: _load.Result
    cpu: float | None  # server CPU seconds during the run
    others: float | None  # CPU seconds of everything but the server and the load generator

    def cpu_text(self) -> str:
        if self.cpu is None or not self.result.answered:
            return "n/a"
        busy = self.cpu / self.result.elapsed
        per = self.cpu / self.result.answered
        text = f"{busy:4.0%} of a core, {per * 1000:.2f} ms/request"
        if self.others is not None:
            text += f"; other processes {self.others / self.result.elapsed:.1f} cores"
        return text


def measure(server: _stack.Server, run: Callable[..., _load.Result], **kwargs: Any) -> Measured:
    """Run the load and note how much CPU the server spent meanwhile."""
    before = _stack.cpu_seconds(server.process.pid)
    busy, generator = _stack.machine_busy(), _stack.children_cpu()
    result = run(f"{server.url}/webhooks/aircall", **kwargs)
    after = _stack.cpu_seconds(server.process.pid)
    busy_after, generator_after = _stack.machine_busy(), _stack.children_cpu()
    if before is None or after is None or busy is None or busy_after is None:
        return Measured(result, None, None)
    others = (busy_after - busy) - (after - before) - (generator_after - generator)
    return Measured(result, after - before, max(others, 0.0))


def stored_events(url: str, first_id: int) -> int:
    with _stack.engine_for(url) as engine, engine.connect() as conn:
        in_run = (Event.call_id >= first_id) & (Event.call_id < first_id + IDS)
        return conn.execute(select(func.count()).where(in_run)).scalar_one()


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=64, help="closed loop (default 64)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    p.add_argument("--rate", type=float, default=1000.0, help="fixed-rate run (default 1000/s)")
    p.add_argument(
        "--load",
        choices=["wrk", "python"],
        default="wrk" if _load.has_wrk() else "python",
        help="closed-loop generator (default: wrk when installed)",
    )
    args = p.parse_args()

    with _stack.scratch_database(args.database_url) as url:
        _stack.header("Webhook intake: POST /webhooks/aircall", url)
        print(
            f"server    uvicorn {uvicorn.__version__}, one process, the options of `callbridge "
            "serve`: httptools + uvloop (what it runs), and h11 + asyncio beside it"
        )
        bodies = _load.templates(_stack.WEBHOOK_TOKEN)
        print(
            f"requests  real Aircall envelopes ({len(bodies)} events per call: created, "
            "ringing_on_agent, answered, tagged, hungup, ended), a new call id every "
            f"{len(bodies)} requests: no duplicates"
        )
        print(
            f"load      {args.load} in its own process; closed loop: {args.connections} "
            f"keep-alive connections for {args.duration:g} s after a 2 s warm-up; "
            f"fixed rate: {args.rate:g}/s for {args.duration:g} s (python asyncio, open loop)"
        )
        print()

        closed, fixed, committed = {}, {}, 0
        ids = iter(range(10**11, 10**12, IDS))
        for name, kind, env, stack in (
            ("ceiling, h11", "ceiling", {}, "h11"),
            ("receiver, h11", "receiver", _stack.app_env(url), "h11"),
            (CEILING, "ceiling", {}, "httptools"),
            (RECEIVER, "receiver", _stack.app_env(url), "httptools"),
        ):
            with _stack.server_process(kind, env, stack) as server:
                common = {"bodies": bodies, "connections": args.connections}
                # Warm-up: imports, statement caches, pooled connections.
                _load.closed_loop(
                    f"{server.url}/webhooks/aircall",
                    first_id=next(ids),
                    duration=2.0,
                    tool=args.load,
                    **common,
                )
                _stack.wait_quiet(server.process.pid)
                first_id = next(ids)
                closed[name] = measure(
                    server,
                    _load.closed_loop,
                    first_id=first_id,
                    duration=args.duration,
                    tool=args.load,
                    **common,
                )
                if name == RECEIVER:
                    committed = stored_events(url, first_id)
                _stack.wait_quiet(server.process.pid)
                fixed[name] = measure(
                    server,
                    _load.open_loop,
                    first_id=next(ids),
                    duration=args.duration,
                    rate=args.rate,
                    **common,
                )

        print(f"Max throughput (closed loop, {args.connections} connections)")
        print(f"  {'':26} {'accepted/s':>10} {'p50':>10} {'p99':>10}  errors  server CPU")
        for name, m in closed.items():
            r = m.result
            bad = r.answered - r.ok + r.errors
            print(
                f"  {name:26} {r.rate:10.0f} {_stack.ms(r.p50):>10} {_stack.ms(r.p99):>10}"
                f"  {bad:6d}  {m.cpu_text()}"
            )
        for stack, ceiling_name, ours_name in (
            ("h11 + asyncio", "ceiling, h11", "receiver, h11"),
            ("httptools + uvloop", CEILING, RECEIVER),
        ):
            base, mine = closed[ceiling_name].result, closed[ours_name].result
            ratio = mine.rate / base.rate if base.rate else 0.0
            print(
                f"  ratio receiver/ceiling on {stack}: {ratio:.2f}"
                + (
                    f" (target >= {RATIO_TARGET}: {_stack.verdict(ratio >= RATIO_TARGET)})"
                    if ours_name == RECEIVER
                    else ""
                )
            )
        ours = closed[RECEIVER].result
        h11 = closed["receiver, h11"].result
        if h11.rate:
            print(f"  receiver httptools + uvloop / h11 + asyncio: {ours.rate / h11.rate:.2f}")
        print(
            f"  events committed: {committed} for {ours.ok} answers 200 "
            "(requests in flight at the cut-off commit uncounted)"
        )
        print()

        print(f"Fixed rate {args.rate:g}/s for {args.duration:g} s (latency from each due time)")
        print(
            f"  {'':26} {'sent':>6} {'200':>6} {'achieved/s':>10} {'p50':>10} {'p99':>10}"
            "  server CPU"
        )
        for name, m in fixed.items():
            r = m.result
            print(
                f"  {name:26} {int(args.rate * args.duration):6d} {r.ok:6d} {r.rate:10.0f} "
                f"{_stack.ms(r.p50):>10} {_stack.ms(r.p99):>10}  {m.cpu_text()}"
            )
        r = fixed[RECEIVER].result
        sent = int(args.rate * args.duration)
        sustained = r.ok == sent and r.rate >= 0.97 * args.rate and r.sent_late < 0.1
        print(
            f"  receiver p99 {_stack.ms(r.p99)} "
            f"(target < {_stack.ms(P99_TARGET)}: {_stack.verdict(r.p99 < P99_TARGET)}); "
            f"rate sustained: {'yes' if sustained else 'NO'} "
            f"({r.ok}/{sent} answered 200 in {r.elapsed:.1f} s)"
        )


if __name__ == "__main__":
    main()
