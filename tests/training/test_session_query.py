"""One session's explanation: each recommended item's score split over the session's
items, checked against hand-computed shares. (That one session ranks as the batch does
is tested in test_sessions.py, beside the batch scorer.)"""

from __future__ import annotations

import numpy as np
import pytest

from training.session_query import explain_session, recommend_session
from training.sessions import (
    ItemKNNParams,
    RecentParams,
    SessionBatch,
    SessionConfig,
    SessionKNNParams,
    Sessions,
    TransitionParams,
    WalkParams,
    fit_session_model,
    tuned_blend,
)


def sessions_of(lists: list[list[int]], n_items: int) -> Sessions:
    return Sessions.of(lists, n_items, start=1e9, apart=1e4)


def test_shares_follow_the_rules_each_session_item_contributes():
    # T[0, 1] = 1 and T[2, 1] = 2. Session [0, 2] with decay 0.5 weighs 0 by 0.5 and 2 by
    # 1, so item 1 scores 0.5 * 1 + 1 * 2: shares 0.8 from item 2, 0.2 from item 0.
    train = sessions_of([[0, 1], [2, 1], [2, 1]], 4)
    config = SessionConfig(transitions=TransitionParams(steps=1, history_decay=0.5))
    model = fit_session_model(train, config)
    found = recommend_session(model, [0, 2], 1)
    assert found.ids.tolist() == [1]
    rows, shares = explain_session(model, [0, 2], found.ids, found.factors)
    assert rows[0].tolist() == [2, 0, -1]
    assert shares[0].tolist() == pytest.approx([0.8, 0.2, 0.0])


def test_parts_add_up_and_session_knn_is_not_split():
    # recent (weight 1) puts 1/1.5 of its unit mass on item 0 (weight 1 vs 0.5 for item
    # 3), rules put all theirs on item 1; session-kNN's score is left out of the shares.
    train = sessions_of([[0, 1], [0, 1], [3, 2]], 4)
    config = SessionConfig(
        transitions=TransitionParams(steps=1, history_decay=0.5),
        session_knn=SessionKNNParams(neighbours=5),
        recent=RecentParams(history_decay=0.5),
        exclude_current=False,
    )
    model = fit_session_model(train, config)
    found = recommend_session(model, [3, 0], 4)
    rows, shares = explain_session(model, [3, 0], np.array([0, 1, 3, -1]), found.factors)
    assert rows[0, 0] == 0 and shares[0, 0] == pytest.approx(1.0)  # recent only: itself
    assert rows[1, 0] == 0 and shares[1, 0] == pytest.approx(1.0)  # 0 -> 1
    assert rows[2, 0] == 3 and shares[2, 0] == pytest.approx(1.0)
    assert rows[3].tolist() == [-1, -1, -1]
    assert "session_knn" in found.factors


def test_a_session_of_items_no_train_session_holds_gets_popular_items():
    train = sessions_of([[0, 1], [0, 1], [2, 1]], 5)  # items 3 and 4 in no session
    model = fit_session_model(train, tuned_blend())
    found = recommend_session(model, [3, 4], 2)
    # 3, the session's own earlier item, then the most popular: 1 (in three sessions).
    assert found.ids.tolist() == [3, 1]
    rows, _shares = explain_session(model, [3, 4], found.ids, found.factors)
    assert rows[0, 0] == 3 and (rows[1] == -1).all()


def test_shares_match_the_dense_decomposition_with_a_two_hop_walk():
    rng = np.random.default_rng(3)
    train = sessions_of([list(rng.choice(12, size=rng.integers(2, 6))) for _ in range(80)], 12)
    config = SessionConfig(
        transitions=TransitionParams(history_decay=0.5),
        walk=WalkParams(weight=2.0, history_decay=0.5, hops=2),
        item_knn=ItemKNNParams(weight=0.5, neighbours=5, history_decay=0.7),
        recent=RecentParams(history_decay=0.5),
    )
    model = fit_session_model(train, config)
    session = [4, 7, 1, 7]
    found = recommend_session(model, session, 6)
    batch = SessionBatch.of([session])
    walk2 = (model.walk @ model.walk).toarray()
    matrices = {
        "transitions": model.transitions.toarray(),
        "walk": walk2,
        "item_knn": model.item_similarity.toarray(),
        "recent": np.eye(12),
    }
    contribution = np.zeros((12, len(found.ids)))
    for name, matrix in matrices.items():
        weights = batch.weights(getattr(config, name).history_decay, 12).toarray()[0]
        contribution += found.factors[name] * weights[:, None] * matrix[:, found.ids]
    want = contribution / contribution.sum(axis=0)
    rows, shares = explain_session(model, session, found.ids, found.factors, top=3)
    for k in range(len(found.ids)):
        for row, share in zip(rows[k], shares[k], strict=True):
            if row >= 0:
                assert share == pytest.approx(want[row, k], rel=1e-4)
        assert shares[k, 0] == pytest.approx(want[:, k].max(), rel=1e-4)
