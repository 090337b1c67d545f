"""Injected failures, so clients can be tested against a misbehaving Aircall."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "drop", "delay"]


@dataclass
class Fault:
    """One planned failure for requests whose method and path match.

    ``path`` is a regular expression searched in the request path (``/v1/calls/\\d+``).
    ``kind``: ``status`` answers ``status`` with ``body`` (a JSON value or text; a standard
    ``{"error","troubleshoot"}`` when None); ``drop`` closes the connection mid-response without
    handling the request; ``delay`` waits ``delay`` seconds, then handles the request normally.
    ``times`` is how many requests it hits (None: until cleared). A 429 carries the rate headers,
    ``reset`` overriding ``X-AircallApi-Reset``.
    """

    method: str | None = None
    path: str | None = None
    kind: FaultKind = "status"
    status: int = 503
    body: Any = None
    delay: float = 0.0
    times: int | None = 1
    reset: int | None = None
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("status", "drop", "delay"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
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


class FaultPlan:
    """Faults waiting to hit requests, consumed first-added first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, counted as used once."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)
