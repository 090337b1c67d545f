"""When to try a failed job again: a pure decision, so backoff is tested without a clock."""

from __future__ import annotations

import random
from dataclasses import dataclass

from integrations.errors import RemoteRejected, RemoteUnavailable, SessionExpired

# The org's daily allocation is a rolling 24 h window: waiting seconds would only burn retries.
LONG_WAIT_CODES = {"REQUEST_LIMIT_EXCEEDED": 900.0}
# A connection not made yet (NotConfigured): the worker checks again this often, without using
# an attempt; connecting wakes waiting jobs at once (``salesforce_connection.finish``).
SETUP_WAIT = 30.0


@dataclass(frozen=True)
class Policy:
    base: float = 2.0  # seconds before the first retry
    cap: float = 900.0  # never wait longer than this between attempts
    max_attempts: int = 12


def next_run(
    error: BaseException,
    attempts: int,
    now: float,
    policy: Policy,
    rand: random.Random | None = None,
) -> float | None:
    """The time to run again after ``attempts`` tries, or None to park the job as failed.

    Transient errors back off exponentially with jitter (half to full delay), but never before a
    time the service gave us (``Retry-After``, ``X-AircallApi-Reset``). Permanent refusals
    never retry: the same request cannot succeed until someone fixes the data or the mapping.
    """
    if isinstance(error, RemoteRejected) or attempts >= policy.max_attempts:
        return None
    rand = rand or random.Random()
    delay = min(policy.cap, policy.base * 2 ** max(0, attempts - 1))
    delay = delay / 2 + rand.random() * delay / 2
    if isinstance(error, RemoteUnavailable):
        delay = max(delay, LONG_WAIT_CODES.get(error.error_code or "", 0.0))
        if error.retry_at is not None:
            # Spread the herd a little, but never before the time the service named.
            return max(now, error.retry_at) + rand.random() * min(1.0, policy.base)
    elif not isinstance(error, SessionExpired):
        delay = max(delay, policy.base)  # a bug: retry a few times, slowly, then park
    return now + delay
