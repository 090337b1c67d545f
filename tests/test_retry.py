"""The retry decision, without a clock."""

from __future__ import annotations

import random

import pytest

from integrations.errors import RemoteRejected, RemoteUnavailable, SessionExpired
from integrations.sync.jobs.retry import Policy, next_run

POLICY = Policy(base=2.0, cap=900.0, max_attempts=5)


def test_backoff_grows_and_is_jittered() -> None:
    rand = random.Random(7)
    error = RemoteUnavailable("salesforce", 503, "down")
    delays = [next_run(error, n, 0.0, POLICY, rand) for n in (1, 2, 3, 4)]
    for n, delay in enumerate(delays, start=1):
        full = 2.0 * 2 ** (n - 1)
        assert full / 2 <= delay <= full


def test_service_reset_time_is_honoured() -> None:
    error = RemoteUnavailable("aircall", 429, {}, retry_at=1000.0)
    assert 1000.0 <= next_run(error, 1, 900.0, POLICY, random.Random(1)) <= 1001.0


def test_daily_limit_waits_long() -> None:
    error = RemoteUnavailable(
        "salesforce",
        403,
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    assert next_run(error, 1, 0.0, POLICY, random.Random(1)) >= 900.0


def test_permanent_refusal_is_never_retried() -> None:
    error = RemoteRejected("salesforce", 400, [{"errorCode": "INVALID_FIELD"}])
    assert next_run(error, 1, 0.0, POLICY) is None


@pytest.mark.parametrize(
    "error", [RemoteUnavailable("x", 503, ""), SessionExpired("x", 401, ""), KeyError("bug")]
)
def test_attempts_run_out(error: Exception) -> None:
    assert next_run(error, POLICY.max_attempts, 0.0, POLICY) is None
    assert next_run(error, POLICY.max_attempts - 1, 0.0, POLICY) is not None
