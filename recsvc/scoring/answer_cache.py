"""A bounded LRU of strategy answers within one model version.

Anonymous visitors repeat each other: everyone who lands on a popular product from the
same ad has the same one-item session, and the session strategy's answer depends only on
the session's items, the request's filters and how many items it asks for. Replaying
RetailRocket's log through the profile's recent items (``python -m
loadtests.session_repeats``), 28% of the session questions repeat one among the last
10,000 distinct ones (25% with two workers, each with its own cache), 56% among the last
100,000. At 100k items (``python -m loadtests.bench_strategies``) the session strategy
costs about 1.1 ms of CPU a request; a hit 0.03 ms, a miss 0.08 ms more than no cache
(the filters' digest).

The known-visitor blend keeps its session part here too: the session model's scores of
a current session (:class:`~recsvc.scoring.session_model.SessionScores`) depend on its
items only, so visitors who share a session, or a page that asks twice, score it once
(0.5 ms of the blend's 1.7 ms at 100k items).

The cache belongs to one :class:`~recsvc.scoring.model.ScoringModel`, so a new version
starts empty and an old one's answers go with it. It holds answers (``k`` rows, scores,
evidence: about 3 KB with ten items) and sessions' scores (the few hundred items a
session scores: 3-8 KB), never the scores of the whole catalog, so the default 10,000
entries cost a worker 30-80 MB. The arrays it hands out are read-only: one object serves
many requests. Thread-safe: gunicorn's gthread workers share one per process.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

Held = TypeVar("Held")


class AnswerCache:
    """Least recently used answers, at most ``capacity`` of them (0: keep none)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, int(capacity))
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Held]) -> Held:
        """The answer held for ``key``, else ``compute()``'s, kept for next time. Two
        threads missing the same key both compute it (no lock is held while computing:
        a slow request must not stall the others); the later one's answer is kept."""
        if not self.capacity:
            return compute()
        with self._lock:
            held = self._entries.get(key)
            if held is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return held
            self.misses += 1
        answer = _frozen(compute())
        with self._lock:
            self._entries[key] = answer
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return answer

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


def _frozen(answer: Held) -> Held:
    """``answer`` (a dataclass) with its arrays made read-only: a caller that would change
    a shared answer in place fails loudly instead of corrupting the next visitor's."""
    for field in dataclasses.fields(answer):  # type: ignore[arg-type]
        value = getattr(answer, field.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return answer
