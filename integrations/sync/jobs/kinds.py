"""Every kind of job the worker runs, in one registry: its name, label, catalogue code, priority.

The name is what the queue stores; the label and code are what review shows a manager (the code
also finds the action's ``SyncLink``); the priority is the one a job of that kind is queued at
unless its caller says otherwise. The handler for each kind is wired in
``integrations.sync.runtime`` (``tests/test_review.py`` checks none is missing), so this module
imports nothing and every package may name a kind without importing the package that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Priorities, most urgent first: insight cards and live-call work; the calls' own sync; work no
# call waits for (what a Salesforce record triggers); bulk re-syncs and backfills.
LIVE, NORMAL, BACKGROUND, BULK = 0, 5, 7, 9


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    code: str = ""  # the catalogue's action code, or "" where none fits
    priority: int = NORMAL
    batches_writes: bool = False  # its Salesforce writes join other jobs' (jobs.batching)


LOG_CALL = "log_call"
INSIGHT_CARD = "insight_card"
AIRCALL_CONTACT = "aircall_contact"
CREATE_LEAD = "salesforce_create_lead"
CALLER_CONTEXT = "caller_context"
AGENT_DISPOSITION = "aircall_disposition"
DISPOSITION = "disposition"
DIALER_REQUEUE = "dialer_requeue"
AUTOMATION = "automation"
BACKFILL = "backfill"
OUTBOUND_MESSAGE = "outbound_message"

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(LOG_CALL, "Salesforce Task", "A09", batches_writes=True),
        Kind(INSIGHT_CARD, "Aircall insight card", "A06", LIVE),
        Kind(AIRCALL_CONTACT, "Aircall contact", "A01", BACKGROUND),
        Kind(CREATE_LEAD, "Salesforce Lead", "A04", LIVE),
        Kind(CALLER_CONTEXT, "Caller's Salesforce context", priority=LIVE),
        Kind(AGENT_DISPOSITION, "Agent's disposition to Aircall", priority=LIVE),
        Kind(DISPOSITION, "Disposition rules in Salesforce", batches_writes=True),
        Kind(DIALER_REQUEUE, "Power Dialer re-queue"),
        Kind(AUTOMATION, "Automation", batches_writes=True),
        Kind(BACKFILL, "Backfill", priority=BULK),
        Kind(OUTBOUND_MESSAGE, "Outbound Message read from Salesforce", "T05", BACKGROUND),
    )
}


def kind(name: str) -> Kind:
    """The registered kind, or one labelled with its bare name (a job from a newer version)."""
    return KINDS.get(name) or Kind(name, name)
