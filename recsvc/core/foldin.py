"""ALS fold-in for one visitor: their user vector in closed form from a few items.

The least-squares step of implicit ALS (Hu, Koren and Volinsky 2008) with the item factors
``Y`` fixed. For confidences ``c_j = alpha · w_j`` on the history's items ``J``::

    A = YᵀY + λI + Σ_{j∈J} (c_j − 1) y_j y_jᵀ
    x = A⁻¹ Σ_{j∈J} c_j y_j

``YᵀY`` is computed once per model version (:func:`gram_matrix`); a request then costs one
``f × f`` solve, tens of microseconds at 64 factors. This is the per-request twin of
:func:`training.scorers.als_fold_in`, which does the same for a CSR batch; they agree to
float32 precision (tests/core/test_foldin.py).
"""

from __future__ import annotations

import numpy as np


def gram_matrix(item_factors: np.ndarray) -> np.ndarray:
    """``YᵀY``, once per model version.

    Parameters
    ----------
    item_factors : ndarray, shape (n_items, f), float32

    Returns
    -------
    ndarray, shape (f, f), float64
        Accumulated in float64: it is a sum over the whole catalog.
    """
    factors = np.asarray(item_factors)
    return factors.T.astype(np.float64) @ factors.astype(np.float64)


def history_system(
    item_factors: np.ndarray,
    gram: np.ndarray,
    item_rows: np.ndarray,
    weights: np.ndarray | None,
    regularization: float,
    alpha: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fold-in system ``A`` and the history it was built from, repeats merged.

    Parameters
    ----------
    item_factors : ndarray, shape (n_items, f), float32
    gram : ndarray, shape (f, f), float64
        :func:`gram_matrix` of ``item_factors``.
    item_rows : ndarray, shape (h,), int
        History items; repeats add their weights (as ``histories_matrix`` does).
    weights : ndarray, shape (h,), float, optional
        Event weights per history entry, default 1.
    regularization : float
        ``λ``.
    alpha : float
        Confidence scale, as the model was fit with.

    Returns
    -------
    a : ndarray, shape (f, f), float64
    rows : ndarray, shape (u,), int64
        Distinct history items, ascending.
    y : ndarray, shape (u, f), float64
        Their factors.
    confidence : ndarray, shape (u,), float64
        ``c_j = alpha · Σ w_j``.
    """
    item_rows = np.asarray(item_rows, dtype=np.int64)
    raw = np.ones(len(item_rows)) if weights is None else np.asarray(weights, np.float64)
    rows, inverse = np.unique(item_rows, return_inverse=True)
    confidence = alpha * np.bincount(inverse, weights=raw, minlength=len(rows))
    y = item_factors[rows].astype(np.float64)
    a = gram + regularization * np.eye(gram.shape[0]) + (y * (confidence - 1.0)[:, None]).T @ y
    return a, rows, y, confidence


def fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    item_rows: np.ndarray,
    weights: np.ndarray | None,
    regularization: float,
    alpha: float = 1.0,
) -> np.ndarray:
    """The ALS user vector of one history (see the module docstring).

    Parameters
    ----------
    item_factors : ndarray, shape (n_items, f), float32
    gram : ndarray, shape (f, f), float64
        :func:`gram_matrix` of ``item_factors``.
    item_rows : ndarray, shape (h,), int
        Rows of the items the visitor touched, in ``[0, n_items)``; repeats add up.
    weights : ndarray, shape (h,), float, optional
        Event weight of each entry (the training weights of its event type), default 1.
    regularization : float
        ``λ`` of the model.
    alpha : float
        Confidence scale of the model.

    Returns
    -------
    ndarray, shape (f,), float32
        The zero vector for an empty history.
    """
    if len(item_rows) == 0:
        return np.zeros(item_factors.shape[1], np.float32)
    a, _, y, confidence = history_system(
        item_factors, gram, item_rows, weights, regularization, alpha
    )
    # A is symmetric positive definite (λ > 0, c_j >= 1 in practice); solve beats inv.
    return np.linalg.solve(a, y.T @ confidence).astype(np.float32)
