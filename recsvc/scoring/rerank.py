"""Re-ranking of search candidates: category boosts, then diversity by maximal marginal
relevance (MMR, Carbonell and Goldstein 1998), optionally a per-category cap.

MMR builds the list one item at a time, each time taking the candidate that maximises::

    λ · relevance(i) − (1 − λ) · max_{j already picked} similarity(i, j),   λ = 1 − diversity

``relevance`` is the (boosted) score min-max scaled to [0, 1] over the candidates, so that
it is comparable with a cosine. ``similarity`` is the cosine of the item factors, and 1
between two items of the same category when categories are given: with ``diversity=1``
the list takes one item per category, best first, before it repeats one. ``diversity=0``
is the score order. Everything is deterministic: ties go to the better-ranked candidate.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def boost_scores(
    scores: np.ndarray, item_categories: np.ndarray | None, boosts: Mapping[int, float] | None
) -> np.ndarray:
    """Scores of items of boosted categories scaled by their factor.

    A positive score is multiplied by the factor and a negative one divided by it, so a
    factor above 1 always raises an item (a plain product would push negative scores
    further down).

    Parameters
    ----------
    scores : ndarray, shape (m,), float32
    item_categories : ndarray, shape (m,), int, optional
        Category code of each candidate; ``None`` leaves the scores as they are.
    boosts : mapping of int to float, optional
        Category code to factor (> 0).

    Returns
    -------
    ndarray, shape (m,), float32
        A new array.
    """
    out = np.array(scores, dtype=np.float32)
    if not boosts or item_categories is None:
        return out
    factor = np.ones(len(out), np.float32)
    for code, value in boosts.items():
        if value <= 0:
            raise ValueError(f"boost factor for category {code} must be > 0, got {value}")
        factor[item_categories == code] = value
    return np.where(out >= 0, out * factor, out / factor).astype(np.float32)


def rerank(
    rows: np.ndarray,
    scores: np.ndarray,
    item_factors: np.ndarray,
    categories: np.ndarray | None,
    n: int,
    diversity: float = 0.0,
    boost_categories: Mapping[int, float] | None = None,
    category_cap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` items to show, from search candidates (see the module docstring).

    Parameters
    ----------
    rows : ndarray, shape (m,), int
        Candidate item rows, as the search returned them (best first).
    scores : ndarray, shape (m,), float32
        Their scores.
    item_factors : ndarray, shape (n_items, f), float32
        The model's item factors (only the candidates' rows are read).
    categories : ndarray, shape (n_items,), int, optional
        Category code of every item; ``None`` when the catalog has none.
    n : int
        Items wanted; fewer when there are fewer candidates (or the cap leaves fewer).
    diversity : float
        In [0, 1]; 0 keeps the score order.
    boost_categories : mapping of int to float, optional
        Category code to score factor (:func:`boost_scores`).
    category_cap : int, optional
        At most this many items of one category in the list.

    Returns
    -------
    rows : ndarray, shape (<= n,), int32
        In display order.
    scores : ndarray, shape (<= n,), float32
        Their boosted scores (not the MMR objective).
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    rows = np.asarray(rows, dtype=np.int32)
    item_categories = None if categories is None else np.asarray(categories)[rows]
    boosted = boost_scores(scores, item_categories, boost_categories)
    # Stable sort: equal scores keep the search's order (which is by row).
    order = np.argsort(-boosted, kind="stable")
    rows, boosted = rows[order], boosted[order]
    if item_categories is not None:
        item_categories = item_categories[order]
    if diversity == 0.0:
        picked = _capped_prefix(len(rows), item_categories, n, category_cap)
    else:
        similarity = _similarity(item_factors[rows], item_categories)
        picked = _mmr(boosted, similarity, item_categories, n, 1.0 - diversity, category_cap)
    return rows[picked], boosted[picked]


def _similarity(factors: np.ndarray, item_categories: np.ndarray | None) -> np.ndarray:
    """Cosine of the candidates' factors, 1 within a category: shape (m, m), float32."""
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.where(norms > 0, norms, 1.0)
    similarity = (unit @ unit.T).astype(np.float32)
    if item_categories is not None:
        similarity[item_categories[:, None] == item_categories[None, :]] = 1.0
    return similarity


def _capped_prefix(
    m: int, item_categories: np.ndarray | None, n: int, cap: int | None
) -> np.ndarray:
    """The first ``n`` of ``m`` candidates in order, skipping those over the cap."""
    if cap is None or item_categories is None:
        return np.arange(min(n, m))
    counts: dict[int, int] = {}
    picked = []
    for position, code in enumerate(item_categories.tolist()):
        if counts.get(code, 0) < cap:
            counts[code] = counts.get(code, 0) + 1
            picked.append(position)
            if len(picked) == n:
                break
    return np.asarray(picked, dtype=np.int64)


def _mmr(
    scores: np.ndarray,
    similarity: np.ndarray,
    item_categories: np.ndarray | None,
    n: int,
    weight: float,
    cap: int | None,
) -> np.ndarray:
    m = len(scores)
    spread = float(scores.max() - scores.min()) if m else 0.0
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(m, np.float32)
    closest = np.zeros(m, np.float32)  # max similarity to anything picked so far
    open_ = np.ones(m, dtype=bool)
    counts: dict[int, int] = {}
    picked: list[int] = []
    while len(picked) < n and open_.any():
        objective = weight * relevance - (1.0 - weight) * closest
        objective[~open_] = -np.inf
        best = int(np.argmax(objective))  # first maximum: the better-ranked candidate
        open_[best] = False
        if cap is not None and item_categories is not None:
            code = int(item_categories[best])
            if counts.get(code, 0) >= cap:
                continue
            counts[code] = counts.get(code, 0) + 1
        picked.append(best)
        np.maximum(closest, similarity[best], out=closest)
    return np.asarray(picked, dtype=np.int64)
