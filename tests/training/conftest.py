"""Fixtures for the training tests: interactions with planted structure.

Users fall into clusters, items into as many groups; a user's events are mostly on the
items of their own cluster. A model that learns anything beats popularity by far, and
folding in a few items of one group must bring back that group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from training.interactions import EVENT_CODES, Interactions

DAY = 86_400.0
START = 1_700_000_000.0  # 2023-11-14, any fixed epoch works


@dataclass(frozen=True)
class Planted:
    interactions: Interactions
    user_cluster: np.ndarray  # (n_users,) int
    item_cluster: np.ndarray  # (n_items,) int


def make_planted(
    n_users: int = 300,
    n_items: int = 150,
    clusters: int = 5,
    events_per_user: int = 30,
    in_cluster: float = 0.9,
    days: float = 60.0,
    seed: int = 7,
) -> Planted:
    rng = np.random.default_rng(seed)
    per_group = n_items // clusters
    user = np.repeat(np.arange(n_users), events_per_user)
    group = user % clusters
    # Within a group, item popularity falls off (Zipf-like), as in real catalogs.
    ranks = np.minimum(rng.zipf(1.6, len(user)) - 1, per_group - 1)
    own = group * per_group + ranks
    anywhere = rng.integers(0, n_items, len(user))
    item = np.where(rng.random(len(user)) < in_cluster, own, anywhere)
    time = START + rng.random(len(user)) * days * DAY
    kinds = np.array([EVENT_CODES[n] for n in ("product_view", "add_to_cart", "purchase")])
    event = kinds[rng.choice(3, len(user), p=[0.75, 0.17, 0.08])].astype(np.int8)
    order = np.argsort(time, kind="stable")
    interactions = Interactions(
        user=user[order].astype(np.int32),
        item=item[order].astype(np.int32),
        time=time[order],
        event=event[order],
        value=np.ones(len(user), np.float32),
        users=np.array([f"u{i}" for i in range(n_users)]),
        items=np.array([f"i{i}" for i in range(n_items)]),
    )
    return Planted(interactions, np.arange(n_users) % clusters, np.arange(n_items) // per_group)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


@pytest.fixture
def make_log():
    """Build small hand-written logs: ``make_log([(user, item, epoch s, type), ...])``."""
    return interactions_from


def interactions_from(rows: list[tuple[str, str, float, str]]) -> Interactions:
    """Small hand-written logs: (user, item, epoch seconds, event type) per row."""
    users = np.array(sorted({r[0] for r in rows}))
    items = np.array(sorted({r[1] for r in rows}))
    order = sorted(range(len(rows)), key=lambda i: rows[i][2])
    rows = [rows[i] for i in order]
    return Interactions(
        user=np.searchsorted(users, [r[0] for r in rows]).astype(np.int32),
        item=np.searchsorted(items, [r[1] for r in rows]).astype(np.int32),
        time=np.array([r[2] for r in rows], dtype=np.float64),
        event=np.array([EVENT_CODES[r[3]] for r in rows], dtype=np.int8),
        value=np.ones(len(rows), np.float32),
        users=users,
        items=items,
    )


@pytest.fixture(scope="session")
def gate_logs(tmp_path_factory: pytest.TempPathFactory):
    """Log folders of one generated store for the retraining gate: ``base``, ``full`` and
    ``shuffled`` (:func:`training.gate_drill.write_gate_logs`)."""
    from training.gate_drill import write_gate_logs

    return write_gate_logs(tmp_path_factory.mktemp("gate"))
