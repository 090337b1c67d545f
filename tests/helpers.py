"""Small shared steps for tests that drive the whole stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.loopback import wait_for
from integrations.settings import Settings
from integrations.store.automation_models import FieldMapping
from integrations.store.models import Event, Job, JobStep
from integrations.sync.automations import mapping_store

AGENT_EMAIL = "jane.agent@example.com"


def envelope(event: str, data: dict[str, Any], token: str, timestamp: int | None = None) -> bytes:
    """A delivery shaped exactly like Aircall's: five keys, the token in the body."""
    body = {
        "resource": event.split(".")[0],
        "event": event,
        "timestamp": timestamp if timestamp is not None else int(time.time()),
        "token": token,
        "data": data,
    }
    return json.dumps(body).encode()


def post_webhook(base_url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/webhooks/aircall",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=10,
    )


def jobs(engine: Engine, kind: str | None = None) -> list[Job]:
    with Session(engine) as s:
        query = select(Job).order_by(Job.id)
        if kind:
            query = query.where(Job.kind == kind)
        return list(s.exec(query))


def events(engine: Engine) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).order_by(Event.id)))


def settled(engine: Engine, kind: str, count: int = 1, timeout: float = 20.0) -> list[Job]:
    """Wait until ``count`` jobs of ``kind`` exist and none is queued or running."""

    def check() -> list[Job] | None:
        found = jobs(engine, kind)
        if len(found) >= count and all(j.status in ("done", "failed") for j in found):
            return found
        return None

    return wait_for(check, timeout=timeout)  # type: ignore[return-value]


def logged(engine: Engine, timeout: float = 20.0) -> Job:
    """The job that logged the call, once no log_call job is left to run: a job run on an event
    before ``call.ended`` ends ``waiting`` for it, and the end's event queues another."""

    def check() -> Job | None:
        found = jobs(engine, "log_call")
        if not found or any(j.status not in ("done", "failed") for j in found):
            return None
        final = [j for j in found if "waiting" not in (j.result or {})]
        return final[-1] if final else None

    return wait_for(check, timeout=timeout)  # type: ignore[return-value]


def steps(engine: Engine, action: str) -> list[JobStep]:
    """The timeline entries for ``action`` (e.g. "create Task"), oldest first."""
    with Session(engine) as s:
        return list(s.exec(select(JobStep).where(JobStep.action == action).order_by(JobStep.id)))


def answered_inbound_call(company: Any, number_id: int, user_id: int, caller: str) -> int:
    """An inbound call from ``caller``, answered by the agent, hung up and ended."""
    call = company.start_call(
        direction="inbound", external=caller, number_id=number_id, user_id=user_id
    )
    company.answer(call["id"], user_id=user_id)
    company.hangup(call["id"])
    company.end(call["id"])
    return call["id"]


def worker_env(settings: Settings, webhook_token: str, **extra: str) -> dict[str, str]:
    """The environment a separate ``callbridge worker`` process needs to run these settings."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "AIRCALL_API_URL": settings.aircall_api_url,
        "AIRCALL_API_ID": settings.aircall_api_id,
        "AIRCALL_API_TOKEN": settings.aircall_api_token.get_secret_value(),
        "AIRCALL_WEBHOOK_TOKENS": webhook_token,
        "SALESFORCE_LOGIN_URL": settings.salesforce_login_url,
        "SALESFORCE_CLIENT_ID": settings.salesforce_client_id,
        "SALESFORCE_CLIENT_SECRET": settings.salesforce_client_secret.get_secret_value(),
        "SALESFORCE_TIMEOUT_SECONDS": str(settings.salesforce_timeout_seconds),
        "RETRY_BASE_SECONDS": str(settings.retry_base_seconds),
        "TASK_LOGGED_AT": settings.task_logged_at,
        **extra,
    }


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``callbridge worker`` as its own process, stopped (SIGTERM) at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "--log-level", "ERROR", "worker"], env=env
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def saved_before_the_check(engine: Engine, sobject: str, mapping: dict[str, Any]) -> None:
    """A mapping stored before the save-time check refused it: the run must still say why."""
    with Session(engine) as s:
        s.merge(FieldMapping(sobject=sobject, mapping=mapping, updated_by="ann", updated_at=0.0))
        s.commit()
    mapping_store.forget_cached(engine, sobject)


def refusal(caught: Any) -> dict:
    """The first error of a Salesforce 400 caught as ``pytest.raises(RemoteRejected)``."""
    assert caught.value.status == 400
    body = caught.value.body
    assert isinstance(body, list)
    return body[0]
