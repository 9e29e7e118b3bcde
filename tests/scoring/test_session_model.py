"""One session scored and explained (recsvc.scoring.session_model): the served top equals the
dense scores' top with filters, the parts' formulas on hand-computed examples, and each
recommended item's score split over the session's items."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from session_support import CONFIGS, make_sessions, planted_sessions

from recsvc.scoring.session_model import (
    ItemKNNParams,
    RecentParams,
    SessionConfig,
    SessionKNNParams,
    TransitionParams,
    WalkParams,
    dense_scores,
    explain_session,
    recommend_session,
    tuned_blend,
)
from recsvc.scoring.topk import top_k
from training.sessions import Sessions, fit_session_model, item_idf


def sessions_of(lists: list[list[int]], n_items: int) -> Sessions:
    return Sessions.of(lists, n_items, start=1e9, apart=1e4)


def recency_weights(session: list[int], decay: float, n_items: int) -> np.ndarray:
    """``Σ decay^(n − p)`` per item over the positions of the session (the newest 1)."""
    weights = np.zeros(n_items)
    for age, item in enumerate(reversed(session)):
        weights[item] += decay**age
    return weights


@pytest.mark.parametrize("scaling", ["sum", "max"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_session_ranks_as_its_dense_scores_do_with_filters(name: str, scaling: str) -> None:
    # recommend_session ranks the items scored plus the most popular unscored ones; it must
    # return what ranking every item's dense score returns, filters applied the same way.
    model = fit_session_model(planted_sessions(), replace(CONFIGS[name], scaling=scaling))
    rng = np.random.default_rng(1)
    for trial in range(20):
        session = rng.choice(30, size=rng.integers(1, 6)).tolist()
        allowed = rng.random(30) < (0.3 if trial % 2 else 1.0)
        k = int(rng.integers(1, 12))
        dense = dense_scores(model, session)[None, :]
        dense[0, ~allowed] = -np.inf
        want_ids, want_scores = top_k(dense, k)
        got = recommend_session(model, session, k, allowed)
        np.testing.assert_allclose(got.scores, want_scores[0], rtol=1e-5)
        finite = np.isfinite(want_scores[0])
        assert set(got.ids[finite]) == set(want_ids[0][finite])
        assert (got.ids[~finite] == -1).all() and allowed[got.ids[finite]].all()


def test_an_empty_session_gets_the_most_popular_allowed_items() -> None:
    model = fit_session_model(planted_sessions(), CONFIGS["transitions"])
    allowed = np.ones(30, bool)
    allowed[np.argmax(model.popularity)] = False
    got = recommend_session(model, [], 3, allowed)
    want = [row for row in np.argsort(-model.popularity, kind="stable") if allowed[row]][:3]
    assert got.ids.tolist() == want


def test_position_decay_favours_the_item_right_after_the_shared_one() -> None:
    # One neighbour: the shared item 0 is followed by 1, and 2 comes four steps later.
    train = make_sessions([[0, 1, 3, 4, 5, 2]], 6)
    params = SessionKNNParams(neighbours=5, history_decay=0.5)
    plain = fit_session_model(train, SessionConfig(transitions=None, session_knn=params))
    stan = fit_session_model(
        train,
        SessionConfig(transitions=None, session_knn=replace(params, position_decay=1.0)),
    )
    before, after = dense_scores(plain, [0]), dense_scores(stan, [0])
    assert before[1] == pytest.approx(before[2], rel=0.05)  # only popularity breaks the tie
    assert after[1] > after[3] > after[2] > 0


def test_walk_takes_two_steps_over_row_normalised_rules() -> None:
    # Rules 0→1, 0→2, 1→3, 2→3, 2→4: P[0] = (½ to 1, ½ to 2), P[1] = 3, P[2] = ½ 3 + ½ 4,
    # so two steps from 0 reach 3 with ½ + ¼ and 4 with ¼; 3 and 4 lead nowhere.
    train = make_sessions([[0, 1], [0, 2], [1, 3], [2, 3], [2, 4]], 5)
    walk = WalkParams(steps=1, history_decay=0.5)

    def scores(params: WalkParams, session: list[int]) -> list[float]:
        config = SessionConfig(transitions=None, walk=params, popularity_tiebreak=0.0)
        model = fit_session_model(train, config)
        return dense_scores(model, session).tolist()

    inf = float("-inf")
    assert scores(walk, [0]) == pytest.approx([inf, 0, 0, 0.75, 0.25])
    assert scores(replace(walk, hops=1), [0]) == pytest.approx([inf, 0.5, 0.5, 0, 0])
    # From [1, 0]: q = ½·1 + 0; one step ½·3 + ½·1 + ½·2; two steps ½·3 + ¼·3 + ¼·4,
    # the mass that reached 3 leaving the walk.
    assert scores(walk, [1, 0]) == pytest.approx([inf, 0, 0, 0.75, 0.25])


def test_idf_weighting_lets_a_rare_shared_item_outweigh_a_common_one() -> None:
    # N = 4 sessions; items 1 and 4 are in one each (ι = 1), 0, 2, 3 in two (ι = ½).
    train = make_sessions([[0, 1], [0, 2], [3, 2], [3, 4]], 5)
    params = SessionKNNParams(neighbours=10, sample=10, history_decay=0.5, normalize=False)
    plain_model = fit_session_model(
        train, SessionConfig(transitions=None, session_knn=params, popularity_tiebreak=0.0)
    )
    assert plain_model.item_idf is None
    idf_params = replace(params, idf_power=2.0, idf_boost=1.0)
    model = fit_session_model(
        train, SessionConfig(transitions=None, session_knn=idf_params, popularity_tiebreak=0.0)
    )
    np.testing.assert_allclose(model.item_idf, [0.5, 1.0, 0.5, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(item_idf(model.session_items), model.item_idf)
    session = [1, 3]  # w_1 = ½, w_3 = 1
    # Plain: sim(s0) = ½, sim(s2) = sim(s3) = 1; item scores 0: ½, 1: ½, 2: 1, 3: 2, 4: 1.
    plain = dense_scores(plain_model, session)
    np.testing.assert_allclose(plain[[0, 1, 2, 4]], np.array([0.5, 0.5, 1, 1]) / 5, rtol=1e-6)
    # idf: sim(s0) = ½·1² = ½, sim(s2) = sim(s3) = 1·½² = ¼; scores 0: ½, 1: ½, 2: ¼,
    # 3: ½, 4: ¼, each times 1 + ι: 0.75, 1, 0.375, 0.75, 0.5 (sum 3.375).
    weighted = dense_scores(model, session)
    expected = np.array([0.75, 1.0, 0.375, 0.5]) / 3.375
    np.testing.assert_allclose(weighted[[0, 1, 2, 4]], expected, rtol=1e-6)
    assert weighted[3] == -np.inf and weighted[0] > weighted[2]  # plain: 0 below 2


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
    walk2 = (model.walk @ model.walk).toarray()
    matrices = {
        "transitions": model.transitions.toarray(),
        "walk": walk2,
        "item_knn": model.item_similarity.toarray(),
        "recent": np.eye(12),
    }
    contribution = np.zeros((12, len(found.ids)))
    for name, matrix in matrices.items():
        weights = recency_weights(session, getattr(config, name).history_decay, 12)
        contribution += found.factors[name] * weights[:, None] * matrix[:, found.ids]
    want = contribution / contribution.sum(axis=0)
    rows, shares = explain_session(model, session, found.ids, found.factors, top=3)
    for k in range(len(found.ids)):
        for row, share in zip(rows[k], shares[k], strict=True):
            if row >= 0:
                assert share == pytest.approx(want[row, k], rel=1e-4)
        assert shares[k, 0] == pytest.approx(want[:, k].max(), rel=1e-4)


def test_recency_weights_favour_the_newest_item() -> None:
    # The session's own items, scaled to a sum of 1: [3, 1, 3, 2] with decay ½ weighs
    # 2 (the newest, never returned) by 1, 3 by ½ + ⅛, 1 by ¼.
    config = SessionConfig(
        transitions=None, recent=RecentParams(history_decay=0.5), popularity_tiebreak=0.0
    )
    model = fit_session_model(make_sessions([[0, 1, 2, 3]], 4), config)
    scores = dense_scores(model, [3, 1, 3, 2])
    total = 1 + 0.625 + 0.25
    assert scores.tolist() == pytest.approx([0.0, 0.25 / total, -np.inf, 0.625 / total])
