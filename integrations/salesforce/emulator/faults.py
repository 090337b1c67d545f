"""Salesforce's planned failures: the shared kinds plus a committed-but-late answer and a
revoked session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from integrations import emulator_faults


@dataclass
class Fault(emulator_faults.Fault):
    """One planned failure; see ``emulator_faults.Fault`` for matching and the shared kinds.

    ``after_commit_delay`` does the work, then waits ``delay`` seconds before answering (a client
    timeout then leaves an ambiguous, committed write); ``expire_session`` revokes every token,
    then proceeds.
    """

    KINDS: ClassVar[frozenset[str]] = emulator_faults.Fault.KINDS | {
        "after_commit_delay",
        "expire_session",
    }


class FaultPlan(emulator_faults.FaultPlan[Fault]):
    """The org's waiting faults."""
