"""Sessions with a planted transition, and the session configurations every part is
tested in: shared by the scoring and the training tests of the session model."""

from __future__ import annotations

import numpy as np

from recsvc.scoring.session_model import (
    ALSParams,
    ItemKNNParams,
    RecentParams,
    SessionConfig,
    SessionKNNParams,
    TransitionParams,
    WalkParams,
)
from training.sessions import Sessions

HOUR = 3600.0
T0 = 1_440_000_000.0


def make_sessions(lists: list[list[int]], n_items: int, start: float = T0) -> Sessions:
    """Sessions of item rows, one per list, two hours apart, a minute between events."""
    return Sessions.of(lists, n_items, start=start, apart=2 * HOUR)


def planted_sessions(seed: int = 0) -> Sessions:
    """Item 0 ("A") is always followed by item 1 ("B"); other items are random, and the
    popular ones (2 … 5) are far more common than B."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(400):
        body = list(rng.choice(np.arange(2, 30), size=rng.integers(2, 5), p=None))
        body += list(rng.choice(np.arange(2, 6), size=3))
        if rng.random() < 0.3:
            at = rng.integers(0, len(body))
            body[at:at] = [0, 1]
        lists.append(body)
    return make_sessions(lists, 30)


CONFIGS = {
    "transitions": SessionConfig(transitions=TransitionParams()),
    "item_knn": SessionConfig(transitions=None, item_knn=ItemKNNParams(neighbours=20)),
    "session_knn": SessionConfig(transitions=None, session_knn=SessionKNNParams(neighbours=20)),
    "session_knn_stan": SessionConfig(
        transitions=None, session_knn=SessionKNNParams(neighbours=20, position_decay=1.0)
    ),
    "als": SessionConfig(transitions=None, als=ALSParams(factors=8, iterations=5)),
    "blend": SessionConfig(
        transitions=TransitionParams(), session_knn=SessionKNNParams(), recent=RecentParams()
    ),
    "blend_walk_idf": SessionConfig(
        transitions=TransitionParams(),
        walk=WalkParams(weight=0.5, backward=0.5),
        session_knn=SessionKNNParams(position_decay=2.0, idf_power=2.0, idf_boost=1.0),
        recent=RecentParams(),
    ),
}
