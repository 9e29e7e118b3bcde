"""ItemIndex: exact and norm-pruned search agree with a brute-force top-k."""

from __future__ import annotations

import numpy as np
import pytest

from recsvc.scoring.index import (
    SUBSET_MAX_ITEMS,
    ExactIndex,
    ItemIndex,
    NormPrunedIndex,
)


def planted_factors(n_items: int = 30_000, f: int = 32, seed: int = 0) -> np.ndarray:
    """Clustered items with heavy-tailed norms, like ALS factors (popular items long)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, f))
    items = centres[rng.integers(0, 40, n_items)] + 0.5 * rng.standard_normal((n_items, f))
    items *= rng.pareto(2.0, n_items)[:, None] + 0.05
    return items.astype(np.float32)


def brute_force(factors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = factors.astype(np.float64) @ query.astype(np.float64)
    return np.argsort(-scores, kind="stable")[:k]


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return planted_factors()


@pytest.fixture(scope="module")
def queries(factors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    return factors[rng.choice(len(factors), 40)] + 0.1 * rng.standard_normal((40, 32))


@pytest.mark.parametrize("method", ["exact", "pruned"])
@pytest.mark.parametrize("k", [10, 100])
def test_recall_against_brute_force_is_one(factors, queries, method, k):
    index = ItemIndex.build(factors, method)
    for query in queries:
        rows, scores = index.search(query, k)
        assert rows.dtype == np.int32 and scores.dtype == np.float32
        assert len(rows) == k
        truth = brute_force(factors, query, k)
        # Both are exact: float32 vs float64 rounding may swap near-ties at the border only.
        assert len(np.intersect1d(rows, truth)) >= k - 1
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, factors[rows] @ query.astype(np.float32), rtol=1e-5)


def test_pruned_equals_exact_and_prunes(factors, queries):
    exact, pruned = ExactIndex(factors), NormPrunedIndex(factors)
    for query in queries:
        a_rows, a_scores = exact.search(query, 50)
        b_rows, b_scores = pruned.search(query, 50)
        np.testing.assert_array_equal(a_scores, b_scores)
        np.testing.assert_array_equal(a_rows, b_rows)


def test_auto_picks_exact_for_small_catalogs(factors):
    assert isinstance(ItemIndex.build(factors[:1000]), ExactIndex)
    assert isinstance(ItemIndex.build(factors), NormPrunedIndex)


@pytest.mark.parametrize("method", ["exact", "pruned"])
@pytest.mark.parametrize("allowed_share", [0.02, 0.9])
def test_allowed_mask_is_respected(factors, queries, method, allowed_share):
    rng = np.random.default_rng(2)
    mask = rng.random(len(factors)) < allowed_share
    index = ItemIndex.build(factors, method)
    allowed = np.flatnonzero(mask)
    for query in queries[:10]:
        rows, _ = index.search(query, 30, allowed_mask=mask)
        assert mask[rows].all()
        truth = allowed[brute_force(factors[allowed], query, 30)]
        assert len(np.intersect1d(rows, truth)) >= 29


def test_mask_on_the_pruned_path_scans_past_filtered_blocks(factors, queries):
    # Allow only the shortest items: the pruned search must not stop on the long ones.
    norms = np.linalg.norm(factors, axis=1)
    mask = norms <= np.quantile(norms, 0.5)
    assert mask.sum() > SUBSET_MAX_ITEMS
    rows, _ = NormPrunedIndex(factors).search(queries[0], 20, allowed_mask=mask)
    expected, _ = ExactIndex(factors).search(queries[0], 20, allowed_mask=mask)
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize("method", ["exact", "pruned"])
def test_k_larger_than_catalog_and_empty_mask(method):
    factors = planted_factors(n_items=25_000, f=8)
    index = ItemIndex.build(factors, method)
    query = np.ones(8, np.float32)
    rows, scores = index.search(query, 30_000)
    assert sorted(rows.tolist()) == list(range(25_000))
    assert np.all(np.diff(scores) <= 0)
    mask = np.zeros(25_000, bool)
    assert len(index.search(query, 10, allowed_mask=mask)[0]) == 0
    mask[[3, 7]] = True
    assert sorted(index.search(query, 10, allowed_mask=mask)[0].tolist()) == [3, 7]
    assert len(index.search(query, 0)[0]) == 0
    with pytest.raises(ValueError, match="allowed_mask"):
        index.search(query, 10, allowed_mask=np.ones(5, bool))


def test_zero_query_scans_everything_and_breaks_ties_by_row():
    factors = planted_factors(n_items=21_000, f=8)
    rows, scores = NormPrunedIndex(factors).search(np.zeros(8, np.float32), 5)
    assert np.all(scores == 0)
    assert len(rows) == 5
