"""Choosing the best items: the one place scores become a ranked list.

- :func:`top_k`: the ``k`` best items of each row of a dense ``(b, n_items)`` block,
  excluded items never returned (batch evaluation and the fold-in and factor scorers);
- :func:`top_k_shared`: the same for rows that all share one score vector (popular and
  trending), ranked once;
- :func:`select_top`: the ``k`` best of one score vector, optionally over a subset of rows
  (the item index and every per-request strategy);
- :func:`top_indices`: the positions of the ``k`` largest values, exactly as a stable
  descending sort's first ``k`` (the blend's session candidates, session-kNN's
  neighbours), without sorting them all.

Equal scores are listed by item row everywhere, so every caller ranks ties alike.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Dense score blocks of about this many floats (64 MiB) per batch; one per thread.
BLOCK_FLOATS = 1 << 24


def empty_ranking() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int32), np.zeros(0, np.float32)


def select_top(
    scores: np.ndarray, rows: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best finite scores, best first, equal scores by row.

    Parameters
    ----------
    scores : ndarray, shape (m,), float32
        ``-inf`` marks an item that must not be returned.
    rows : ndarray, shape (m,), int, optional
        The item row of each score; default ``arange(m)``.
    k : int

    Returns
    -------
    rows : ndarray, shape (<= k,), int32
    scores : ndarray, shape (<= k,), float32
    """
    m = len(scores)
    k = min(k, m)
    if k <= 0:
        return empty_ranking()
    # Partition on the scores themselves (no negated copy): the best k end up last.
    best = np.argpartition(scores, m - k)[m - k :] if k < m else np.arange(m)
    picked = scores[best]
    item_rows = best if rows is None else rows[best]
    order = np.lexsort((item_rows, -picked))
    picked, item_rows = picked[order], item_rows[order]
    finite = np.isfinite(picked)
    if not finite.all():
        picked, item_rows = picked[finite], item_rows[finite]
    return item_rows.astype(np.int32, copy=False), picked.astype(np.float32, copy=False)


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest ``values``, largest first, equal values by position:
    ``np.argsort(-values, kind="stable")[:k]``, found by a partition and a sort of what
    survives it (a stable sort of 20,000 session scores per request cost 0.3 ms)."""
    n = len(values)
    if k <= 0:
        return np.zeros(0, np.int64)
    if k >= n:
        return np.argsort(-values, kind="stable")
    cut = np.partition(values, n - k)[n - k]
    above = np.flatnonzero(values > cut)
    tied = np.flatnonzero(values == cut)[: k - len(above)]  # the lowest positions first
    kept = np.concatenate([above, tied])
    return kept[np.lexsort((kept, -values[kept]))]


def top_k(
    scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items per row, best first, never an excluded one.

    Parameters
    ----------
    scores : ndarray, shape (b, n_items), float32
        Overwritten: excluded items are set to ``-inf``.
    k : int
    exclude : scipy.sparse.csr_matrix, shape (b, n_items), optional
        Nonzero entries are items not to return for that row.

    Returns
    -------
    ids : ndarray, shape (b, k), int32
        Item columns; ``-1`` past the last item that may be returned.
    values : ndarray, shape (b, k), float32
        Their scores; ``-inf`` where ``ids`` is ``-1``. Equal scores are listed by item
        id.
    """
    rows, n_items = scores.shape
    if exclude is not None and exclude.nnz:
        row_of = np.repeat(np.arange(rows), np.diff(exclude.indptr))
        scores[row_of, exclude.indices] = -np.inf
    k_eff = min(k, n_items)
    if k_eff < n_items:
        best = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    else:
        best = np.broadcast_to(np.arange(n_items), (rows, n_items))
    picked = np.take_along_axis(scores, best, axis=1)
    order = np.lexsort((best, -picked), axis=1)
    ids = np.take_along_axis(best, order, axis=1).astype(np.int32)
    values = np.take_along_axis(picked, order, axis=1).astype(np.float32)
    ids[~np.isfinite(values)] = -1
    if k_eff < k:
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return ids, values


def top_k_shared(
    item_scores: np.ndarray, rows: int, k: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` for ``rows`` rows that all have the scores ``item_scores``.

    The items are ranked once; a row can lose at most its excluded items from the head
    of that ranking, so only the first ``k`` plus the longest exclusion are looked at,
    instead of a dense ``(rows, n_items)`` block per batch. Same result as
    ``top_k(np.tile(item_scores, (rows, 1)), k, exclude)``, ties by item id included.
    """
    n_items = len(item_scores)
    ranking = np.argsort(-item_scores, kind="stable")  # equal scores by item id
    counts = np.zeros(rows, np.int64) if exclude is None else np.diff(exclude.indptr)
    head = ranking[: min(k + int(counts.max(initial=0)), n_items)]
    ids = np.full((rows, k), -1, dtype=np.int32)
    values = np.full((rows, k), -np.inf, dtype=np.float32)
    if not len(head):
        return ids, values
    rank = np.full(n_items, len(head), dtype=np.int64)
    rank[head] = np.arange(len(head))
    size = max(1, BLOCK_FLOATS // len(head))
    for start in range(0, rows, size):
        block = slice(start, min(start + size, rows))
        hidden = np.zeros((block.stop - block.start, len(head)), dtype=bool)
        if exclude is not None:
            chunk = exclude[block]
            at = rank[chunk.indices]
            row_of = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))
            hidden[row_of[at < len(head)], at[at < len(head)]] = True
        # Visible items first, each group in ranking order (a stable sort of the mask).
        picked = np.argsort(hidden, axis=1, kind="stable")[:, :k]
        shown = ~np.take_along_axis(hidden, picked, axis=1)
        width = picked.shape[1]
        ids[block, :width] = np.where(shown, head[picked], -1)
        values[block, :width] = np.where(shown, item_scores[head[picked]], -np.inf)
    return ids, values
