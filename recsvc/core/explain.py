"""Why an item was recommended: which history items its ALS score comes from.

With the fold-in system ``A`` of a history (:func:`recsvc.core.foldin.history_system`),
``W = A⁻¹`` and confidences ``c_j``, the fold-in user vector is ``x = W Σ_j c_j y_j``, so
an item's score splits exactly over the history::

    score(i) = y_iᵀ x = Σ_j c_j · y_iᵀ W y_j

This is the decomposition implicit's ``AlternatingLeastSquares.explain`` returns. The
share of history item ``j`` is its term divided by the score; shares sum to 1, and a
term may be negative (an item that pulls the score down).

For a visitor the model knows, the served vector comes from training over their whole
history, not from the recent items the profile keeps; decomposing over those recent items
is then an approximation: the shares explain the fold-in score of the recent items, which
tracks the served score but is not equal to it.
"""

from __future__ import annotations

import numpy as np

from recsvc.core.foldin import history_system


def explain(
    user_history_rows: np.ndarray,
    weights: np.ndarray | None,
    item_factors: np.ndarray,
    gram: np.ndarray,
    regularization: float,
    alpha: float,
    recommended_rows: np.ndarray,
    top: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The history items that contribute most to each recommended item's score.

    Parameters
    ----------
    user_history_rows : ndarray, shape (h,), int
        The visitor's items; repeats add their weights.
    weights : ndarray, shape (h,), float, optional
        Event weight of each history entry, default 1.
    item_factors : ndarray, shape (n_items, f), float32
    gram : ndarray, shape (f, f), float64
        ``YᵀY`` (:func:`recsvc.core.foldin.gram_matrix`).
    regularization, alpha : float
        As the model was fit with.
    recommended_rows : ndarray, shape (r,), int
    top : int
        Contributors kept per recommended item.

    Returns
    -------
    rows : ndarray, shape (r, top), int32
        History item rows, largest contribution first; ``-1`` past the distinct history.
    shares : ndarray, shape (r, top), float32
        ``c_j · y_iᵀ W y_j / score(i)``; over the whole history they sum to 1. ``0`` where
        ``rows`` is ``-1``, and everywhere for an item whose score is 0.
    """
    recommended_rows = np.asarray(recommended_rows, dtype=np.int64)
    width = max(top, 0)
    out_rows = np.full((len(recommended_rows), width), -1, np.int32)
    out_shares = np.zeros((len(recommended_rows), width), np.float32)
    if len(user_history_rows) == 0 or len(recommended_rows) == 0 or width == 0:
        return out_rows, out_shares
    shares, history = history_shares(
        user_history_rows, weights, item_factors, gram, regularization, alpha, recommended_rows
    )
    kept = min(width, len(history))
    # Stable sort on the negated shares: equal shares keep the history's (row) order.
    order = np.argsort(-shares, axis=1, kind="stable")[:, :kept]
    out_rows[:, :kept] = history[order]
    out_shares[:, :kept] = np.take_along_axis(shares, order, axis=1)
    return out_rows, out_shares


def history_shares(
    user_history_rows: np.ndarray,
    weights: np.ndarray | None,
    item_factors: np.ndarray,
    gram: np.ndarray,
    regularization: float,
    alpha: float,
    recommended_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Every history item's share of every recommended item's score.

    Parameters are those of :func:`explain`.

    Returns
    -------
    shares : ndarray, shape (r, u), float64
        Rows sum to 1 (all zeros where the score is 0).
    history : ndarray, shape (u,), int32
        The distinct history rows the columns stand for, ascending.
    """
    a, rows, y, confidence = history_system(
        item_factors, gram, user_history_rows, weights, regularization, alpha
    )
    # W y_j for every j in one solve; terms[i, j] = c_j · y_iᵀ W y_j.
    w_y = np.linalg.solve(a, y.T)
    terms = (item_factors[recommended_rows].astype(np.float64) @ w_y) * confidence
    scores = terms.sum(axis=1, keepdims=True)
    safe = np.where(scores == 0.0, 1.0, scores)
    shares = np.where(scores == 0.0, 0.0, terms / safe)
    return shares, rows.astype(np.int32)
