"""Interactions to the CSR matrix: sums, filters, id maps."""

from __future__ import annotations

import numpy as np
import pytest

from training.matrix import build_matrix, histories_matrix
from training.weights import load_weights

DAY = 86_400.0
WEIGHTS = {"product_view": 1.0, "add_to_cart": 4.0, "purchase": 8.0}


def cell(m, user: str, item: str) -> float:
    return float(m.matrix[m.users.rows([user])[0], m.items.rows([item])[0]])


def test_cells_sum_event_weights_and_maps_round_trip(make_log) -> None:
    log = make_log(
        [
            ("u1", "a", 1.0, "product_view"),
            ("u1", "a", 2.0, "product_view"),
            ("u1", "a", 3.0, "add_to_cart"),
            ("u2", "b", 4.0, "purchase"),
            ("u2", "c", 5.0, "page_view"),  # weight 0: not a cell
        ]
    )
    m = build_matrix(log, load_weights(events=WEIGHTS))
    assert m.matrix.dtype == np.float32 and m.matrix.format == "csr"
    assert m.shape == (2, 2) and m.matrix.nnz == 2
    assert cell(m, "u1", "a") == 6.0 and cell(m, "u2", "b") == 8.0
    assert m.report.zero_weight == 1 and m.report.events_kept == 4
    assert list(m.items.labels) == ["a", "b"]  # c has no weighted event
    assert m.items.rows(["b", "zzz", "a"]).tolist() == [1, -1, 0]
    assert m.users.ids(np.array([1, 0])).tolist() == ["u2", "u1"]
    # The events kept are in the matrix's own index.
    assert m.interactions.item.max() < m.shape[1]


def test_decay_counts_back_from_reference_time(make_log) -> None:
    log = make_log([("u", "old", 0.0, "purchase"), ("u", "new", 10 * DAY, "purchase")])
    config = load_weights(events=WEIGHTS, half_life_days=10)
    m = build_matrix(log, config, reference_time=10 * DAY)
    assert cell(m, "u", "new") == 8.0 and cell(m, "u", "old") == pytest.approx(4.0)


def test_log1p_transform(make_log) -> None:
    log = make_log([("u", "a", float(t), "product_view") for t in range(9)])
    m = build_matrix(log, load_weights(events=WEIGHTS, transform="log1p"))
    assert cell(m, "u", "a") == pytest.approx(np.log1p(9.0))


def test_minimum_counts_filter_until_stable(make_log) -> None:
    # u3 (one item) and e (one user) go first; that leaves u5 with one item, then d
    # with one user, then u2 with one item: a chain only repeated rounds remove.
    rows = [
        ("u1", "a"), ("u1", "b"), ("u1", "c"),
        ("u4", "a"), ("u4", "b"), ("u4", "c"),
        ("u2", "a"), ("u2", "d"),
        ("u3", "d"),
        ("u5", "d"), ("u5", "e"),
    ]  # fmt: skip
    log = make_log([(u, i, float(n), "product_view") for n, (u, i) in enumerate(rows)])
    config = load_weights(events=WEIGHTS, min_user_interactions=2, min_item_interactions=2)
    m = build_matrix(log, config)
    assert sorted(m.users.labels) == ["u1", "u4"]
    assert sorted(m.items.labels) == ["a", "b", "c"]
    assert m.report.filter_rounds >= 4
    assert np.diff(m.matrix.indptr).min() >= 2
    assert np.bincount(m.matrix.indices).min() >= 2


def test_histories_matrix_stacks_rows_and_adds_repeats() -> None:
    h = histories_matrix([np.array([0, 2, 2]), np.array([], dtype=int)], n_items=3)
    assert h.shape == (2, 3) and h.toarray().tolist() == [[1, 0, 2], [0, 0, 0]]


def test_history_of_item_ids_skips_unknown_ones(make_log) -> None:
    m = build_matrix(make_log([("u", "a", 1.0, "purchase"), ("u", "b", 2.0, "purchase")]))
    h = m.history(["b", "nope", "b"], weights=[1.0, 5.0, 2.0])
    assert h.shape == (1, 2) and h.toarray().tolist() == [[0.0, 3.0]]
