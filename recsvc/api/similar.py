"""``GET /v1/items/<item_id>/similar`` and ``POST /v1/recommendations/cart``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint
from marshmallow import RAISE

from recsvc.api.catalog import ITEM_ID_PARAMETER, checked_item_id
from recsvc.api.query_parser import QuickQueryParser, quick_list_query
from recsvc.api.recommendations import split_ids
from recsvc.schemas.common import ApiErrorSchema
from recsvc.schemas.similar import (
    CartAddOnsSchema,
    CartRequestSchema,
    SimilarItemsSchema,
    SimilarQuerySchema,
)
from recsvc.serving.recommend import RecommendQuery
from recsvc.serving.similar import UnknownItem, cart_answer, similar_answer
from recsvc.web.errors import ApiError
from recsvc.web.services import services

blp = Blueprint(
    "similar", __name__, url_prefix="/v1", description="Similar items and cart add-ons."
)
# The usual similar-items query (n, category) skips the schema (recsvc.api.query_parser).
blp.ARGUMENTS_PARSER = QuickQueryParser(SimilarQuerySchema, quick_list_query(SimilarQuerySchema()))


# Werkzeug prefers this rule to catalog's ``/v1/items/<path:item_id>``: more static parts.
@blp.route("/items/<path:item_id>/similar", parameters=[ITEM_ID_PARAMETER])
# An instance, not the class: webargs builds a schema per request from a class.
@blp.arguments(SimilarQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, SimilarItemsSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description="The current model does not know it.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid item id or filter.")
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
        return jsonify(similar_answer(services().recommender, item_id, request))
    except UnknownItem as error:
        raise ApiError(404, "not_found", f"The current model does not know {item_id!r}.") from error


@blp.route("/recommendations/cart", methods=["POST"])
# An instance, not the class: webargs builds a schema per request from a class (0.13 ms).
@blp.arguments(CartRequestSchema(), example={"items": ["sku-1", "sku-2"], "n": 10})
@blp.response(200, CartAddOnsSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid body.")
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
    """
    answer = cart_answer(services().recommender, body["items"], body.get("visitor_id"), body["n"])
    return jsonify(answer)
