"""Salesforce API requests per logged call, across the default automations.

200 calls from 50 callers (15 Contacts, 10 Leads in the org, 25 unknown numbers; each number
calls 4 times), paced as real calls (steps 0.4-1.5 s apart), 30 % of answered calls commented
after ``call.ended``. Totals come from the Salesforce emulator (``Org.api_used``, and by kind
from its request log); per call from ``calls.sf_requests``, which the worker charges per job.

The database gets the shipped automations, as the app's start seeds them; the shipped
disposition rules stay off (``_stack``) unless ``--disposition-rules``: their status and stage
changes are work of their own (and a fresh org's picklists lack their values), not logging's.
``--accounts N`` puts the Contacts in N Accounts with an open opportunity, which the caller card
shows.

    .venv/bin/python bench/salesforce_requests.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import random

import _calls
import _stack
from sqlalchemy import Engine, select

from integrations.salesforce.emulator import Org
from integrations.store.models import Call

CONTACTS, LEADS = 15, 10
TARGET = 1.1


def attach_accounts(org: Org, accounts: int) -> None:
    """Spread the Contacts over ``accounts`` Accounts, each with an open opportunity (the caller
    card then reads it: once per account while the cache lasts)."""
    ids = [org.insert("Account", {"Name": f"Account{i}"}) for i in range(accounts)]
    for account in ids:
        org.insert(
            "Opportunity",
            {
                "Name": "Renewal",
                "AccountId": account,
                "StageName": "Prospecting",
                "CloseDate": "2031-01-31",
            },
        )
    for i, contact in enumerate(org.records("Contact")):
        org.update("Contact", contact["Id"], {"AccountId": ids[i % accounts]})


def charged(engine: Engine, call_ids: list[int]) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(Call.id, Call.sf_requests).where(Call.id.in_(call_ids)))
        return dict(rows.all())


def main() -> None:
    p = _stack.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--callers", type=int, default=50)
    p.add_argument("--rate", type=float, default=3.0, help="calls started per second (3)")
    p.add_argument(
        "--accounts",
        type=int,
        default=0,
        help="spread the Contacts over this many Accounts with an open opportunity (0: none)",
    )
    p.add_argument(
        "--disposition-rules",
        action="store_true",
        help="keep the shipped disposition rules on (the tags then move statuses and stages)",
    )
    _stack.settings_arg(p)
    args = p.parse_args()
    overrides = _stack.overrides(args.setting)

    with _stack.scratch_database(args.database_url) as url:
        _stack.header("Salesforce API requests per logged call", url)
        shown = ["task_logged_at", "caller_cache_seconds", "create_unknown_callers"]
        rules = "disposition rules on" if args.disposition_rules else "disposition rules off"
        print(f"app       {_stack.app_settings(overrides, shown)}; default automations, {rules}")
        unknown = args.callers - CONTACTS - LEADS
        print(
            f"traffic   {args.calls} calls from {args.callers} callers ({CONTACTS} Contacts, "
            f"{LEADS} Leads, {unknown} unknown numbers), {args.rate:g} calls/s, no warm-up: "
            "every request is counted"
        )
        if args.accounts:
            print(
                f"          the Contacts belong to {args.accounts} Accounts, each with an open "
                "opportunity"
            )
        print()
        if args.disposition_rules:
            _stack.enable_disposition_rules(url)
        with _stack.flow(url, overrides) as flow:
            people = _calls.seed(
                flow.org, flow.company, callers=args.callers, contacts=CONTACTS, leads=LEADS
            )
            if args.accounts:
                attach_accounts(flow.org, args.accounts)
            used_before = flow.org.api_used
            kinds_before = flow.emulators.salesforce_log.kinds.copy()
            callers = people.callers * -(-args.calls // len(people.callers))
            random.Random(5).shuffle(callers)
            traffic = _calls.plan(flow.company, people, callers[: args.calls], rate=args.rate)
            traffic.play()
            flow.sender.drain(timeout=120)
            _calls.settled(flow.engine, timeout=120)
            used = flow.org.api_used - used_before
            kinds = flow.emulators.salesforce_log.kinds - kinds_before
            ids = [call.id for call in traffic.calls]
            per_call = charged(flow.engine, ids)
            tasks = flow.org.records("Task")
            # Tasks without a CallObject are the disposition rules' follow-ups, not call logs.
            logged = {int(t["CallObject"]) for t in tasks if t["CallObject"]} & set(ids)
            health = _calls.job_health(flow.engine)

        ratio = used / len(logged) if logged else float("inf")
        print(
            f"Salesforce emulator: {used} API requests for {len(logged)} calls logged "
            f"(of {len(ids)}): {ratio:.2f} per logged call; {health}"
        )
        for kind, count in sorted(kinds.items(), key=lambda item: -item[1]):
            print(f"  {kind:24} {count:5d}")
        print()

        seen: set[str] = set()
        rows: dict[str, list[int]] = {
            "first call from its number": [],
            "number already looked up": [],
            "  caller a Contact or Lead": [],
            "  caller unknown to Salesforce": [],
            "  no event after call.ended": [],
            "  commented after call.ended": [],
        }
        for call in traffic.calls:  # in start order
            if call.id not in logged:
                continue
            spent = per_call.get(call.id, 0)
            if call.caller in seen:
                rows["number already looked up"].append(spent)
                known = call.caller in people.known
                who = "  caller a Contact or Lead" if known else "  caller unknown to Salesforce"
                rows[who].append(spent)
                rows[
                    "  commented after call.ended"
                    if call.commented_after_end
                    else "  no event after call.ended"
                ].append(spent)
            else:
                rows["first call from its number"].append(spent)
            seen.add(call.caller)
        total_charged = sum(per_call.get(c, 0) for c in logged)
        print(
            f"Charged to the calls (calls.sf_requests): {total_charged}; "
            f"not charged to a call: {used - total_charged}"
        )
        print(f"  {'':32} {'calls':>6} {'requests':>9} {'per call':>9}")
        for name, values in rows.items():
            if values:
                print(
                    f"  {name:32} {len(values):6d} {sum(values):9d} "
                    f"{sum(values) / len(values):9.2f}"
                )
        repeat = rows["number already looked up"]
        if repeat:
            known_ratio = sum(repeat) / len(repeat)
            print(
                f"  once the caller is known (already looked up): {known_ratio:.2f} per call "
                f"(target <= {TARGET}: {_stack.verdict(known_ratio <= TARGET)})"
            )


if __name__ == "__main__":
    main()
