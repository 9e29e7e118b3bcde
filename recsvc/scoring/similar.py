"""Similar items of an item: its published list, topped up from the index.

The list is the training job's nearest items by cosine of factors, best first, filtered by
the request's mask; when filtering leaves fewer than ``k``, the rest comes from the index:
of the ``WIDEN × missing`` allowed items with the largest dot product with the item's
factors, those of highest cosine (the index searches inner products, so this is close to,
not always exactly, the cosine top). An item outside the list has a cosine no larger than
the list's last one, so the scores (cosines) stay best first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsvc.scoring.model import ScoringModel

# The index is asked for this many times the items missing.
WIDEN = 4


def similar_rows(
    model: ScoringModel, row: int, k: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` items similar to ``row`` among those ``mask`` allows, best first, with
    their cosines. ``mask`` is not modified; ``row`` itself is never returned."""
    allowed = mask.copy()
    allowed[row] = False
    listed = model.similar_items[row]
    scores = model.similar_scores[row]
    keep = listed >= 0
    keep[keep] = allowed[listed[keep]]
    rows, values = listed[keep][:k], scores[keep][:k]
    missing = k - len(rows)
    if missing > 0:
        allowed[rows] = False
        extra_rows, extra_scores = _cosine_neighbours(model, row, missing, allowed)
        rows = np.concatenate([rows, extra_rows])
        values = np.concatenate([values, extra_scores])
    return rows.astype(np.int32, copy=False), values.astype(np.float32, copy=False)


def _cosine_neighbours(
    model: ScoringModel, row: int, k: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The top-up: the index's best dot products with ``row``'s factors, by cosine."""
    vector = model.item_factors[row]
    rows, _dots = model.index.search(vector, k * WIDEN, mask)
    if rows.size == 0:
        return rows, np.zeros(0, np.float32)
    candidates = model.item_factors[rows]
    norms = np.linalg.norm(candidates, axis=1) * np.linalg.norm(vector)
    cosines = (candidates @ vector) / np.maximum(norms, 1e-12)
    order = np.argsort(-cosines, kind="stable")[:k]
    return rows[order], cosines[order].astype(np.float32)
