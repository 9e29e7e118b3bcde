"""Cart add-ons: what goes with the items in a cart.

Never an item of the cart. Two sources, blended:

- ``lists``: for each candidate the sum, over the cart's items, of its score in their
  similar-items lists: an item close to several cart items goes with the whole cart;
- ``fold_in``: a user vector solved from the cart's items
  (:class:`recsvc.scoring.foldin.FoldIn`, each item weighted as an ``add_to_cart``)
  searched in the index: the cart as one taste, reaching beyond the lists' 50 items per
  item.

The candidates are both sources' items; each gets both parts, on scales that do not
depend on the filters: ``lists`` is its sum divided by the number of cart items the model
knows (a mean cosine, negative ones counted as 0: in [0, 1]; 0 for an item in no list),
``fold_in`` its dot product with the cart's vector clipped to [0, 1] (ALS fits
preferences of 0 and 1: this is the model's predicted preference). Then
``score = LIST_WEIGHT · lists + (1 − LIST_WEIGHT) · fold_in``, in [0, 1]. The evidence
splits the ``lists`` part over the cart items by their share of the sum.

The search is skipped when it cannot change the top ``n``: an item found only by the
search scores ``(1 − LIST_WEIGHT) · fold_in`` at most, so when the lists' ``n``-th best
score is above that for every allowed item outside them, the lists' top ``n`` is the
answer. Proving it checks only the few items whose norm lets them score that high
(:meth:`recsvc.scoring.index.ItemIndex.scoring_at_least`), not the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recsvc.scoring.state import Evidence

if TYPE_CHECKING:
    from recsvc.scoring.model import ScoringModel

# Share of the similar-lists part in a cart add-on's score; the fold-in has the rest.
LIST_WEIGHT = 0.5
# The index is asked for this many times the items wanted, so that the blend picks from a
# wider set than the final answer.
WIDEN = 4
# Each cart item weighs as this event type did in training.
CART_EVENT = "add_to_cart"
# Relative margin under the bar that still counts as reaching it (see _others_reach).
BOUND_MARGIN = 1e-5


@dataclass
class ListScores:
    rows: np.ndarray  # (m,) int32 distinct candidate rows, ascending
    scores: np.ndarray  # (m,) float32: Σ over cart items of the candidate's list score
    sources: np.ndarray  # (m, c) float32: each cart item's part of that sum


def list_scores(model: ScoringModel, cart_rows: np.ndarray, mask: np.ndarray) -> ListScores:
    """Candidates from the cart items' similar-items lists, with their summed scores.

    The distinct candidates come from one stable argsort rather than ``np.unique`` (the
    same rows and inverse, at a fraction of its call overhead), and a one-item cart whose
    list names each item once (the usual case) needs no sums."""
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
    np.add.at(sources, (inverse, np.nonzero(valid)[0]), scores)  # column: the cart item
    return ListScores(rows.astype(np.int32), sources.sum(axis=1), sources)


def cart_addons(
    model: ScoringModel, cart_rows: np.ndarray, k: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[list[Evidence]]]:
    """Up to ``k`` add-ons for a cart of known, distinct items (``cart_rows``, non-empty);
    ``mask`` must already leave the cart out. Returns rows, scores and evidence."""
    lists = list_scores(model, cart_rows, mask)
    weight = model.event_weights.get(CART_EVENT, 1.0) or 1.0
    vector = model.folder.vector(cart_rows, np.full(len(cart_rows), np.float32(weight)))
    candidates, lists_part, blended = _blended(model, lists, len(cart_rows), vector, k, mask)
    order = np.lexsort((candidates, -blended))[:k]  # best first, ties by row
    evidence = _evidence(lists, candidates[order], lists_part[order], blended[order], cart_rows)
    return candidates[order], blended[order].astype(np.float32), evidence


def _evidence(
    lists: ListScores,
    rows: np.ndarray,
    lists_part: np.ndarray,
    scores: np.ndarray,
    cart_rows: np.ndarray,
) -> list[list[Evidence]]:
    """Per row: each cart item's share of the ``lists`` part (largest first), then the
    fold-in's share. All rows at once: a few array operations, not a few per row."""
    if len(lists.rows):
        at = np.searchsorted(lists.rows, rows).clip(max=len(lists.rows) - 1)
        found = (lists.rows[at] == rows) & (lists.scores[at] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):  # rows not found: left unused
            parts = lists.sources[at] / lists.scores[at][:, None]
    else:
        found = np.zeros(len(rows), bool)
        parts = np.zeros((len(rows), len(cart_rows)))
    with np.errstate(divide="ignore", invalid="ignore"):
        list_share = np.where(scores > 0, LIST_WEIGHT * lists_part / scores, 0.0)
    out = []
    for listed, shares, of_lists, score in zip(
        found.tolist(), parts.tolist(), list_share.tolist(), scores.tolist(), strict=True
    ):
        entries = []
        if listed and of_lists > 0:
            entries = [
                Evidence("lists", int(cart_rows[n]), of_lists * share)
                for n, share in enumerate(shares)
                if share > 0
            ]
        if score > 0 and of_lists < 1:
            entries.append(Evidence("fold_in", -1, 1.0 - of_lists))
        out.append(sorted(entries, key=lambda e: -e.share))
    return out


def _blended(
    model: ScoringModel,
    lists: ListScores,
    cart_size: int,
    vector: np.ndarray,
    n: int,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidates (ascending rows), their ``lists`` part and blended scores: the
    lists' alone when no other item can reach the top ``n`` (``_others_reach``), else
    with the fold-in search's ``WIDEN × n`` best."""
    if 0 < n <= len(lists.rows):
        lists_part = np.clip(lists.scores / cart_size, 0.0, 1.0).astype(np.float64)
        blended = _blend(model, lists.rows, lists_part, vector)
        bar = float(np.partition(blended, len(blended) - n)[len(blended) - n])  # n-th best
        if not _others_reach(model, vector, bar, lists.rows, mask):
            return lists.rows, lists_part, blended
    fold_rows, _ = model.index.search(vector, n * WIDEN, mask)
    candidates = np.union1d(lists.rows, fold_rows).astype(np.int32)
    lists_part = _on(candidates, lists.rows, lists.scores / cart_size)
    return candidates, lists_part, _blend(model, candidates, lists_part, vector)


def _blend(
    model: ScoringModel, candidates: np.ndarray, lists_part: np.ndarray, vector: np.ndarray
) -> np.ndarray:
    """``score = LIST_WEIGHT · lists + (1 − LIST_WEIGHT) · fold_in`` of each candidate."""
    fold_in = model.item_factors[candidates] @ vector
    return LIST_WEIGHT * lists_part + (1.0 - LIST_WEIGHT) * np.clip(fold_in, 0.0, 1.0)


def _others_reach(
    model: ScoringModel, vector: np.ndarray, bar: float, listed: np.ndarray, mask: np.ndarray
) -> bool:
    """Whether an allowed item outside the lists (``listed``, ascending) could score
    ``bar`` or more. Such an item scores ``(1 − LIST_WEIGHT) · clip(y·x, 0, 1)``, so only
    one with ``y·x >= bar / (1 − LIST_WEIGHT)`` could: none when that is above 1, else
    only among the few items long enough to. True when unsure: the caller then searches."""
    bound = bar / (1.0 - LIST_WEIGHT)
    if bound > 1.0:
        return False
    if bound <= 0.0:
        return True
    # A margin: the search scores items in other BLAS calls, which may round differently.
    rows = model.index.scoring_at_least(vector, bound * (1.0 - BOUND_MARGIN))
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
