"""What a check says: its name, and the problem with its fix (None: ok)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    name: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def text(self) -> str:
        """``ok  name`` or ``PROBLEM  name: what and the fix`` (``callbridge doctor``)."""
        return f"ok  {self.name}" if self.ok else f"PROBLEM  {self.name}: {self.problem}"


def setup_field(sobject: str, field: str) -> str:
    """Where an admin sets a field's field-level security."""
    return (
        f"Setup → Object Manager → {sobject} → Fields & Relationships → {field} → "
        "Set Field-Level Security"
    )
