"""The scorer protocol, tested once for every scorer; then what each must learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsvc.scoring.topk import top_k
from training.folds import make_fold
from training.matrix import build_matrix, histories_matrix
from training.metrics import compute_metrics
from training.scorers import (
    ALSScorer,
    BlendScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    RecentItemsScorer,
    Scorer,
    TrendingScorer,
    make_scorer,
)
from training.splits import split_global_time
from training.weights import load_weights

DAY = 86_400.0

FACTORIES = {
    "als": lambda: ALSScorer(factors=16, iterations=10, num_threads=1),
    "bpr": lambda: BPRScorer(factors=16, iterations=60, num_threads=1),
    "item_knn_bm25": lambda: ItemKNNScorer(neighbours=30, similarity="bm25", num_threads=1),
    "item_knn_cosine": lambda: ItemKNNScorer(neighbours=30, similarity="cosine", num_threads=1),
    "popular": PopularScorer,
    "recent": RecentItemsScorer,
    "trending": lambda: TrendingScorer(window_days=10, half_life_days=3),
    "blend": lambda: BlendScorer(
        {"recent": (RecentItemsScorer(), 1.0), "knn": (ItemKNNScorer(neighbours=30), 0.5)}
    ),
}


@pytest.fixture(scope="module")
def fold(planted):
    return make_fold(split_global_time(planted.interactions, test_days=12), load_weights())


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request, fold) -> Scorer:
    return FACTORIES[request.param]().fit(fold.train)


class TestProtocol:
    """What every scorer promises, whatever it learns."""

    def test_scores_have_the_documented_shape(self, fitted: Scorer, fold) -> None:
        scores = fitted.score_users(fold.users[:5])
        assert scores.shape == (5, fold.train.shape[1]) and scores.dtype == np.float32
        h = histories_matrix([np.array([0, 1]), np.array([2])], fold.train.shape[1])
        assert fitted.score_histories(h).shape == (2, fold.train.shape[1])
        assert fitted.n_items == fold.train.shape[1]
        json.dumps(fitted.params())

    def test_recommend_ranks_by_score_and_never_returns_an_excluded_item(
        self, fitted: Scorer, fold
    ) -> None:
        ids, scores = fitted.recommend(fold.users, 10, exclude=fold.exclude)
        assert ids.shape == scores.shape == (len(fold.users), 10)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        assert np.all(np.diff(scores, axis=1) <= 0)
        for row in range(len(fold.users)):
            shown = ids[row][ids[row] >= 0]
            assert len(set(shown)) == len(shown)
            assert not set(shown) & set(fold.exclude[row].indices)
        # The same ranking as top_k over the raw scores: one exclusion path for all.
        raw = fitted.score_users(fold.users[:3])
        expected, _ = top_k(raw, 10, fold.exclude[:3])
        assert np.array_equal(ids[:3], expected)

    def test_fewer_candidates_than_k_pad_with_minus_one(self, fitted: Scorer, fold) -> None:
        n_items = fold.train.shape[1]
        all_but_two = histories_matrix([np.arange(2, n_items)], n_items)
        ids, scores = fitted.recommend(fold.users[:1], 5, exclude=all_but_two)
        assert sorted(ids[0, :2]) == [0, 1]
        assert ids[0, 2:].tolist() == [-1, -1, -1] and np.all(np.isneginf(scores[0, 2:]))

    def test_fold_in_recommends_for_item_lists(self, fitted: Scorer, fold) -> None:
        h = histories_matrix([np.array([0, 1, 2])], fold.train.shape[1])
        ids, _ = fitted.recommend_histories(h, 5, exclude=h)
        assert ids.shape == (1, 5) and not {0, 1, 2} & set(ids[0].tolist())


def test_make_scorer_by_name() -> None:
    assert isinstance(make_scorer("als", factors=8), ALSScorer)
    with pytest.raises(ValueError, match="unknown scorer"):
        make_scorer("svd")


def test_als_beats_popularity_by_a_clear_margin(fold) -> None:
    ndcg = {}
    for name in ("als", "popular"):
        scorer = FACTORIES[name]().fit(fold.train)
        ids, _ = scorer.recommend(fold.users, 10, exclude=fold.exclude)
        ndcg[name] = compute_metrics(ids, fold.targets, (10,), fold.train.shape[1])["ndcg@10"]
    assert ndcg["als"] > 2 * ndcg["popular"] and ndcg["als"] > ndcg["popular"] + 0.1, ndcg


@pytest.mark.parametrize("name", ["als", "bpr", "item_knn_bm25", "item_knn_cosine"])
def test_fold_in_of_a_few_items_returns_their_cluster(planted, name: str) -> None:
    train = build_matrix(planted.interactions, load_weights())
    scorer = FACTORIES[name]().fit(train)
    clusters = planted.item_cluster[np.array([int(label[1:]) for label in train.items.labels])]
    for group in range(clusters.max() + 1):
        members = np.flatnonzero(clusters == group)[:3]
        h = histories_matrix([members], train.shape[1])
        ids, _ = scorer.recommend_histories(h, 10, exclude=h)
        share = np.mean(clusters[ids[0]] == group)
        assert share >= 0.8, (name, group, share)


def test_als_fold_in_equals_implicits_recalculate_user(planted) -> None:
    train = build_matrix(planted.interactions, load_weights())
    als = ALSScorer(factors=8, iterations=5, alpha=3.0, regularization=0.2, num_threads=1)
    als.fit(train)
    rows = train.matrix[:20]
    expected = als.model.recalculate_user(np.arange(20), rows)
    ours = als.fold_in(rows)
    assert np.allclose(ours, expected, atol=1e-4)
    assert np.array_equal(als.fold_in(histories_matrix([[]], train.shape[1])), np.zeros((1, 8)))


def test_popular_and_trending_ignore_histories(fold) -> None:
    n_items = fold.train.shape[1]
    for scorer in (PopularScorer().fit(fold.train), TrendingScorer().fit(fold.train)):
        a = scorer.score_histories(histories_matrix([np.array([0])], n_items))
        b = scorer.score_histories(histories_matrix([np.array([5, 6])], n_items))
        assert np.array_equal(a, b)


def test_trending_prefers_recent_over_all_time_popular(make_log) -> None:
    now = 100 * DAY
    rows = [(f"u{n}", "classic", now - 60 * DAY, "purchase") for n in range(10)]
    rows += [(f"u{n}", "new", now - DAY, "product_view") for n in range(3)]
    rows += [("u0", "old_recent", now - 9 * DAY, "product_view")]
    train = build_matrix(make_log(rows), load_weights(), reference_time=now)
    labels = train.items.labels
    popular, _ = PopularScorer().fit(train).recommend(np.array([0]), 3)
    trending, scores = TrendingScorer(window_days=7).fit(train).recommend(np.array([0]), 3)
    assert labels[popular[0, 0]] == "classic"
    assert labels[trending[0, 0]] == "new"
    assert scores[0, 1] == 0.0  # outside the window counts nothing


def test_recent_items_ranks_a_users_own_items_latest_first(make_log) -> None:
    log = make_log(
        [
            ("u", "a", 1 * DAY, "product_view"),
            ("u", "b", 2 * DAY, "purchase"),
            ("u", "a", 3 * DAY, "product_view"),
            ("v", "c", 4 * DAY, "product_view"),
        ]
    )
    train = build_matrix(log, load_weights())
    scorer = RecentItemsScorer().fit(train)
    ids, scores = scorer.recommend(train.users.rows(["u"]), 3)
    assert train.items.ids(ids[0, :2]).tolist() == ["a", "b"]
    assert scores[0].tolist() == [3.0, 2.0, 0.0]
    h = histories_matrix([np.array([2, 0])], 3, [np.array([1.0, 2.0])])
    assert scorer.recommend_histories(h, 2)[0].tolist() == [[0, 2]]


def test_blend_weights_parts_after_scaling_each_row(fold) -> None:
    knn = ItemKNNScorer(neighbours=30, num_threads=1)
    only_knn = BlendScorer({"knn": (knn, 2.0), "popular": (PopularScorer(), 0.0)})
    only_knn.fit(fold.train)
    ids, _ = only_knn.recommend(fold.users, 10, exclude=fold.exclude)
    alone, _ = knn.recommend(fold.users, 10, exclude=fold.exclude)
    assert np.array_equal(ids, alone)
    scores = only_knn.score_users(fold.users[:4])
    assert np.allclose(scores.max(axis=1), 2.0)
    assert only_knn.params()["knn"] == {"scorer": "item_knn", "weight": 2.0, **knn.params()}
    with pytest.raises(ValueError):
        BlendScorer({})
