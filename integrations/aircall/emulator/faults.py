"""Aircall's planned failures: the shared kinds, with a 429's reset time."""

from __future__ import annotations

from dataclasses import dataclass

from integrations import emulator_faults


@dataclass
class Fault(emulator_faults.Fault):
    """One planned failure; see ``emulator_faults.Fault`` for matching and kinds.

    ``body`` None answers Aircall's standard ``{"error","troubleshoot"}``. A 429 carries the rate
    headers, ``reset`` overriding ``X-AircallApi-Reset``.
    """

    reset: int | None = None


class FaultPlan(emulator_faults.FaultPlan[Fault]):
    """The company's waiting faults."""
