"""``GET /v1/visitors/<visitor_id>/recommendations``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint
from marshmallow import RAISE

from recsvc.api.quick_parser import QuickParser, quick_list_query
from recsvc.api.visitors import checked_visitor_id
from recsvc.schemas.common import ApiErrorSchema
from recsvc.schemas.recommendations import RecommendationsQuerySchema, RecommendationsSchema
from recsvc.serving.recommend import RecommendQuery
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
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid visitor id or filter.")
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
    ``"fallback": "popular"``."""
    svc = services()
    exclude = split_ids(query.pop("exclude", None))
    query.setdefault("diversity", svc.settings.default_diversity)
    request = RecommendQuery(exclude=exclude, **query)
    answer = svc.recommender.for_visitor(checked_visitor_id(visitor_id), request)
    # Built to RecommendationsSchema's shape already: skipping marshmallow's dump saves
    # about a third of the request (loadtests/bench_serving.py); the schema still
    # documents the answer and the fuzz checks answers against it.
    return jsonify(answer)


def split_ids(value: str | None) -> list[str]:
    """The ids of a comma-separated query parameter such as ``exclude``."""
    return [i for i in (value or "").split(",") if i]
