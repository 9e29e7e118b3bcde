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

Add-ons are asked for on every page a nudged visitor sees, so three things keep them
cheap, none changing the answer:

- each worker remembers its recent answers by cart (``ADDONS``, ``addon_cache``);
- the fold-in solves a small system against ``(YᵀY + λI)⁻¹`` computed once per model
  (``LoadedModel.cart``, ``cart_model``) instead of a full one per cart;
- the search is skipped when it cannot change the top ``n``: an item found only by the
  search scores ``(1 − LIST_WEIGHT) · foldin`` at most, so when the lists' ``n``-th best
  score is above that for every allowed item outside them, the lists' top ``n`` is the
  answer. Proving it checks only the few items whose norm lets them score that high
  (``CartModel.scoring_at_least``), not the catalog. Where the search is skipped, the
  fold-in part of a score comes from another BLAS call, so it may differ from before in
  its last float32 bit (the items and their order do not, short of two scores that close).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsvc.serving.addon_cache import AddonCache
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
# This worker's cart add-ons by cart: a nudged visitor's cart asks again on every page.
ADDONS = AddonCache()
# Relative margin under the bar that still counts as reaching it (see _others_reach).
BOUND_MARGIN = 1e-5


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
    """Candidates from the cart items' similar-items lists, with their summed scores.

    This runs per request: the distinct candidates come from one stable argsort rather
    than ``np.unique`` (the same rows and inverse, at a fraction of its call overhead),
    and a one-item cart whose list names each item once (the usual case) needs no sums."""
    listed = model.similar_items[cart_rows]  # (c, s)
    valid = listed >= 0
    valid[valid] = mask[listed[valid]]
    flat = listed[valid]
    scores = np.maximum(model.similar_scores[cart_rows][valid], 0.0)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    first = np.ones(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    if len(cart_rows) == 1 and first.all():
        sources = scores[order][:, None]
        return ListScores(ordered.astype(np.int32), sources[:, 0], sources)
    inverse = np.empty(len(flat), np.intp)
    inverse[order] = np.cumsum(first) - 1
    rows = ordered[first]
    sources = np.zeros((len(rows), len(cart_rows)), np.float32)
    np.add.at(sources, (inverse, np.nonzero(valid)[0]), scores)  # row: the cart item
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
    vector = model.cart.fold_in(model, cart_rows, weight or 1.0)
    candidates, blended = _blended(model, lists, len(cart_rows), vector, n, mask)
    order = np.lexsort((candidates, -blended))[:n]  # best first, ties by row
    cart_ids = [model.item_ids[row] for row in cart_rows.tolist()]
    evidences = _evidence(lists, candidates[order], cart_ids)
    items = []
    for row, score, evidence in zip(
        candidates[order].tolist(), blended[order].tolist(), evidences, strict=True
    ):
        reason = f"goes with {evidence[0]['item_id']}" if evidence else "goes with your cart"
        items.append(
            {
                "item_id": model.item_ids[row],
                "score": round(score, 6),
                "reason": reason,
                "evidence": evidence,
            }
        )
    return items


def _evidence(
    lists: ListScores, rows: np.ndarray, cart_ids: list[str]
) -> list[list[dict[str, Any]]]:
    """For each of ``rows``: each cart item's share of its ``lists`` score, largest first
    (none when no list had it). All rows at once: a few array operations, not a few per
    row."""
    if not len(lists.rows):
        return [[] for _ in range(len(rows))]
    at = np.searchsorted(lists.rows, rows).clip(max=len(lists.rows) - 1)
    totals = lists.scores[at]
    found = ((lists.rows[at] == rows) & (totals > 0)).tolist()
    with np.errstate(divide="ignore", invalid="ignore"):  # rows not found: left unused
        parts = lists.sources[at] / totals[:, None]
    ranked = np.argsort(-parts, axis=1, kind="stable").tolist()
    return [
        [
            {"item_id": cart_ids[source], "share": round(shares[source], 3)}
            for source in sources
            if shares[source] > 0
        ]
        if listed
        else []
        for listed, shares, sources in zip(found, parts.tolist(), ranked, strict=True)
    ]


def _blended(
    model: LoadedModel,
    lists: ListScores,
    cart_size: int,
    vector: np.ndarray,
    n: int,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates (ascending rows) and their blended scores: the lists' alone when
    no other item can reach the top ``n`` (``_others_reach``), else with the fold-in
    search's ``WIDEN × n`` best."""
    if 0 < n <= len(lists.rows):
        blended = _blend(model, lists.rows, lists, cart_size, vector)
        bar = float(np.partition(blended, len(blended) - n)[len(blended) - n])  # n-th best
        if not _others_reach(model, vector, bar, lists.rows, mask):
            return lists.rows, blended
    fold_rows, _ = model.index.search(vector, n * WIDEN, mask)
    candidates = np.union1d(lists.rows, fold_rows).astype(np.int32)
    return candidates, _blend(model, candidates, lists, cart_size, vector)


def _blend(
    model: LoadedModel,
    candidates: np.ndarray,
    lists: ListScores,
    cart_size: int,
    vector: np.ndarray,
) -> np.ndarray:
    """``score = LIST_WEIGHT · lists + (1 − LIST_WEIGHT) · foldin`` of each candidate."""
    if candidates is lists.rows:  # the lists' items alone
        blended = LIST_WEIGHT * np.clip(lists.scores / cart_size, 0.0, 1.0).astype(np.float64)
    else:
        blended = LIST_WEIGHT * _on(candidates, lists.rows, lists.scores / cart_size)
    foldin = model.item_factors[candidates] @ vector
    blended += (1.0 - LIST_WEIGHT) * np.clip(foldin, 0.0, 1.0)
    return blended


def _others_reach(
    model: LoadedModel, vector: np.ndarray, bar: float, listed: np.ndarray, mask: np.ndarray
) -> bool:
    """Whether an allowed item outside the lists (``listed``, ascending) could score
    ``bar`` or more. Such an item scores ``(1 − LIST_WEIGHT) · clip(y·x, 0, 1)``, so only
    one with ``y·x >= bar / (1 − LIST_WEIGHT)`` could: none when that is above 1, else
    only among the few items long enough to (``CartModel.scoring_at_least``). True when
    unsure: the caller then searches."""
    bound = bar / (1.0 - LIST_WEIGHT)
    if bound > 1.0:
        return False
    if bound <= 0.0:
        return True
    # A margin: the search scores items in other BLAS calls, which may round differently.
    rows = model.cart.scoring_at_least(vector, bound * (1.0 - BOUND_MARGIN))
    if rows is None:
        return True
    rows = rows[mask[rows]]
    at = np.searchsorted(listed, rows).clip(max=len(listed) - 1)  # listed is not empty
    return bool(np.any(listed[at] != rows))


def _on(candidates: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``scores`` of ``rows`` placed on the sorted ``candidates``, clipped to [0, 1]; 0 for
    a candidate not among ``rows``."""
    out = np.zeros(len(candidates), np.float64)
    out[np.searchsorted(candidates, rows)] = np.clip(scores, 0.0, 1.0)
    return out


def _addons(
    model: LoadedModel, item_ids: list[str], leave_out: list[str], n: int
) -> tuple[str, list[dict[str, Any]]]:
    mask = allowed_mask(model, RecommendQuery(n=n), leave_out)
    cart_rows = cart_rows_of(model, item_ids)
    if cart_rows.size:
        return "cart", cart_addons(model, cart_rows, n, mask)
    return "popular", popular_items(model, n, mask, None)


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
    key = ADDONS.key(item_ids, leave_out, n)
    strategy, items = ADDONS.get(model, key, lambda: _addons(model, item_ids, leave_out, n))
    return {
        "items": recommender.tiles(items) if with_tiles else items,
        "strategy": strategy,
        "model_version": model.version,
        "fallback": None,
    }
