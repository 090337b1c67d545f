"""Call to Task: from ``call.ended`` received to the call's Task final in Salesforce.

The app (with its in-process worker) runs in its own process under uvicorn; the Aircall and
Salesforce emulators, the webhook sender and the paced call traffic run here. A call's time is
``events.received_at`` of its ``call.ended`` to ``jobs.finished_at`` of its last ``log_call``
job; the Tasks in the Salesforce emulator are then checked (one per call, Completed, duration).
``TASK_LOG_DELAY_SECONDS`` is 0 unless set with ``--setting``: the grace is a wait chosen on
purpose (comments after ``call.ended`` ride along), not the pipeline's latency.

    .venv/bin/python bench/call_to_task.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import random

import _calls
import _stack
from sqlalchemy import Engine, func, select

from integrations.store.models import Event, Job

CONTACTS, LEADS = 15, 10


def timings(engine: Engine, call_ids: list[int]) -> dict[int, float]:
    """Seconds from ``call.ended`` received to the last ``log_call`` job finished, per call."""
    with engine.connect() as conn:
        ended = dict(
            conn.execute(
                select(Event.call_id, func.min(Event.received_at))
                .where(Event.name == "call.ended", Event.call_id.in_(call_ids))
                .group_by(Event.call_id)
            ).all()
        )
        done = dict(
            conn.execute(
                select(Job.call_id, func.max(Job.finished_at))
                .where(Job.kind == "log_call", Job.call_id.in_(call_ids), Job.status == "done")
                .group_by(Job.call_id)
            ).all()
        )
    return {c: done[c] - ended[c] for c in call_ids if c in ended and done.get(c)}


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--callers", type=int, default=50)
    p.add_argument("--rate", type=float, default=3.0, help="calls started per second (3)")
    _stack.settings_arg(p)
    args = p.parse_args()
    overrides = {"TASK_LOG_DELAY_SECONDS": "0", **_stack.overrides(args.setting)}

    with _stack.scratch_database(args.database_url) as url:
        _stack.header("Call to Task: call.ended received -> Task final in Salesforce", url)
        shown = [
            "task_logged_at",
            "task_log_delay_seconds",
            "worker_concurrency",
            "caller_cache_seconds",
        ]
        print(f"app       {_stack.app_settings(overrides, shown)}")
        print("          in-process worker, app in its own process; emulators on loopback (TLS)")
        print(
            f"traffic   {args.calls} calls from {args.callers} callers ({CONTACTS} Contacts, "
            f"{LEADS} Leads, the rest unknown numbers), {args.rate:g} calls/s, steps 0.4-1.5 s "
            "apart"
        )
        print()
        with _stack.flow(url, overrides) as flow:
            people = _calls.seed(
                flow.org, flow.company, callers=args.callers, contacts=CONTACTS, leads=LEADS
            )
            _calls.warm_up(flow, people)

            callers = people.callers * -(-args.calls // len(people.callers))
            random.Random(3).shuffle(callers)
            traffic = _calls.plan(
                flow.company, people, callers[: args.calls], rate=args.rate, comment_after_end=0
            )
            played = traffic.play()
            flow.sender.drain(timeout=120)
            _calls.settled(flow.engine, timeout=120)

            ids = [call.id for call in traffic.calls]
            took = timings(flow.engine, ids)
            tasks = {t["CallObject"]: t for t in flow.org.records("Task")}
            final = sum(
                1
                for c in ids
                if str(c) in tasks
                and tasks[str(c)]["Status"] == "Completed"
                and tasks[str(c)]["CallDurationInSeconds"] == flow.company.calls[c]["duration"]
            )
            health = _calls.job_health(flow.engine)

        print(f"played    {len(ids)} calls in {played:.1f} s")
        print(f"  {'':34} {'calls':>6} {'p50':>10} {'p99':>10} {'max':>10}")
        groups = {
            "all": [c.id for c in traffic.calls],
            "answered (Task there, completed)": [
                c.id for c in traffic.calls if c.kind.endswith("_answered")
            ],
            "not answered (Task made at end)": [
                c.id for c in traffic.calls if not c.kind.endswith("_answered")
            ],
        }
        for name, members in groups.items():
            values = [took[c] for c in members if c in took]
            if not values:
                continue
            print(
                f"  {name:34} {len(values):6d} {_stack.ms(_stack.percentile(values, 50)):>10} "
                f"{_stack.ms(_stack.percentile(values, 99)):>10} {_stack.ms(max(values)):>10}"
            )
        print(
            f"  Tasks in Salesforce for these calls: {sum(str(c) in tasks for c in ids)} of "
            f"{len(ids)}; final (Completed, duration): {final}; {health}"
        )
        if len(took) < len(ids):
            print(f"  {len(ids) - len(took)} calls have no finished log_call job: not counted")


if __name__ == "__main__":
    main()
