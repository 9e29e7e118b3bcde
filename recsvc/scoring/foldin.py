"""ALS fold-in: a user vector in closed form from a few items, and its explanation.

The least-squares step of implicit ALS (Hu, Koren and Volinsky 2008) with the item factors
``Y`` fixed. For confidences ``c_j = alpha · w_j`` on the distinct history items ``J``
(their factors the rows of ``U``, ``D = diag(c − 1)``)::

    A = YᵀY + λI + Uᵀ D U
    x = A⁻¹ Uᵀ c

which is what implicit computes (``AlternatingLeastSquares.recalculate_user``). With
``B = YᵀY + λI`` inverted once per model, the push-through identity
``(B + UᵀDU)⁻¹ Uᵀ = P (I + D U P)⁻¹`` with ``P = B⁻¹ Uᵀ`` turns each history into an
``h × h`` solve, ``h`` its distinct items, instead of an ``f × f`` one:

    x = P M⁻¹ c,   M = I + D U P

The same ``P M⁻¹`` splits an item's score exactly over the history (implicit's
``AlternatingLeastSquares.explain``)::

    score(i) = y_iᵀ x = Σ_j c_j · y_iᵀ (P M⁻¹)[:, j]

:class:`FoldIn` is the only implementation: the service folds in one visitor, the
evaluation and the session model's ALS part fold in batches through the same
:meth:`FoldIn.vector`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Rows converted to float64 at a time for YᵀY.
GRAM_CHUNK = 8192


def gram_matrix(item_factors: np.ndarray) -> np.ndarray:
    """``YᵀY`` in float64 (shape (f, f)), ``GRAM_CHUNK`` rows converted at a time: the
    precision of a float64 sum over the whole catalog without a float64 copy of the
    factors and of their transpose (at 100k items those copies took 0.1-0.3 s of a new
    version's load in each worker)."""
    factors = np.asarray(item_factors)
    gram = np.zeros((factors.shape[1], factors.shape[1]), np.float64)
    for start in range(0, len(factors), GRAM_CHUNK):
        chunk = factors[start : start + GRAM_CHUNK].astype(np.float64)
        gram += chunk.T @ chunk
    return gram


class FoldIn:
    """Fold-in against one model's item factors (module docstring).

    Parameters
    ----------
    item_factors : ndarray, shape (n_items, f), float32
    regularization : float
        ``λ`` of the model.
    alpha : float
        Confidence scale of the model.
    gram : ndarray, shape (f, f), optional
        ``YᵀY`` when the caller has it already.

    Attributes
    ----------
    gram : ndarray, shape (f, f), float64
    base_inverse : ndarray, shape (f, f), float64
        ``(YᵀY + λI)⁻¹``.
    """

    def __init__(
        self,
        item_factors: np.ndarray,
        regularization: float,
        alpha: float = 1.0,
        gram: np.ndarray | None = None,
    ) -> None:
        self.item_factors = np.asarray(item_factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.gram = gram_matrix(self.item_factors) if gram is None else gram
        factors = self.gram.shape[0]
        self.base_inverse = np.linalg.inv(self.gram + self.regularization * np.eye(factors))

    @property
    def factors(self) -> int:
        return int(self.gram.shape[0])

    def _solve(
        self, item_rows: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct rows (ascending), their confidences ``c`` and ``P M⁻¹`` (f, u)."""
        item_rows = np.asarray(item_rows, dtype=np.int64)
        raw = np.ones(len(item_rows)) if weights is None else np.asarray(weights, np.float64)
        rows, inverse = np.unique(item_rows, return_inverse=True)
        confidence = self.alpha * np.bincount(inverse, weights=raw, minlength=len(rows))
        y = self.item_factors[rows].astype(np.float64)
        p = self.base_inverse @ y.T
        m = np.eye(len(rows)) + (confidence - 1.0)[:, None] * (y @ p)
        # M is invertible whenever A is (det M = det A / det B): c ≥ 0 keeps A definite.
        return rows, confidence, np.linalg.solve(m.T, p.T).T

    def vector(self, item_rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The ALS user vector of one history.

        Parameters
        ----------
        item_rows : ndarray, shape (h,), int
            Rows of the items the visitor touched; repeats add their weights.
        weights : ndarray, shape (h,), float, optional
            Weight of each entry (the training weight of its event type), default 1.

        Returns
        -------
        ndarray, shape (f,), float32
            The zero vector for an empty history.
        """
        if len(item_rows) == 0:
            return np.zeros(self.factors, np.float32)
        _, confidence, solved = self._solve(item_rows, weights)
        return (solved @ confidence).astype(np.float32)

    def vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """:meth:`vector` of every row of ``histories`` (b, n_items), its values the
        weights: ndarray, shape (b, f), float32."""
        histories = sp.csr_matrix(histories)
        out = np.zeros((histories.shape[0], self.factors), np.float32)
        for row in range(histories.shape[0]):
            lo, hi = histories.indptr[row], histories.indptr[row + 1]
            if lo < hi:
                out[row] = self.vector(histories.indices[lo:hi], histories.data[lo:hi])
        return out

    def shares(
        self, item_rows: np.ndarray, weights: np.ndarray | None, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every history item's share of every target item's fold-in score.

        Parameters
        ----------
        item_rows, weights
            The history, as :meth:`vector` takes it (non-empty).
        targets : ndarray, shape (r,), int

        Returns
        -------
        shares : ndarray, shape (r, u), float64
            ``c_j · y_iᵀ (P M⁻¹)[:, j] / score(i)``: rows sum to 1 (all zeros where the
            score is 0); a term may be negative (an item that pulls the score down).
        history : ndarray, shape (u,), int32
            The distinct history rows the columns stand for, ascending.
        """
        rows, confidence, solved = self._solve(item_rows, weights)
        y = self.item_factors[np.asarray(targets, np.int64)].astype(np.float64)
        terms = (y @ solved) * confidence
        scores = terms.sum(axis=1, keepdims=True)
        safe = np.where(scores == 0.0, 1.0, scores)
        return np.where(scores == 0.0, 0.0, terms / safe), rows.astype(np.int32)

    def explain(
        self,
        item_rows: np.ndarray,
        weights: np.ndarray | None,
        targets: np.ndarray,
        top: int = 3,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The history items that contribute most to each target's score.

        Returns
        -------
        rows : ndarray, shape (r, top), int32
            History rows, largest share first; ``-1`` past the distinct history.
        shares : ndarray, shape (r, top), float32
            Their shares (:meth:`shares`); 0 where ``rows`` is ``-1``.
        """
        targets = np.asarray(targets, dtype=np.int64)
        width = max(top, 0)
        out_rows = np.full((len(targets), width), -1, np.int32)
        out_shares = np.zeros((len(targets), width), np.float32)
        if len(item_rows) == 0 or len(targets) == 0 or width == 0:
            return out_rows, out_shares
        shares, history = self.shares(item_rows, weights, targets)
        kept = min(width, len(history))
        # Stable sort on the negated shares: equal shares keep the history's (row) order.
        order = np.argsort(-shares, axis=1, kind="stable")[:, :kept]
        out_rows[:, :kept] = history[order]
        out_shares[:, :kept] = np.take_along_axis(shares, order, axis=1)
        return out_rows, out_shares
