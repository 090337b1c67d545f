"""A value read from the database, kept per engine for a few seconds.

For hot paths (each webhook) that read rarely edited rows: an edit made in this process calls
``invalidate`` and is seen at once; one made by another process is seen within ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import Engine

T = TypeVar("T")


class EngineCache(Generic[T]):
    """``get(engine, load)`` calls ``load()`` at most every ``ttl`` seconds per engine.

    Cached values are shared between threads: keep them immutable (not ORM instances).
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._generation = 0  # bumped by invalidate: a load that overlapped one is not kept
        self._values: weakref.WeakKeyDictionary[Engine, tuple[float, T]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, engine: Engine, load: Callable[[], T]) -> T:
        now = self.clock()
        with self._lock:
            hit = self._values.get(engine)
            generation = self._generation
        if hit is not None and now - hit[0] <= self.ttl:
            return hit[1]
        value = load()  # outside the lock: two threads may both load, and both are right
        with self._lock:
            if generation == self._generation:
                self._values[engine] = (now, value)
        return value

    def invalidate(self, engine: Engine) -> None:
        with self._lock:
            self._generation += 1
            self._values.pop(engine, None)
