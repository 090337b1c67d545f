"""Planned failures: the emulator answers the next matching requests badly on purpose."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, fields

KINDS = frozenset({"status", "after_commit_delay", "drop", "delay", "expire_session"})


@dataclass
class Fault:
    """One planned failure; see ``FaultPlan``.

    kinds: ``status`` answers ``status`` + ``body`` without doing the work; ``after_commit_delay``
    does the work, then waits ``delay`` seconds before answering (a client timeout then leaves an
    ambiguous, committed write); ``drop`` does nothing and breaks the connection mid-response;
    ``delay`` waits, then proceeds; ``expire_session`` revokes every token, then proceeds.
    """

    method: str | None = None  # None matches any method
    path: str | None = None  # regex searched in the URL path; None matches any path
    kind: str = "status"
    status: int = 503
    body: object | None = None  # JSON-able, or a str sent as text/plain
    delay: float = 0.0
    times: int = 1  # matching requests affected before the fault is removed

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.path is not None:
            re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build from the control API's JSON; unknown keys are refused."""
        if not isinstance(data, dict):
            raise ValueError("a fault is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict:
        return asdict(self)


class FaultPlan:
    """Faults waiting for matching requests, first added first served. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, using up one of its ``times``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None
