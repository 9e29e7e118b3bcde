"""A circuit breaker in front of Redis: fail fast instead of timing out per request.

After ``failures`` consecutive failures the breaker opens: for ``reset_seconds`` callers are
told not to try (reads answer from memory, writes a 503 at once). Then one trial call is
let through (half-open); its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from recsvc.clock import Clock, SystemClock
from recsvc.redis_client import UNAVAILABLE_ERRORS

T = TypeVar("T")


class CircuitBreaker:
    def __init__(
        self, failures: int = 3, reset_seconds: float = 5.0, clock: Clock | None = None
    ) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.clock = clock or SystemClock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self.clock.now() - self._opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether to call Redis now."""
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._trial_running = False
            if self._opened_at is not None or self._consecutive >= self.failures:
                self._opened_at = self.clock.now()

    def call(self, read: Callable[[], T], fallback: T) -> T:
        """``read()`` when the breaker lets a call through, recording how it went (a success
        also closes a half-open breaker, whichever read was its trial); ``fallback`` when
        the breaker is open or Redis is unreachable."""
        if not self.allow():
            return fallback
        try:
            with self.watching():
                return read()
        except UNAVAILABLE_ERRORS:
            return fallback

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Record the block as one call to Redis (the caller asked :meth:`allow` first): a
        failure when it raises one of the unavailable errors (raised on), a success
        otherwise (any other error means Redis answered). :meth:`call` for reads with an
        answer from memory; writes use it directly."""
        try:
            yield
        except UNAVAILABLE_ERRORS:
            self.failure()
            raise
        except BaseException:
            self.success()
            raise
        self.success()
