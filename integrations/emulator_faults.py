"""Planned failures both emulators share: which requests a fault hits, and how often.

Each emulator subclasses ``Fault`` with the kinds (and fields) it knows how to apply, and keeps a
``FaultPlan`` of them; applying a fault stays with the emulator's own ASGI layer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Generic, Self, TypeVar


@dataclass
class Fault:
    """One planned failure for requests whose method and path match.

    ``path`` is a regular expression searched in the request path; None matches any path (and
    ``method`` None any method). Kinds every emulator applies: ``status`` answers ``status`` with
    ``body`` (a JSON value, or a str sent as text) without handling the request; ``drop`` breaks
    the connection mid-response without handling the request; ``delay`` waits ``delay`` seconds,
    then handles the request normally. ``times`` is how many requests it still hits (None: until
    cleared).
    """

    KINDS: ClassVar[frozenset[str]] = frozenset({"status", "drop", "delay"})

    method: str | None = None
    path: str | None = None
    kind: str = "status"
    status: int = 503
    body: Any = None
    delay: float = 0.0
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(self.KINDS)}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"not an HTTP status: {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for unlimited)")
        if self.path is not None:
            re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    @classmethod
    def from_json(cls, data: object) -> Self:
        """Build from a control API's JSON; unknown keys are refused."""
        if not isinstance(data, dict):
            raise ValueError("a fault is a JSON object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


F = TypeVar("F", bound=Fault)


class FaultPlan(Generic[F]):
    """Faults waiting for matching requests, first added first served. Thread-safe: tests add
    faults from their own thread while the emulator serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def add(self, fault: F) -> F:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[F]:
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> F | None:
        """The first fault matching this request, using up one of its ``times``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)
