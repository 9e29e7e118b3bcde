"""explain: ALS score decomposition over the history."""

from __future__ import annotations

import numpy as np

from recsvc.core.explain import explain, history_shares
from recsvc.core.foldin import fold_in, gram_matrix


def planted(seed: int = 0):
    """Eight clusters of 50 items along the eight axes: every factor direction is used, as
    in a fitted model (an unused direction makes W = A⁻¹ large there, and noise rules)."""
    rng = np.random.default_rng(seed)
    f = 8
    labels = np.repeat(np.arange(f), 50)
    factors = 2.0 * np.eye(f)[labels] + 0.2 * rng.standard_normal((400, f))
    return (0.1 * factors).astype(np.float32), labels


def test_shares_sum_to_one_and_reproduce_the_score():
    factors, _ = planted()
    gram = gram_matrix(factors)
    history, weights = np.array([0, 150, 151, 250]), np.array([1.0, 1.0, 2.0, 1.0])
    recommended = np.array([10, 160, 260, 399])
    shares, rows = history_shares(history, weights, factors, gram, 0.05, 3.0, recommended)
    assert rows.tolist() == [0, 150, 151, 250]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-9)
    # The terms behind the shares add up to the fold-in score itself.
    x = fold_in(factors, gram, history, weights, 0.05, 3.0)
    scores = factors[recommended].astype(np.float64) @ x
    terms = shares * scores[:, None]
    np.testing.assert_allclose(terms.sum(axis=1), scores, rtol=1e-5)


def test_dominant_history_item_is_the_planted_one():
    factors, labels = planted()
    gram = gram_matrix(factors)
    history = np.array([5, 60, 61, 110])  # one item of cluster 0, two of 1, one of 2
    recommended = np.array([30, 80, 140])  # from clusters 0, 1, 2
    rows, shares = explain(history, None, factors, gram, 0.05, 5.0, recommended, top=2)
    assert rows.shape == (3, 2) and rows.dtype == np.int32 and shares.dtype == np.float32
    assert rows[0, 0] == 5
    assert labels[rows[1]].tolist() == [1, 1]  # both B items lead for the B item
    assert rows[2, 0] == 110
    assert shares[0, 0] > 0.8 and shares[2, 0] > 0.8
    assert np.all(np.diff(shares, axis=1) <= 0)


def test_short_history_is_padded_and_empty_history_explains_nothing():
    factors, _ = planted()
    gram = gram_matrix(factors)
    rows, shares = explain(np.array([7, 7]), None, factors, gram, 0.05, 1.0, np.array([8]), top=3)
    assert rows.tolist() == [[7, -1, -1]]
    np.testing.assert_allclose(shares, [[1.0, 0.0, 0.0]], rtol=1e-6)
    rows, shares = explain(np.array([], int), None, factors, gram, 0.05, 1.0, np.array([8, 9]))
    assert (rows == -1).all() and not shares.any()
