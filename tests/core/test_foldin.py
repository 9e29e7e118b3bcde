"""fold_in: the per-request ALS user vector equals the batch fold-in and a direct solve."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsvc.core.foldin import fold_in, gram_matrix
from recsvc.core.search import ExactIndex
from training.matrix import histories_matrix
from training.scorers import als_fold_in


def clustered(n_clusters: int = 8, per_cluster: int = 200, f: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((n_clusters, f))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    factors = centres[labels] + 0.3 * rng.standard_normal((len(labels), f))
    return (0.1 * factors).astype(np.float32), labels


def test_equals_batch_fold_in_and_brute_force_solve():
    factors, _ = clustered()
    gram = gram_matrix(factors)
    rows = np.array([5, 17, 17, 903, 1200])
    weights = np.array([1.0, 2.0, 0.5, 4.0, 1.0])
    x = fold_in(factors, gram, rows, weights, regularization=0.05, alpha=2.0)
    assert x.shape == (16,) and x.dtype == np.float32

    batch = histories_matrix([rows], len(factors), [weights])
    np.testing.assert_allclose(x, als_fold_in(factors, gram, batch, 0.05, 2.0)[0], rtol=1e-5)

    # The textbook form over every item: (Yᵀ C Y + λI) x = Yᵀ C p, p = [h > 0], with
    # implicit's confidence c = α·h on touched items (not 1 + α·h) and 1 elsewhere.
    h = np.asarray(batch.todense()).ravel().astype(np.float64)
    c = np.where(h > 0, 2.0 * h, 1.0)
    y = factors.astype(np.float64)
    direct = np.linalg.solve((y * c[:, None]).T @ y + 0.05 * np.eye(16), y.T @ (c * (h > 0)))
    np.testing.assert_allclose(x, direct, rtol=1e-4, atol=1e-6)


def test_empty_history_is_zero():
    factors, _ = clustered()
    assert not fold_in(factors, gram_matrix(factors), np.array([], int), None, 0.05).any()


def test_three_items_of_one_cluster_recommend_that_cluster():
    factors, labels = clustered()
    gram = gram_matrix(factors)
    history = np.flatnonzero(labels == 3)[:3]
    x = fold_in(factors, gram, history, None, regularization=0.05, alpha=10.0)
    rows, _ = ExactIndex(factors).search(x, 20)
    assert np.all(labels[rows] == 3)


def test_matches_batch_fold_in_on_many_histories():
    factors, _ = clustered(seed=4)
    gram = gram_matrix(factors)
    rng = np.random.default_rng(5)
    histories = [rng.choice(len(factors), rng.integers(1, 12)) for _ in range(20)]
    batch = sp.csr_matrix(histories_matrix(histories, len(factors)))
    expected = als_fold_in(factors, gram, batch, 0.1, 1.0)
    for row, history in enumerate(histories):
        got = fold_in(factors, gram, history, None, 0.1, 1.0)
        np.testing.assert_allclose(got, expected[row], rtol=1e-5, atol=1e-7)
