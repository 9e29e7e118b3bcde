"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from training.metrics import (
    average_precision_at_k,
    catalog_coverage_at_k,
    compute_metrics,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
    relevant_counts,
)

# Two users over 6 items.
# user 0: list [3, 1, 5, 0], relevant {1, 0, 4}: hits at ranks 2 and 4.
# user 1: list [2, 4, -1, -1] (only two candidates), relevant {2}: hit at rank 1.
IDS = np.array([[3, 1, 5, 0], [2, 4, -1, -1]])
TARGETS = sp.csr_matrix((np.ones(4, np.float32), ([0, 0, 0, 1], [1, 0, 4, 2])), shape=(2, 6))


@pytest.fixture
def hits() -> np.ndarray:
    return hit_matrix(IDS, TARGETS)


def test_hit_matrix(hits) -> None:
    assert hits.tolist() == [[False, True, False, True], [True, False, False, False]]
    assert relevant_counts(TARGETS).tolist() == [3, 1]


def test_precision(hits) -> None:
    assert precision_at_k(hits, 4).tolist() == [2 / 4, 1 / 4]
    assert precision_at_k(hits, 2).tolist() == [1 / 2, 1 / 2]


def test_recall(hits) -> None:
    assert recall_at_k(hits, relevant_counts(TARGETS), 4).tolist() == [2 / 3, 1.0]
    assert recall_at_k(hits, relevant_counts(TARGETS), 1).tolist() == [0.0, 1.0]


def test_hit_rate_and_reciprocal_rank(hits) -> None:
    assert hit_rate_at_k(hits, 1).tolist() == [0.0, 1.0]
    assert reciprocal_rank_at_k(hits, 4).tolist() == [1 / 2, 1.0]
    assert reciprocal_rank_at_k(hits, 1).tolist() == [0.0, 1.0]


def test_average_precision(hits) -> None:
    # user 0: (P@2 + P@4) / min(3, 4) = (1/2 + 2/4) / 3
    ap = average_precision_at_k(hits, relevant_counts(TARGETS), 4)
    assert ap.tolist() == pytest.approx([(0.5 + 0.5) / 3, 1.0])
    # at k = 2 the denominator is min(3, 2) = 2
    assert average_precision_at_k(hits, relevant_counts(TARGETS), 2)[0] == pytest.approx(0.25)


def test_ndcg(hits) -> None:
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    ndcg = ndcg_at_k(hits, relevant_counts(TARGETS), 4)
    assert ndcg.tolist() == pytest.approx([dcg0 / idcg0, 1.0])
    # k = 2: DCG = 1/log2(3), IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(hits, relevant_counts(TARGETS), 2)[0] == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )


def test_coverage() -> None:
    # top 4 shows {3, 1, 5, 0} ∪ {2, 4}: all 6 items; top 2 {3, 1, 2, 4}; top 1 {3, 2}.
    assert catalog_coverage_at_k(IDS, 6, 4) == 1.0
    assert catalog_coverage_at_k(IDS, 6, 2) == pytest.approx(4 / 6)
    assert catalog_coverage_at_k(IDS, 6, 1) == pytest.approx(2 / 6)


def test_compute_metrics_averages_over_users() -> None:
    values = compute_metrics(IDS, TARGETS, (2, 4), n_items=6)
    assert values["precision@4"] == pytest.approx((0.5 + 0.25) / 2)
    assert values["hit_rate@2"] == 1.0
    assert set(values) == {
        f"{m}@{k}"
        for m in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage")
        for k in (2, 4)
    }
