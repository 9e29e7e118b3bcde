"""top_k and top_k_shared: the one place scores become ranked lists."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsvc.scoring.topk import select_top, top_indices, top_k, top_k_shared


def rows_matrix(rows: list, n_items: int) -> sp.csr_matrix:
    """A CSR matrix with a 1 at each listed column of each row."""
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.concatenate([np.asarray(r, np.int64) for r in rows]) if rows else []
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), (len(rows), n_items))


def test_top_k_orders_ties_by_item_id() -> None:
    ids, values = top_k(np.array([[1.0, 3.0, 3.0, 0.0]], np.float32), 3)
    assert ids.tolist() == [[1, 2, 0]] and values.tolist() == [[3.0, 3.0, 1.0]]


@pytest.mark.parametrize("seed", range(6))
def test_top_k_shared_equals_top_k_over_copies(seed: int) -> None:
    # Rows excluding none, a few, or all but a few items, and k past what some rows
    # can fill: the shortcut must rank exactly as the dense path does. (Scores are
    # distinct: which of several tied items top_k's partition keeps at the cut is
    # not defined.)
    rng = np.random.default_rng(seed)
    n_items, rows, k = 40, 25, 12
    scores = rng.permutation(n_items).astype(np.float32)
    sizes = rng.choice([0, 3, 10, 35], rows)
    exclude = rows_matrix([rng.choice(n_items, s, replace=False) for s in sizes], n_items)
    for excluded in (exclude, None):
        expected = top_k(np.tile(scores, (rows, 1)), k, excluded)
        got = top_k_shared(scores, rows, k, excluded)
        assert np.array_equal(got[0], expected[0])
        assert np.array_equal(got[1], expected[1])
    assert (top_k_shared(scores, rows, k, exclude)[0] == -1).any()  # some rows run out


def test_top_k_shared_lists_ties_by_item_id() -> None:
    scores = np.array([1.0, 3.0, 3.0, 0.0, 3.0], np.float32)
    exclude = rows_matrix([np.array([2]), np.array([], int)], 5)
    ids, values = top_k_shared(scores, 2, 3, exclude)
    assert ids.tolist() == [[1, 4, 0], [1, 2, 4]]
    assert values.tolist() == [[3.0, 3.0, 1.0], [3.0, 3.0, 3.0]]


def test_top_k_shared_with_k_past_the_catalog() -> None:
    ids, values = top_k_shared(np.array([1.0, 2.0], np.float32), 2, 4)
    assert ids.tolist() == [[1, 0, -1, -1]] * 2 and np.isneginf(values[:, 2:]).all()


def test_select_top_orders_ties_by_row_and_drops_minus_inf():
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 2.0], np.float32)
    rows, values = select_top(scores, np.array([9, 5, 4, 8, 1]), 10)
    assert rows.tolist() == [4, 5, 1, 9]
    assert values.tolist() == [3.0, 3.0, 2.0, 1.0]


def test_top_indices_are_the_stable_descending_sort_s_head():
    """Session-kNN's neighbours and the blend's session candidates: equal values to the
    lower position, as ``argsort(-values, kind="stable")`` lists them."""
    rng = np.random.default_rng(6)
    for _ in range(300):
        m = int(rng.integers(0, 60))
        values = rng.integers(0, 5, m).astype(np.float32)  # many ties
        k = int(rng.integers(0, 70))
        expected = np.argsort(-values, kind="stable")[:k]
        assert top_indices(values, k).tolist() == expected.tolist()
