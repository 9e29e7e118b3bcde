"""FoldIn: the ALS user vector of a history, and its split over the history's items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsvc.scoring.foldin import FoldIn
from recsvc.scoring.index import ExactIndex
from training.matrix import histories_matrix


def clustered(n_clusters: int = 8, per_cluster: int = 200, f: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((n_clusters, f))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    factors = centres[labels] + 0.3 * rng.standard_normal((len(labels), f))
    return (0.1 * factors).astype(np.float32), labels


def planted(seed: int = 0):
    """Eight clusters of 50 items along the eight axes: every factor direction is used, as
    in a fitted model (an unused direction makes A⁻¹ large there, and noise rules)."""
    rng = np.random.default_rng(seed)
    f = 8
    labels = np.repeat(np.arange(f), 50)
    factors = 2.0 * np.eye(f)[labels] + 0.2 * rng.standard_normal((400, f))
    return (0.1 * factors).astype(np.float32), labels


def textbook(factors, history_matrix, regularization, alpha):
    """The textbook form over every item: (Yᵀ C Y + λI) x = Yᵀ C p, p = [h > 0], with
    implicit's confidence c = α·h on touched items (not 1 + α·h) and 1 elsewhere."""
    h = np.asarray(history_matrix.todense()).ravel().astype(np.float64)
    c = np.where(h > 0, alpha * h, 1.0)
    y = factors.astype(np.float64)
    f = y.shape[1]
    return np.linalg.solve((y * c[:, None]).T @ y + regularization * np.eye(f), y.T @ (c * (h > 0)))


def test_vector_is_the_direct_solve_over_the_whole_catalog():
    factors, _ = clustered()
    rows = np.array([5, 17, 17, 903, 1200])
    weights = np.array([1.0, 2.0, 0.5, 4.0, 1.0])
    x = FoldIn(factors, regularization=0.05, alpha=2.0).vector(rows, weights)
    assert x.shape == (16,) and x.dtype == np.float32
    expected = textbook(factors, histories_matrix([rows], len(factors), [weights]), 0.05, 2.0)
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-6)


def test_empty_history_is_zero():
    factors, _ = clustered()
    assert not FoldIn(factors, 0.05).vector(np.array([], int)).any()


def test_three_items_of_one_cluster_recommend_that_cluster():
    factors, labels = clustered()
    history = np.flatnonzero(labels == 3)[:3]
    x = FoldIn(factors, regularization=0.05, alpha=10.0).vector(history)
    rows, _ = ExactIndex(factors).search(x, 20)
    assert np.all(labels[rows] == 3)


def test_batch_rows_are_single_vectors():
    factors, _ = clustered(seed=4)
    folder = FoldIn(factors, 0.1, 1.0)
    rng = np.random.default_rng(5)
    histories = [rng.choice(len(factors), rng.integers(1, 12)) for _ in range(20)]
    batch = sp.csr_matrix(histories_matrix(histories, len(factors)))
    together = folder.vectors(batch)
    for row in range(len(histories)):
        lo, hi = batch.indptr[row], batch.indptr[row + 1]
        single = folder.vector(batch.indices[lo:hi], batch.data[lo:hi])
        np.testing.assert_array_equal(together[row], single)
    empty = folder.vectors(sp.csr_matrix((2, len(factors)), dtype=np.float32))
    assert not empty.any()


def test_shares_sum_to_one_and_reproduce_the_score():
    factors, _ = planted()
    folder = FoldIn(factors, 0.05, 3.0)
    history, weights = np.array([0, 150, 151, 250]), np.array([1.0, 1.0, 2.0, 1.0])
    recommended = np.array([10, 160, 260, 399])
    shares, rows = folder.shares(history, weights, recommended)
    assert rows.tolist() == [0, 150, 151, 250]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-9)
    # The terms behind the shares add up to the fold-in score itself.
    scores = factors[recommended].astype(np.float64) @ folder.vector(history, weights)
    np.testing.assert_allclose((shares * scores[:, None]).sum(axis=1), scores, rtol=1e-5)


def test_dominant_history_item_is_the_planted_one():
    factors, labels = planted()
    history = np.array([5, 60, 61, 110])  # one item of cluster 0, two of 1, one of 2
    recommended = np.array([30, 80, 140])  # from clusters 0, 1, 2
    rows, shares = FoldIn(factors, 0.05, 5.0).explain(history, None, recommended, top=2)
    assert rows.shape == (3, 2) and rows.dtype == np.int32 and shares.dtype == np.float32
    assert rows[0, 0] == 5
    assert labels[rows[1]].tolist() == [1, 1]  # both B items lead for the B item
    assert rows[2, 0] == 110
    assert shares[0, 0] > 0.8 and shares[2, 0] > 0.8
    assert np.all(np.diff(shares, axis=1) <= 0)


def test_short_history_is_padded_and_empty_history_explains_nothing():
    factors, _ = planted()
    folder = FoldIn(factors, 0.05, 1.0)
    rows, shares = folder.explain(np.array([7, 7]), None, np.array([8]), top=3)
    assert rows.tolist() == [[7, -1, -1]]
    np.testing.assert_allclose(shares, [[1.0, 0.0, 0.0]], rtol=1e-6)
    rows, shares = folder.explain(np.array([], int), None, np.array([8, 9]))
    assert (rows == -1).all() and not shares.any()
