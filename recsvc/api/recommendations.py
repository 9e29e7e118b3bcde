"""``GET /v1/visitors/<visitor_id>/recommendations``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import RAISE

from recsvc.api.blueprint import Blueprint
from recsvc.api.quick_parser import QuickParser, quick_list_query
from recsvc.api.visitors import checked_visitor_id
from recsvc.schemas.common import RATE_LIMITED, ApiErrorSchema
from recsvc.schemas.recommendations import RecommendationsQuerySchema, RecommendationsSchema
from recsvc.serving.recommend import RecommendQuery
from recsvc.web.identity import disclosure_for
from recsvc.web.services import services

blp = Blueprint(
    "recommendations", __name__, url_prefix="/v1/visitors", description="Recommendations."
)
# Every product page asks: its usual query (n, category) skips the schema
# (recsvc.api.quick_parser; about 0.1 ms of a 1 ms request).
blp.ARGUMENTS_PARSER = QuickParser(
    RecommendationsQuerySchema, quick_list_query(RecommendationsQuerySchema())
)


@blp.route("/<path:visitor_id>/recommendations")
# unknown=RAISE: a misspelt filter must not silently recommend from everything.
# An instance, not the class: webargs builds a schema per request from a class.
@blp.arguments(RecommendationsQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, RecommendationsSchema)
@blp.alt_response(
    401,
    schema=ApiErrorSchema,
    description="No valid API key, or an identity token that proves nothing.",
)
@blp.alt_response(
    403, schema=ApiErrorSchema, description="Public key: the identity token proves another visitor."
)
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid visitor id or filter.")
@blp.alt_response(429, **RATE_LIMITED)
def get_recommendations(visitor_id: str, **query: Any) -> Response:
    """Products for this visitor, by the first strategy that applies (the strategies the
    offline evaluation measures, ``recsvc.scoring.strategies``):

    - ``blend`` for a visitor the model knows: their long-term taste vector, their current
      session scored by the session model, and their own recent items (by recency and
      repetition, items in the cart and bought flagged), with the weights ``recsvc train``
      tuned on a validation split and shipped with the version. Their own items may come
      back ("in your cart", "you viewed this recently"); ``exclude_seen=true`` asks for
      discovery only;
    - ``session`` for an anonymous visitor in a session of items the model knows (the
      session model; never the item being viewed); ``foldin`` when the service runs with
      ``RECSVC_ANONYMOUS_STRATEGY=foldin`` or the version has no session model;
    - ``popular``: trending then popular items, the visitor's favourite category first.

    Each item names its reason and its evidence: the part of the strategy and the
    visitor's item behind each share of its score. Never fails for a valid request:
    without Redis or a model the answer comes from the worker's memory with
    ``"fallback": "popular"``.

    With a public key, anyone who knows a visitor id may ask, so the visitor's own items
    are named only when the request proves the visitor (``X-Identity-Token`` whose
    ``vid`` is this visitor id, and whose ``sub`` is the customer when the visitor is
    logged in). Without a token the storefront still gets recommendations for every page
    (ranked by the visitor's taste, as any personalised page is), but as with
    ``exclude_seen=true``: none of the visitor's viewed, carted or bought items, no
    evidence or reason naming one, and ``stage`` null (a store's label, for keys that read
    full profiles). A token that proves nothing is a 401, another visitor's a 403."""
    svc = services()
    visitor_id = checked_visitor_id(visitor_id)
    disclosure = disclosure_for(visitor_id, required=False)
    exclude = split_ids(query.pop("exclude", None))
    query.setdefault("diversity", svc.settings.default_diversity)
    request = RecommendQuery(exclude=exclude, **query)
    answer = svc.recommender.for_visitor(visitor_id, request, disclosure)
    # Built to RecommendationsSchema's shape already: skipping marshmallow's dump saves
    # about a third of the request (loadtests/bench_serving.py); the schema still
    # documents the answer and the fuzz checks answers against it.
    return jsonify(answer)


def split_ids(value: str | None) -> list[str]:
    """The ids of a comma-separated query parameter such as ``exclude``."""
    return [i for i in (value or "").split(",") if i]
