"""Similar items and cart add-ons, from the model a worker holds.

The ranking is :mod:`recsvc.scoring.strategies` (``similar``, and ``cart`` then ``popular``
for a cart); this module turns requests into states and wants and renders the answers.
Redis is touched for the catalog fields of the tiles and, for a cart with a
``visitor_id``, that visitor's profile (their purchases and cart are left out), both
behind the reader's breaker, so a Redis outage costs the tile fields and that filter,
never the answer.

Add-ons are asked for on every page a nudged visitor sees, so each worker remembers its
recent answers by cart (``ADDONS``, :mod:`recsvc.serving.addon_cache`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsvc.scoring.state import VisitorState, Want
from recsvc.scoring.strategies import CART_CHAIN, SIMILAR_CHAIN, recommend
from recsvc.serving.addon_cache import AddonCache
from recsvc.serving.disclosure import FULL, Disclosure
from recsvc.serving.holder import LoadedModel, ModelHolder
from recsvc.serving.recommend import RecommendQuery, allowed_mask, answer_of, empty_answer
from recsvc.serving.tiles import Tiles
from recsvc.serving.visitors import VisitorReader, owned

# This worker's cart add-ons by cart: a nudged visitor's cart asks again on every page.
ADDONS = AddonCache()


class UnknownItem(LookupError):
    """The current model does not know this item."""


def similar_answer(
    holder: ModelHolder, tiles: Tiles, item_id: str, query: RecommendQuery
) -> dict[str, Any]:
    """``GET /v1/items/<item_id>/similar``; raises :class:`UnknownItem` when a model is
    loaded and does not know the item."""
    model = holder.current()
    if model is None:
        answer = empty_answer()
        answer.pop("strategy")
        return {"item_id": item_id, **answer}
    row = model.row_of.get(item_id)
    if row is None:
        raise UnknownItem(item_id)
    state = VisitorState.viewing(row)
    ranked = recommend(
        SIMILAR_CHAIN, model, state, Want(n=query.n, allowed=allowed_mask(model, query))
    )
    answer = answer_of(model, ranked, state, query)
    items = [{k: v for k, v in item.items() if k != "evidence"} for item in answer["items"]]
    return {
        "item_id": item_id,
        "items": tiles.add(items),
        "model_version": model.version,
        "fallback": None,
    }


def cart_answer(
    holder: ModelHolder,
    reader: VisitorReader,
    tiles: Tiles,
    item_ids: list[str],
    visitor_id: str | None,
    n: int,
    owned_items: list[str] | None = None,
    with_tiles: bool = True,
    disclosure: Disclosure = FULL,
) -> dict[str, Any]:
    """``POST /v1/recommendations/cart``: never a cart item, nor one the visitor bought or
    has in their cart. A caller that has read the visitor already passes ``owned_items``
    instead of having them read again, and one that fetches catalog fields for more items
    at once passes ``with_tiles=False``. Items the request may not see (``disclosure``: a
    customer's, on a device proven without that customer) are not left out: what is
    missing from the answer would tell what the customer bought."""
    model = holder.current()
    if model is None:
        return empty_answer()
    leave_out = list(owned_items or [])
    if owned_items is None and visitor_id is not None:
        # Unreadable (Redis down, breaker open): the answer goes on without the filter.
        read = reader.read(visitor_id, None)
        if read is not None and disclosure.owns(read.visitor):
            leave_out = owned(read.shared)
    key = ADDONS.key(item_ids, leave_out, n)
    strategy, items = ADDONS.get(model, key, lambda: _addons(model, item_ids, leave_out, n))
    return {
        "items": tiles.add(items) if with_tiles else items,
        "strategy": strategy,
        "model_version": model.version,
        "fallback": None,
    }


def _addons(
    model: LoadedModel, item_ids: list[str], leave_out: list[str], n: int
) -> tuple[str, list[dict[str, Any]]]:
    cart = [model.row_of[i] for i in item_ids if i in model.row_of]
    # The visitor's purchases and profile cart count as theirs: never suggested.
    owned_rows = [model.row_of[i] for i in leave_out if i in model.row_of]
    state = VisitorState(cart=np.array(cart, np.int64), purchased=np.array(owned_rows, np.int64))
    query = RecommendQuery(n=n)
    want = Want(n=n, allowed=allowed_mask(model, query), exclude_seen=True)
    ranked = recommend(CART_CHAIN, model, state, want)
    return ranked.strategy, answer_of(model, ranked, state, query)["items"]
