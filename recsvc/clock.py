"""The one source of "now": injectable, so tests and load tests can fast-forward time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float | datetime) -> None:
        self.value = start.timestamp() if isinstance(start, datetime) else float(start)

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def utc(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), UTC)
