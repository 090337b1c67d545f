"""Automations at a glance: runs since a moment (today), how many failed, the last run and the
last error, per automation, shipped ones included.

An automation's runs are the jobs ``runs.recent_runs`` shows: its own ``automation`` jobs, the
``aircall_contact`` jobs it delegated to, and for an automation whose steps only queue a call's
own job (the shipped E12, E04, E08) those jobs of the calls that had its event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from integrations.salesforce import refusals
from integrations.store.automation_models import Automation
from integrations.store.models import Job
from integrations.sync.automations import definitions, runs
from integrations.sync.jobs.kinds import AIRCALL_CONTACT, AUTOMATION


@dataclass
class Glance:
    runs: int = 0
    failed: int = 0
    last_run_at: float | None = None
    last_error: str | None = None  # the newest failed run's cause, in plain words

    @property
    def error_rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0


def start_of_day(zone: str, now: float | None = None) -> float:
    """Midnight of today in ``zone`` (the pages' time zone), as a timestamp."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(zone))
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _cause(job: Job) -> str:
    if refusals.is_salesforce_code(job.error_code):
        return refusals.explain(job.error_code, job.last_error).headline
    return job.error_code or "failed"


def _count(glance: Glance, job: Job, since: float) -> None:
    if job.created_at >= since:
        glance.runs += 1
        glance.failed += job.status == "failed"
    if glance.last_run_at is None or job.created_at > glance.last_run_at:
        glance.last_run_at = job.created_at
    if job.status == "failed" and glance.last_error is None:
        glance.last_error = _cause(job)


def _owner(job: Job) -> int | None:
    if job.kind == AUTOMATION:
        parts = job.dedupe_key.split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    owner = (job.payload or {}).get("automation")
    return owner if isinstance(owner, int) else None


def glances(engine: Engine, since: float) -> dict[int, Glance]:
    """Each automation's glance; ``runs`` and ``failed`` count the runs since ``since``."""
    out: dict[int, Glance] = {}
    with Session(engine) as s:
        rows = s.execute(definitions.with_current_version().order_by(Automation.id)).all()
        for automation, _version in rows:
            out[automation.id] = Glance()
        own = s.execute(
            select(Job)
            .where(Job.kind.in_([AUTOMATION, AIRCALL_CONTACT]), Job.created_at >= since)
            .order_by(Job.id.desc())
        ).scalars()
        for job in own:
            owner = _owner(job)
            if owner in out:
                _count(out[owner], job, since)
        for automation, version in rows:
            current = {**version.definition, "trigger": automation.trigger}
            delegated = runs.delegated_call_jobs(current)
            if delegated is None:
                continue
            for job in s.execute(
                select(Job).where(delegated, Job.created_at >= since).order_by(Job.id.desc())
            ).scalars():
                _count(out[automation.id], job, since)
        for automation_id, glance in out.items():
            if glance.last_run_at is None:  # nothing today: when did it last run at all?
                glance.last_run_at = s.execute(
                    select(func.max(Job.created_at)).where(
                        Job.dedupe_key.like(f"{AUTOMATION}:{automation_id}:%")
                    )
                ).scalar()
    return out
