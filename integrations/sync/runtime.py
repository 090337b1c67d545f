"""Where the packages meet: the database made ready, and each job kind wired to its handler.

Nothing in ``integrations.sync`` imports this module; ``web`` (the app, the CLI, the demo), the
tests and the benches do.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from integrations.store import db
from integrations.sync.automations import (
    aircall_steps,
    definitions,
    disposition_runs,
    runs,
)
from integrations.sync.automations.aircall_contacts import aircall_contact
from integrations.sync.calls import agent_actions
from integrations.sync.calls.calllog import log_call
from integrations.sync.calls.insight_card import insight_card
from integrations.sync.connect import aircall as connect_aircall
from integrations.sync.jobs import kinds
from integrations.sync.jobs.context import Context
from integrations.sync.jobs.worker import Background, Handler, Worker
from integrations.sync.recovery import backfill, backfill_job
from integrations.sync.salesforce_triggers import polling

HANDLERS: dict[str, Handler] = {
    kinds.LOG_CALL: log_call,
    kinds.INSIGHT_CARD: insight_card,
    kinds.AIRCALL_CONTACT: aircall_contact,  # T01/T02/T05 -> A01
    kinds.CREATE_LEAD: agent_actions.create_lead,
    kinds.CALLER_CONTEXT: agent_actions.refresh_context,
    kinds.AGENT_DISPOSITION: agent_actions.set_disposition,
    kinds.DISPOSITION: disposition_runs.apply_disposition,
    kinds.DIALER_REQUEUE: aircall_steps.dialer_requeue,
    kinds.AUTOMATION: runs.run_automation,
    kinds.BACKFILL: backfill_job.run_backfill,  # the manager's backfill button
}


def prepare(engine: Engine) -> None:
    """Make a database ready to serve: migrations applied, then the default automations present.

    Idempotent: safe on every start of every process."""
    db.migrate(engine)
    definitions.seed_defaults(engine)


async def _outage_check(ctx: Context, stopping: asyncio.Event) -> None:
    await backfill.suggest_window(ctx)


def make_worker(ctx: Context, *, concurrency: int | None = None) -> Worker:
    """The worker with every handler, polling (T01-T04) when enabled, the outage check and the
    read-back of the Aircall webhook."""
    background: list[Background] = [_outage_check, connect_aircall.watch]
    if ctx.settings.salesforce_poll_seconds > 0:
        background.append(polling.run)
    return Worker(ctx, HANDLERS, background=background, concurrency=concurrency)
