"""Failed calls grouped by cause: one line per refusal ("a required field is missing: Industry,
35 calls"), in plain words, with where to fix it and the calls it holds, so a manager fixes
the cause once and re-syncs the group.

A call's action is failed when its newest job is (as on the review table). Jobs with the same
error code and the same fields at fault share a cause, whatever the values in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.salesforce import refusals
from integrations.store.models import Job
from integrations.sync.jobs import kinds, queue

# Where each kind writes, and the page where its values are set.
_WRITES = {
    kinds.LOG_CALL: ("Task", "/automations/mappings/Task", "the Task field mapping"),
    kinds.CREATE_LEAD: ("Lead", "/automations/mappings/Lead", "the Lead field mapping"),
    kinds.DISPOSITION: ("", "/automations/dispositions", "the disposition rules"),
}
_AIRCALL_KINDS = {kinds.INSIGHT_CARD, kinds.AIRCALL_CONTACT, kinds.AGENT_DISPOSITION}


@dataclass
class Cause:
    key: str
    service: str  # Salesforce | Aircall | Callbridge
    action: str  # the kind's label: "Salesforce Task"
    explanation: refusals.Explanation
    fix_url: str | None
    fix_label: str
    example: str  # one stored body, verbatim
    call_ids: list[int] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.call_ids)


def _aircall(job: Job) -> refusals.Explanation:
    text = (job.last_error or "")[:300]
    lowered = text.lower()
    if "401" in text or "unauthorized" in lowered or "forbidden" in lowered:
        return refusals.Explanation(
            "Aircall refused the API key",
            "Aircall does not accept Callbridge's API ID and token any more.",
            "Automations → Connections in Callbridge: enter a valid key (Aircall dashboard → "
            "Integrations & API → API keys).",
            (),
        )
    if "not found" in lowered or "404" in text:
        return refusals.Explanation(
            "the call or contact no longer exists in Aircall",
            "Aircall has no such call or contact (deleted, or older than Aircall keeps).",
            "Nothing to fix in Aircall; re-sync only if the record was restored.",
            (),
        )
    return refusals.Explanation(
        f"Aircall refused it ({job.error_code or 'no code'})",
        "Aircall gave this refusal in its own words.",
        "Read Aircall's message; after the fix, re-sync the calls.",
        (),
    )


def _ours(job: Job) -> refusals.Explanation:
    return refusals.Explanation(
        f"Callbridge could not do it ({job.error_code})",
        "An error in Callbridge or its set-up, not a refusal by Salesforce or Aircall.",
        "Open a call's page for the details; Automations → Health lists set-up problems.",
        (),
    )


def _service(job: Job) -> str:
    if job.kind in _AIRCALL_KINDS:
        return "Aircall"
    return "Salesforce" if refusals.is_salesforce_code(job.error_code) else "Callbridge"


def explain_job(job: Job) -> refusals.Explanation:
    """Plain words for the error a job stored (its last failed attempt)."""
    service = _service(job)
    if service == "Aircall":
        return _aircall(job)
    if service == "Salesforce":
        sobject = _WRITES.get(job.kind, ("",))[0]
        return refusals.explain(job.error_code, job.last_error, sobject)
    return _ours(job)


def _cause(job: Job) -> Cause:
    spec = kinds.kind(job.kind)
    _sobject, fix_url, fix_label = _WRITES.get(job.kind, ("", None, ""))
    if job.kind == kinds.AUTOMATION and isinstance(job.payload, dict):
        automation = job.payload.get("automation")
        if isinstance(automation, int):
            fix_url, fix_label = f"/automations/{automation}", "the automation"
    service, explanation = _service(job), explain_job(job)
    if service == "Callbridge":
        fix_url, fix_label = "/settings/health", "Health"
    parsed = refusals.parse(job.error_code, job.last_error)
    key = "|".join([job.kind, parsed.code or job.error_code or "", ",".join(explanation.fields)])
    return Cause(
        key=key,
        service=service,
        action=spec.label,
        explanation=explanation,
        fix_url=fix_url,
        fix_label=fix_label,
        example=(job.last_error or "")[:4000],
    )


def _failed_jobs(s: Session) -> list[Job]:
    newest = queue.newest_of_key()
    return list(s.exec(select(Job).where(Job.status == "failed", newest).order_by(Job.id)))


def failure_causes(engine: Engine) -> list[Cause]:
    """Every cause of a currently failed action, most calls first."""
    found: dict[str, Cause] = {}
    with Session(engine) as s:
        for job in _failed_jobs(s):
            cause = _cause(job)
            group = found.setdefault(cause.key, cause)
            if job.call_id is not None and job.call_id not in group.call_ids:
                group.call_ids.append(job.call_id)
            group.job_ids.append(job.id or 0)
    return sorted(found.values(), key=lambda c: (-len(c.job_ids), c.key))


def call_ids(engine: Engine, key: str) -> list[int]:
    """The calls whose failed action has the cause ``key`` (none when no cause has it)."""
    for cause in failure_causes(engine):
        if cause.key == key:
            return cause.call_ids
    return []
