"""``GET /v1/items/<item_id>/similar`` and ``POST /v1/recommendations/cart``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import RAISE

from recsvc.api.blueprint import Blueprint
from recsvc.api.catalog import ITEM_ID_PARAMETER, checked_item_id
from recsvc.api.quick_parser import QuickParser, quick_list_query
from recsvc.api.recommendations import split_ids
from recsvc.schemas.common import RATE_LIMITED, ApiErrorSchema, is_valid_id
from recsvc.schemas.similar import (
    MAX_ADDONS,
    MAX_CART_ITEMS,
    CartAddOnsSchema,
    CartRequestSchema,
    SimilarItemsSchema,
    SimilarQuerySchema,
)
from recsvc.serving.disclosure import FULL
from recsvc.serving.recommend import RecommendQuery
from recsvc.serving.similar import UnknownItem, cart_answer, similar_answer
from recsvc.web.errors import ApiError
from recsvc.web.identity import disclosure_for
from recsvc.web.services import services

blp = Blueprint(
    "similar", __name__, url_prefix="/v1", description="Similar items and cart add-ons."
)
_CART_KEYS = frozenset({"items", "visitor_id", "n"})
_CART_DEFAULT_N = CartRequestSchema().fields["n"].load_default


def quick_cart_body(body: Any) -> dict[str, Any] | None:
    """What ``CartRequestSchema`` loads from a plainly valid body (ids as strings, ``n``
    an integer); None for anything else, which the schema then answers."""
    if type(body) is not dict or not body.keys() <= _CART_KEYS:
        return None
    items = body.get("items")
    if type(items) is not list or not 1 <= len(items) <= MAX_CART_ITEMS:
        return None
    if not all(type(item) is str and is_valid_id(item) for item in items):
        return None
    parsed: dict[str, Any] = {"items": items, "n": body.get("n", _CART_DEFAULT_N)}
    if type(parsed["n"]) is not int or not 1 <= parsed["n"] <= MAX_ADDONS:
        return None
    if "visitor_id" in body:
        if type(body["visitor_id"]) is not str or not is_valid_id(body["visitor_id"]):
            return None
        parsed["visitor_id"] = body["visitor_id"]
    return parsed


# The usual similar-items query (n, category) and cart body skip their schemas
# (recsvc.api.quick_parser).
blp.ARGUMENTS_PARSER = QuickParser(
    SimilarQuerySchema,
    quick_list_query(SimilarQuerySchema()),
    body=(CartRequestSchema, quick_cart_body),
)


# Werkzeug prefers this rule to catalog's ``/v1/items/<path:item_id>``: more static parts.
@blp.route("/items/<path:item_id>/similar", parameters=[ITEM_ID_PARAMETER])
# An instance, not the class: webargs builds a schema per request from a class.
@blp.arguments(SimilarQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, SimilarItemsSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description="The current model does not know it.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid item id or filter.")
@blp.alt_response(429, **RATE_LIMITED)
def get_similar(item_id: str, **query: Any) -> Response:
    """Items similar to this one.

    The model's similar-items list for the item, best first, filtered like
    recommendations (``category``, ``exclude``, ``in_stock``) and topped up from the
    item's nearest neighbours in factor space when the filters leave it short; never the
    item itself. 404 when the current model does not know the item; before any model is
    loaded, an empty list with ``"fallback": "popular"``.
    """
    item_id = checked_item_id(item_id)
    request = RecommendQuery(exclude=split_ids(query.pop("exclude", None)), **query)
    try:
        # Already the documented shape: returned without marshmallow's dump (speed).
        svc = services()
        return jsonify(similar_answer(svc.holder, svc.tiles, item_id, request))
    except UnknownItem as error:
        raise ApiError(404, "not_found", f"The current model does not know {item_id!r}.") from error


@blp.route("/recommendations/cart", methods=["POST"])
# An instance, not the class: webargs builds a schema per request from a class (0.13 ms).
@blp.arguments(CartRequestSchema(), example={"items": ["sku-1", "sku-2"], "n": 10})
@blp.response(200, CartAddOnsSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@blp.alt_response(
    401,
    schema=ApiErrorSchema,
    description="No valid API key; or a public key with visitor_id and no valid identity token.",
)
@blp.alt_response(
    403,
    schema=ApiErrorSchema,
    description="Public key: the identity token proves another visitor than visitor_id.",
)
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid body.")
@blp.alt_response(429, **RATE_LIMITED)
def post_cart(body: dict[str, Any]) -> Response:
    """Add-ons for a cart.

    Never an item of the cart nor, with ``visitor_id``, one that visitor bought. Items
    close to the cart's items in their similar-items lists, blended with a vector folded in
    from the whole cart (``recsvc.serving.similar`` documents the blend); each names the
    cart item it goes with. Cart ids the model does not know are ignored; when it knows
    none, trending and popular items (``"strategy": "popular"``). Never fails for a valid
    body: without Redis the visitor's purchases are not left out and the tiles lack
    catalog fields; before any model is loaded the list is empty with
    ``"fallback": "popular"``.

    What is left out tells what the visitor bought, so with a public key a
    ``visitor_id`` needs the visitor's ``X-Identity-Token`` (401 without a valid one, 403
    for another visitor), and a logged-in customer's purchases are left out only when the
    token's ``sub`` is that customer. Without ``visitor_id`` no token is needed.
    """
    svc = services()
    visitor_id = body.get("visitor_id")
    disclosure = FULL if visitor_id is None else disclosure_for(visitor_id, required=True)
    answer = cart_answer(
        svc.holder,
        svc.reader,
        svc.tiles,
        body["items"],
        visitor_id,
        body["n"],
        disclosure=disclosure,
    )
    return jsonify(answer)
