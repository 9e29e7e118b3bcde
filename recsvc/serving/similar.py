"""Similar items and cart add-ons, from the model a worker holds.

Both read the current ``LoadedModel`` only (its similar-items lists, factors and index);
Redis is touched for the catalog fields of the tiles and, for a cart with a
``visitor_id``, that visitor's profile, both through the recommender's fast client and
behind its breaker, so a Redis outage costs the tile fields and the purchase filter,
never the answer.

Similar items of an item: its published list (the training job's nearest items by cosine
of factors, best first) filtered like recommendations (``exclude``, ``category``,
``in_stock``); when filtering leaves fewer than ``n``, the rest comes from the index: of
the ``WIDEN × missing`` allowed items with the largest dot product with the item's
factors, those of highest cosine (the index searches inner products, so this is close to,
not always exactly, the cosine top). An item outside the list has a cosine no larger than
the list's last one, so the scores (cosines) stay best first.

Cart add-ons: never an item of the cart, nor (with ``visitor_id``) one that visitor bought
or has in their profile's cart. Two sources, blended:

- ``lists``: for each candidate the sum, over the cart's items, of its score in their
  similar-items lists: an item close to several cart items goes with the whole cart;
- ``foldin``: a user vector solved from the cart's items (``recsvc.core.foldin``, as the
  model was fit, each item weighted as an ``add_to_cart``) searched in the index: the
  cart as one taste, reaching beyond the lists' 50 items per item.

The candidates are both sources' items; each gets both parts, on scales that do not
depend on the filters: ``lists`` is its sum divided by the number of cart items the model
knows (a mean cosine, negative ones counted as 0: in [0, 1]; 0 for an item in no list),
``foldin`` its dot product with the cart's vector clipped to [0, 1] (ALS fits
preferences of 0 and 1: this is the model's predicted preference). Then
``score = LIST_WEIGHT · lists + (1 − LIST_WEIGHT) · foldin``, in [0, 1]. The reason names
the cart item that contributed most to the ``lists`` part (``"goes with <item>"``), with
each cart item's share as evidence; ``"goes with your cart"`` when no list had it. A cart
of items the model does not know gets trending and popular items (``strategy:
"popular"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsvc.core.foldin import fold_in
from recsvc.serving.holder import LoadedModel
from recsvc.serving.recommend import (
    Recommender,
    RecommendQuery,
    allowed_mask,
    empty_answer,
    owned,
    popular_items,
)

# Share of the similar-lists part in a cart add-on's score; the fold-in has the rest.
LIST_WEIGHT = 0.5
# The index is asked for this many times the items wanted, so that the cosine order and
# the blend pick from a wider set than the final answer.
WIDEN = 4
# Each cart item weighs as this event type did in training.
CART_EVENT = "add_to_cart"


class UnknownItem(LookupError):
    """The current model does not know this item."""


@dataclass
class Ranked:
    rows: np.ndarray  # (m,) int32 item rows, best first
    scores: np.ndarray  # (m,) float32


# --- similar items -----------------------------------------------------------------------
def similar_rows(model: LoadedModel, row: int, n: int, mask: np.ndarray) -> Ranked:
    """Up to ``n`` items similar to ``row`` among those ``mask`` allows, best first.

    ``mask`` is not modified; ``row`` itself is never returned.
    """
    allowed = mask.copy()
    allowed[row] = False
    listed = model.similar_items[row]
    scores = model.similar_scores[row]
    keep = listed >= 0
    keep[keep] = allowed[listed[keep]]
    rows, values = listed[keep][:n], scores[keep][:n]
    missing = n - len(rows)
    if missing > 0:
        allowed[rows] = False
        extra_rows, extra_scores = _cosine_neighbours(model, row, missing, allowed)
        rows = np.concatenate([rows, extra_rows])
        values = np.concatenate([values, extra_scores])
    return Ranked(rows.astype(np.int32, copy=False), values.astype(np.float32, copy=False))


def _cosine_neighbours(model: LoadedModel, row: int, k: int, mask: np.ndarray):
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


def similar_answer(recommender: Recommender, item_id: str, query: RecommendQuery) -> dict:
    """``GET /v1/items/<item_id>/similar``; raises :class:`UnknownItem` when a model is
    loaded and does not know the item."""
    model = recommender.holder.current()
    if model is None:
        answer = empty_answer()
        answer.pop("strategy")
        return {"item_id": item_id, **answer}
    row = model.row_of.get(item_id)
    if row is None:
        raise UnknownItem(item_id)
    ranked = similar_rows(model, row, query.n, allowed_mask(model, query))
    reason = f"similar to {item_id}"
    items = [
        {"item_id": model.item_ids[r], "score": round(float(s), 6), "reason": reason}
        for r, s in zip(ranked.rows.tolist(), ranked.scores.tolist(), strict=True)
    ]
    return {
        "item_id": item_id,
        "items": recommender.tiles(items),
        "model_version": model.version,
        "fallback": None,
    }


# --- cart add-ons ------------------------------------------------------------------------
@dataclass
class ListScores:
    rows: np.ndarray  # (m,) int32 distinct candidate rows
    scores: np.ndarray  # (m,) float32: Σ over cart items of the candidate's list score
    sources: np.ndarray  # (m, c) float32: each cart item's part of that sum


def list_scores(model: LoadedModel, cart_rows: np.ndarray, mask: np.ndarray) -> ListScores:
    """Candidates from the cart items' similar-items lists, with their summed scores."""
    listed = model.similar_items[cart_rows]  # (c, s)
    scores = np.maximum(model.similar_scores[cart_rows], 0.0)
    valid = listed >= 0
    valid[valid] = mask[listed[valid]]
    cart_of = np.broadcast_to(np.arange(len(cart_rows))[:, None], listed.shape)
    rows, inverse = np.unique(listed[valid], return_inverse=True)
    sources = np.zeros((len(rows), len(cart_rows)), np.float32)
    np.add.at(sources, (inverse, cart_of[valid]), scores[valid])
    return ListScores(rows.astype(np.int32), sources.sum(axis=1), sources)


