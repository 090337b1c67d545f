"""Realistic call traffic through an emulated Aircall company, for the demo and benchmarks.

Calls overlap as on a real phone line: every step of every call is planned on one simulated
timeline (seconds), then played in order. ``time_scale`` turns simulated seconds into real
waiting (1 = real time, 0.01 = a hundred times faster, 0 = no waiting). Call times are anchored
so that the last step lands "now": no timestamp is ever in the future.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from integrations.aircall.emulator import Company, WebhookSender

#: Dispositions as Aircall tags (name, colour); agents pick one after the call.
DISPOSITIONS = {
    "Interested": "#00B388",
    "Booked": "#1E88E5",
    "Not Interested": "#757575",
    "No Answer": "#FFB300",
    "Voicemail Left": "#8E24AA",
    "Callback Requested": "#29C8FF",
    "Wrong Number": "#F4511E",
    "DNC Requested": "#D81B60",
    "Busy": "#6D4C41",
}
_ANSWERED_OUTCOMES = (
    "Interested",
    "Booked",
    "Not Interested",
    "Callback Requested",
    "Wrong Number",
    "DNC Requested",
)
_UNANSWERED_OUTCOMES = ("No Answer", "Voicemail Left", "Busy")
_NOTES = (
    "Asked for a quote by email.",
    "Decision maker is the CFO, call back next week.",
    "Wants pricing for 20 seats.",
    "Already a customer, transferred to support.",
    "Prefers to be reached in the morning.",
    "Interested in the annual plan.",
)
_SUMMARIES = (
    "The caller asked about pricing and agreed to a follow-up demo.",
    "The customer reported a billing issue; the agent promised a corrected invoice.",
    "The prospect is evaluating competitors and wants a proposal by Friday.",
)
_KINDS = {  # scenario: weight
    "inbound_answered": 30,
    "inbound_missed": 12,
    "inbound_voicemail": 8,
    "outbound_answered": 30,
    "outbound_unanswered": 20,
}
_MEAN_GAP = 20.0  # simulated seconds between two call starts
_ENDED_AFTER = 30.0  # call.ended comes about 30 s after the hang-up


@dataclass(order=True)
class _Step:
    at: float
    order: int
    run: Callable[[float], None] = field(compare=False)


@dataclass
class _Call:
    """One planned call; ``id`` is known once its first step ran."""

    company: Company
    direction: str
    external: str
    number_id: int
    agent: int | None
    id: int = 0

    def start(self, at: float) -> None:
        self.id = self.company.start_call(
            direction=self.direction,
            external=self.external,
            number_id=self.number_id,
            user_id=self.agent,
            at=at,
        )["id"]


def generate_calls(
    company: Company,
    sender: WebhookSender | None,
    *,
    callers: list[str],
    agents: list[int],
    number_id: int,
    count: int,
    seed: int,
    time_scale: float,
    stop: threading.Event | None = None,
    drain_timeout: float = 60.0,
    real_clock: bool = False,
) -> list[int]:
    """Play ``count`` calls; returns their ids in start order.

    Missing disposition tags are created first. ``stop`` ends the stream early (the demo's
    shutdown). With a ``sender``, waits until its deliveries are done (``drain_timeout``).
    Each step is stamped with its simulated time, the last one now (a history); with
    ``real_clock``, with the moment it is played, so the calls' times agree with every other
    time Callbridge shows (the demo), their durations shortened by ``time_scale``.
    """
    if not callers or not agents:
        raise ValueError("need at least one caller and one agent")
    existing = {tag["name"] for tag in company.list_tags()}
    for name, color in DISPOSITIONS.items():
        if name not in existing:
            company.add_tag(name, color)
    rng = random.Random(seed)
    calls: list[_Call] = []
    steps: list[_Step] = []
    started = 0.0
    for _ in range(count):
        started += rng.expovariate(1 / _MEAN_GAP)
        call, planned = _plan(company, rng, started, callers, agents, number_id)
        calls.append(call)
        steps.extend(_Step(at, len(steps) + i, run) for i, (at, run) in enumerate(planned))
    steps.sort()
    stop = stop or threading.Event()
    span = steps[-1].at if steps else 0.0
    origin = company.clock() - span * max(0.0, 1.0 - time_scale)
    real_start = time.monotonic()
    for step in steps:
        wait = real_start + step.at * time_scale - time.monotonic()
        if stop.wait(wait if wait > 0 else 0):
            return [call.id for call in calls if call.id]
        step.run(company.clock() if real_clock else origin + step.at)
    if sender is not None:
        sender.drain(drain_timeout)
    return [call.id for call in calls]


def _plan(
    company: Company,
    rng: random.Random,
    start: float,
    callers: list[str],
    agents: list[int],
    number_id: int,
) -> tuple[_Call, list[tuple[float, Callable[[float], None]]]]:
    """One call's scenario as (simulated time, step) pairs."""
    kind = rng.choices(list(_KINDS), weights=list(_KINDS.values()))[0]
    direction = kind.split("_")[0]
    agent = rng.choice(agents)
    rings_on_agent = direction == "outbound" or kind == "inbound_answered" or rng.random() < 0.7
    ringing = agent if rings_on_agent else None
    call = _Call(company, direction, rng.choice(callers), number_id, ringing)
    steps: list[tuple[float, Callable[[float], None]]] = [(start, call.start)]

    def later(at: float, action: Callable[[], object]) -> None:
        steps.append((at, lambda _at: action()))

    if kind.endswith("_answered"):
        answered = start + rng.uniform(3, 25)
        hangup = answered + rng.uniform(30, 480)
        steps.append((answered, lambda at: company.answer(call.id, user_id=agent, at=at)))
        steps.append((hangup, lambda at: company.hangup(call.id, at=at)))
        outcome = rng.choice(_ANSWERED_OUTCOMES)
        if rng.random() < (0.85 if direction == "outbound" else 0.5):
            tagged = rng.uniform(answered + 1, hangup) if rng.random() < 0.3 else hangup + 5
            later(tagged, lambda: company.tag(call.id, outcome, user_id=agent))
        if rng.random() < 0.35:
            note = rng.choice(_NOTES)
            later(hangup + _ENDED_AFTER + 2, lambda: company.comment(call.id, note, user_id=agent))
        if rng.random() < 0.2:
            text = rng.choice(_SUMMARIES)
            later(hangup + _ENDED_AFTER + 45, lambda: company.summary(call.id, text))
    else:
        voicemail = kind == "inbound_voicemail"
        hangup = start + rng.uniform(8, 35) + (rng.uniform(10, 60) if voicemail else 0)
        steps.append((hangup, lambda at: company.hangup(call.id, at=at, voicemail=voicemail)))
        if direction == "outbound" and rng.random() < 0.9:
            outcome = rng.choice(_UNANSWERED_OUTCOMES)
            later(hangup + 4, lambda: company.tag(call.id, outcome, user_id=agent))
        elif direction == "inbound" and rng.random() < 0.3:
            later(hangup + 6, lambda: company.tag(call.id, "Callback Requested"))
    later(hangup + _ENDED_AFTER, lambda: company.end(call.id))
    return call, steps
