"""Seeded people and paced call traffic through the Aircall emulator, for the flow benchmarks.

Every step of a call is a few hundred milliseconds after the one before, so (as with real calls,
whose steps are seconds apart) each webhook's job has normally run before the next one comes;
nothing is flattered by several events folding into one job. Calls overlap, started at a
steady ``rate`` per second.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select

from integrations.aircall.emulator import Company
from integrations.loopback import wait_for
from integrations.salesforce.emulator import Org
from integrations.store.models import Job

if TYPE_CHECKING:
    from _stack import Flow

AGENTS = [
    ("Maya Patel", "maya@callbridge.bench"),
    ("Leo Martin", "leo@callbridge.bench"),
    ("Ana Souza", "ana@callbridge.bench"),
]
TAGS = ["Interested", "Not Interested", "Callback Requested"]
_AREAS = ["415", "212", "646", "312", "617", "303"]
_FORMATS = ["({a}) 555-{n}", "+1 {a} 555 {n}", "{a}.555.{n}", "{a}555{n}"]  # as people type them


def number(i: int) -> str:
    """The i-th distinct caller number (E.164 spelled the way Aircall displays it)."""
    return f"+1 {_AREAS[i % len(_AREAS)]} 555 {1000 + i // len(_AREAS):04d}"


@dataclass
class People:
    agents: list[int]  # Aircall user ids; each has a Salesforce User with the same email
    number_id: int
    callers: list[str]
    known: dict[str, str] = field(default_factory=dict)  # caller -> Contact | Lead


def seed(org: Org, company: Company, *, callers: int, contacts: int, leads: int) -> People:
    """Agents on both sides, an Aircall line, and ``callers`` numbers of which the first
    ``contacts`` are Salesforce Contacts and the next ``leads`` Leads (phones typed variously)."""
    agents = []
    for name, email in AGENTS:
        agents.append(company.add_user(name, email)["id"])
        org.add_user(name, email)
    line = company.add_number("Sales line", "+1 415 555 0199", country="US")
    for tag in TAGS:
        if tag not in {t["name"] for t in company.list_tags()}:
            company.add_tag(tag)
    people = People(agents, line["id"], [number(i) for i in range(callers)])
    for i, caller in enumerate(people.callers[: contacts + leads]):
        digits = caller.split()
        phone = _FORMATS[i % len(_FORMATS)].format(a=digits[1], n=digits[3])
        if i < contacts:
            fields = {"FirstName": "Pat", "LastName": f"Contact{i}", "Phone": phone}
            org.insert("Contact", fields)
            people.known[caller] = "Contact"
        else:
            fields = {"FirstName": "Sam", "LastName": f"Lead{i}", "Company": "Acme", "Phone": phone}
            org.insert("Lead", fields)
            people.known[caller] = "Lead"
    return people


@dataclass
class Call:
    caller: str
    kind: str  # inbound_answered | inbound_missed | outbound_answered | outbound_unanswered
    id: int = 0
    commented_after_end: bool = False


KINDS = {
    "inbound_answered": 45,
    "inbound_missed": 15,
    "outbound_answered": 25,
    "outbound_unanswered": 15,
}


@dataclass
class Traffic:
    """Planned steps: (seconds from start, order, action)."""

    calls: list[Call] = field(default_factory=list)
    steps: list[tuple[float, int, Callable[[], object]]] = field(default_factory=list)

    def add(self, at: float, action: Callable[[], object]) -> None:
        self.steps.append((at, len(self.steps), action))

    def play(self) -> float:
        """Run every step on time (from this thread); returns the seconds it took."""
        self.steps.sort(key=lambda step: (step[0], step[1]))
        start = time.monotonic()
        for at, _, action in self.steps:
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            action()
        return time.monotonic() - start


def plan(
    company: Company,
    people: People,
    callers: list[str],
    *,
    rate: float,
    seed: int = 7,
    comment_after_end: float = 0.3,
    kinds: dict[str, int] | None = None,
    hang_up: bool = True,
) -> Traffic:
    """One call per entry of ``callers``, started ``1 / rate`` s apart. ``hang_up=False`` leaves
    answered calls live (for insight cards, which Aircall takes on live calls only)."""
    rng = random.Random(seed)
    kinds = kinds or KINDS
    traffic = Traffic()
    for i, caller in enumerate(callers):
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        call = Call(caller, kind)
        traffic.calls.append(call)
        agent = rng.choice(people.agents)
        at = i / rate

        def start(call: Call = call, agent: int = agent) -> None:
            call.id = company.start_call(
                direction=call.kind.split("_")[0],
                external=call.caller,
                number_id=people.number_id,
                user_id=agent,
            )["id"]

        traffic.add(at, start)
        if kind.endswith("_answered"):
            at += 0.4
            traffic.add(at, lambda call=call, agent=agent: company.answer(call.id, user_id=agent))
            if not hang_up:
                continue
            at += rng.uniform(0.5, 1.5)
        else:
            at += rng.uniform(0.6, 1.2)
        traffic.add(at, lambda call=call: company.hangup(call.id))
        if kind != "inbound_missed" and rng.random() < 0.6:
            at += 0.4
            tag = rng.choice(TAGS)
            traffic.add(
                at, lambda call=call, tag=tag, agent=agent: company.tag(call.id, tag, user_id=agent)
            )
        at += 0.4
        traffic.add(at, lambda call=call: company.end(call.id))
        if kind.endswith("_answered") and rng.random() < comment_after_end:
            call.commented_after_end = True
            at += 0.4
            traffic.add(
                at,
                lambda call=call, agent=agent: company.comment(
                    call.id, "Wants a quote for 20 seats.", user_id=agent
                ),
            )
    return traffic


def warm_up(flow: Flow, people: People) -> None:
    """One answered call per agent from numbers outside the set, played and settled: the OAuth
    token, TLS, the agents' Users, pooled connections and statement caches are ready, and the
    measured callers stay unknown to the cache."""
    callers = [number(10_000 + i) for i in range(len(people.agents))]
    plan(flow.company, people, callers, rate=5, kinds={"inbound_answered": 1}).play()
    flow.sender.drain(timeout=60)
    settled(flow.engine, timeout=60)


def settled(engine: Engine, timeout: float) -> None:
    """Wait until no job is queued or running."""

    def idle() -> bool:
        with engine.connect() as conn:
            query = select(func.count()).where(Job.status.in_(("queued", "running")))
            return conn.execute(query).scalar_one() == 0

    wait_for(idle, timeout=timeout, interval=0.1)


def job_health(engine: Engine) -> str:
    """Jobs failed, and jobs that needed more than one attempt, by kind, as one line."""

    def by_kind(condition: object) -> str:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Job.kind, func.count()).where(condition).group_by(Job.kind)
            ).all()
        total = sum(count for _, count in rows)
        kinds = ", ".join(f"{kind} {count}" for kind, count in rows)
        return f"{total} ({kinds})" if rows else "0"

    return f"jobs failed: {by_kind(Job.status == 'failed')}, retried: {by_kind(Job.attempts > 1)}"