def cart_rows_of(model: LoadedModel, item_ids: list[str]) -> np.ndarray:
    """Rows of the cart items the model knows, once each, in cart order."""
    rows = dict.fromkeys(model.row_of[i] for i in item_ids if i in model.row_of)
    return np.fromiter(rows, np.int32, len(rows))


def cart_addons(
    model: LoadedModel, cart_rows: np.ndarray, n: int, mask: np.ndarray
) -> list[dict[str, Any]]:
    """Up to ``n`` add-ons for a cart of known items (``cart_rows``, non-empty); ``mask``
    must already leave the cart out."""
    lists = list_scores(model, cart_rows, mask)
    weight = float(model.manifest.get("weights", {}).get("events", {}).get(CART_EVENT, 1.0))
    vector = fold_in(
        model.item_factors,
        model.gram,
        cart_rows,
        np.full(len(cart_rows), weight or 1.0, np.float32),
        model.regularization,
        model.alpha,
    )
    fold_rows, _ = model.index.search(vector, n * WIDEN, mask)

    candidates = np.union1d(lists.rows, fold_rows).astype(np.int32)
    blended = LIST_WEIGHT * _on(candidates, lists.rows, lists.scores / len(cart_rows))
    foldin = model.item_factors[candidates] @ vector
    blended += (1.0 - LIST_WEIGHT) * np.clip(foldin, 0.0, 1.0)
    order = np.lexsort((candidates, -blended))[:n]  # best first, ties by row

    position = {row: i for i, row in enumerate(lists.rows.tolist())}
    items = []
    for row, score in zip(candidates[order].tolist(), blended[order].tolist(), strict=True):
        evidence = []
        at = position.get(row)
        if at is not None and lists.scores[at] > 0:
            parts = lists.sources[at] / lists.scores[at]
            for source in np.argsort(-parts, kind="stable"):
                if parts[source] > 0:
                    evidence.append(
                        {
                            "item_id": model.item_ids[cart_rows[source]],
                            "share": round(float(parts[source]), 3),
                        }
                    )
        reason = f"goes with {evidence[0]['item_id']}" if evidence else "goes with your cart"
        items.append(
            {
                "item_id": model.item_ids[row],
                "score": round(float(score), 6),
                "reason": reason,
                "evidence": evidence,
            }
        )
    return items


def _on(candidates: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``scores`` of ``rows`` placed on the sorted ``candidates``, clipped to [0, 1]; 0 for
    a candidate not among ``rows``."""
    out = np.zeros(len(candidates), np.float64)
    out[np.searchsorted(candidates, rows)] = np.clip(scores, 0.0, 1.0)
    return out


def cart_answer(
    recommender: Recommender,
    item_ids: list[str],
    visitor_id: str | None,
    n: int,
    owned_items: list[str] | None = None,
    with_tiles: bool = True,
) -> dict[str, Any]:
    """``POST /v1/recommendations/cart``. A caller that has read the visitor already passes
    ``owned_items`` (purchased, in the cart) instead of having them read again, and one that
    fetches catalog fields for more items at once passes ``with_tiles=False``."""
    model = recommender.holder.current()
    if model is None:
        return empty_answer()
    leave_out = list(item_ids)
    if owned_items is not None:
        leave_out.extend(owned_items)
    elif visitor_id is not None:
        # Unreadable (Redis down, breaker open): the answer goes on without the filter.
        state = recommender.read_visitor(visitor_id, None)
        if state is not None:
            leave_out.extend(owned(state.shared))
    mask = allowed_mask(model, RecommendQuery(n=n), leave_out)
    cart_rows = cart_rows_of(model, item_ids)
    if cart_rows.size:
        strategy, items = "cart", cart_addons(model, cart_rows, n, mask)
    else:
        strategy, items = "popular", popular_items(model, n, mask, None)
    return {
        "items": recommender.tiles(items) if with_tiles else items,
        "strategy": strategy,
        "model_version": model.version,
        "fallback": None,
    }
