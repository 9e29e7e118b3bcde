"""Top-k ranking metrics, one small function each, per user.

Notation, for one user: ``L`` their ranked list (best first), ``L_j`` its ``j``-th item
(``j`` from 1), ``R`` their relevant (target) items, ``rel_j = 1`` if ``L_j ∈ R`` else
0, and ``k`` the cutoff. Every function takes the hit matrix of :func:`hit_matrix` (row
``u``, column ``j − 1``: ``rel_j`` of user ``u``) and returns one value per user;
evaluation reports their mean over users. Users with an empty ``R`` are not evaluated
(:func:`training.folds.make_fold` leaves none), so no metric divides by zero for them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_matrix(ids: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    """Which recommended items are relevant.

    Parameters
    ----------
    ids : ndarray, shape (n_users, k), int
        Ranked item columns per user, ``-1`` for none.
    targets : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Nonzero where the item is relevant to the user.

    Returns
    -------
    ndarray, shape (n_users, k), bool
    """
    n_items = np.int64(targets.shape[1])
    target_rows = np.repeat(np.arange(targets.shape[0], dtype=np.int64), np.diff(targets.indptr))
    target_keys = target_rows * n_items + targets.indices
    rec_keys = np.arange(ids.shape[0], dtype=np.int64)[:, None] * n_items + ids
    return np.isin(rec_keys, target_keys) & (ids >= 0)


def relevant_counts(targets: sp.csr_matrix) -> np.ndarray:
    """``|R|`` per user: int64, shape (n_users,)."""
    return np.diff(targets.indptr).astype(np.int64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k = |L[:k] ∩ R| / k.

    Returns
    -------
    ndarray, shape (n_users,), float64
    """
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k = |L[:k] ∩ R| / |R|.

    Not capped at k: a user with more than k targets cannot reach 1.
    """
    return hits[:, :k].sum(axis=1) / relevant


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k = 1 if |L[:k] ∩ R| > 0 else 0."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def reciprocal_rank_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """RR@k = 1 / min{j ≤ k : rel_j = 1}, or 0 when no such j. MRR@k is its mean."""
    top = hits[:, :k]
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def average_precision_at_k(hits: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k = (1 / min(|R|, k)) · Σ_{j=1..k} rel_j · Precision@j. MAP@k is its mean."""
    top = hits[:, :k].astype(np.float64)
    precision_at_j = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    return (precision_at_j * top).sum(axis=1) / np.minimum(relevant, k)


def ndcg_at_k(hits: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k = DCG@k / IDCG@k with binary gains, where

    DCG@k = Σ_{j=1..k} rel_j / log2(j + 1) and IDCG@k = Σ_{j=1..min(|R|, k)} 1 / log2(j + 1)
    (the DCG of a list with every relevant item first).
    """
    top = hits[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (top * discounts).sum(axis=1)
    ideal = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))))
    return dcg / ideal[np.minimum(relevant, k)]


def catalog_coverage_at_k(ids: np.ndarray, n_items: int, k: int) -> float:
    """Coverage@k = |∪_u L_u[:k]| / n_items: the share of the catalog anyone is shown.

    One value for the whole run, not per user.
    """
    shown = ids[:, :k]
    return float(len(np.unique(shown[shown >= 0])) / n_items) if n_items else 0.0


def compute_metrics(
    ids: np.ndarray, targets: sp.csr_matrix, ks: tuple[int, ...], n_items: int
) -> dict[str, float]:
    """Every metric at every cutoff, averaged over users.

    Parameters
    ----------
    ids : ndarray, shape (n_users, max(ks)), int
    targets : scipy.sparse.csr_matrix, shape (n_users, n_items)
    ks : tuple of int
    n_items : int
        Catalog size for coverage.

    Returns
    -------
    dict of str to float
        Keys ``"<metric>@<k>"``: precision, recall, ndcg, map, mrr, hit_rate, coverage.
    """
    return metrics_from_hits(hit_matrix(ids, targets), relevant_counts(targets), ks, ids, n_items)[
        0
    ]


def metrics_from_hits(
    hits: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...], ids: np.ndarray, n_items: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """:func:`compute_metrics` from a hit matrix and ``|R|`` per user (which may count
    targets no list can contain, such as items a model never saw), with the per-user
    values behind each mean.

    Returns
    -------
    means : dict of str to float
        As :func:`compute_metrics`.
    per_user : dict of str to ndarray
        ``"<metric>@<k>"`` to its value per user (coverage excepted).
    """
    out: dict[str, float] = {}
    per_user_all: dict[str, np.ndarray] = {}
    for k in ks:
        per_user = {
            "precision": precision_at_k(hits, k),
            "recall": recall_at_k(hits, relevant, k),
            "ndcg": ndcg_at_k(hits, relevant, k),
            "map": average_precision_at_k(hits, relevant, k),
            "mrr": reciprocal_rank_at_k(hits, k),
            "hit_rate": hit_rate_at_k(hits, k),
        }
        for name, values in per_user.items():
            out[f"{name}@{k}"] = float(values.mean()) if len(values) else 0.0
            per_user_all[f"{name}@{k}"] = values
        out[f"coverage@{k}"] = catalog_coverage_at_k(ids, n_items, k)
    return out, per_user_all
