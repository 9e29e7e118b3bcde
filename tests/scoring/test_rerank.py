"""rerank: boosts, MMR diversity and category caps."""

from __future__ import annotations

import numpy as np
import pytest

from recsvc.scoring.rerank import boost_scores, rerank


@pytest.fixture
def catalog():
    """Twelve candidates: the eight best are near-duplicates of category 0."""
    rng = np.random.default_rng(0)
    f = 8
    base = np.eye(f)
    categories = np.array([0] * 8 + [1, 2, 3, 1])
    factors = base[categories] + 0.05 * rng.standard_normal((12, f))
    rows = np.arange(12, dtype=np.int32)
    scores = np.linspace(1.0, 0.4, 12).astype(np.float32)
    return rows, scores, factors.astype(np.float32), categories


def test_diversity_zero_keeps_the_score_order(catalog):
    rows, scores, factors, categories = catalog
    got, got_scores = rerank(rows, scores, factors, categories, 6, diversity=0.0)
    assert got.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(got_scores, scores[:6])


def test_full_diversity_spreads_categories(catalog):
    rows, scores, factors, categories = catalog
    got, _ = rerank(rows, scores, factors, categories, 4, diversity=1.0)
    assert got[0] == 0  # the best item still leads
    assert sorted(categories[got].tolist()) == [0, 1, 2, 3]


def test_diversity_spreads_by_factors_without_categories(catalog):
    rows, scores, factors, _ = catalog
    got, _ = rerank(rows, scores, factors, None, 4, diversity=0.7)
    assert got[0] == 0
    assert len(set(got.tolist()) & set(range(8))) < 4  # not four near-duplicates


def test_mmr_is_deterministic(catalog):
    rows, scores, factors, categories = catalog
    first = rerank(rows, scores, factors, categories, 8, diversity=0.5)[0]
    for _ in range(3):
        assert rerank(rows, scores, factors, categories, 8, diversity=0.5)[0].tolist() == (
            first.tolist()
        )


def test_boost_moves_a_category_up(catalog):
    rows, scores, factors, categories = catalog
    got, got_scores = rerank(rows, scores, factors, categories, 3, boost_categories={2: 3.0})
    assert got.tolist() == [9, 0, 1]
    assert got_scores[0] == pytest.approx(scores[9] * 3.0)


def test_boost_raises_negative_scores_too():
    boosted = boost_scores(np.array([-2.0, 1.0], np.float32), np.array([5, 6]), {5: 2.0, 6: 2.0})
    assert boosted.tolist() == [-1.0, 2.0]
    with pytest.raises(ValueError):
        boost_scores(np.ones(1, np.float32), np.array([1]), {1: 0.0})


def test_category_cap(catalog):
    rows, scores, factors, categories = catalog
    got, _ = rerank(rows, scores, factors, categories, 5, category_cap=2)
    assert got.tolist() == [0, 1, 8, 9, 10]
    got, _ = rerank(rows, scores, factors, categories, 5, diversity=0.3, category_cap=1)
    assert len(set(categories[got].tolist())) == len(got) == 4


def test_fewer_candidates_than_n(catalog):
    rows, scores, factors, _ = catalog
    got, _ = rerank(rows[:3], scores[:3], factors, None, 10, diversity=0.5)
    assert sorted(got.tolist()) == [0, 1, 2]
    got, _ = rerank(rows[:3], scores[:3], factors, None, 10)
    assert got.tolist() == [0, 1, 2]
