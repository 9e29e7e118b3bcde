"""``GET /v1/visitors/<visitor_id>/recommendations``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import RAISE

from recsvc.api.blueprint import Blueprint
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
    """Products for this visitor: the model's vector for a known visitor (``als``), a
    vector solved from this session's items for an unknown one (``foldin``), trending and
    popular items otherwise (``popular``). Each item names its reason and the history
    items behind it. Never fails for a valid request: without Redis or a model the answer
    comes from the worker's memory with ``"fallback": "popular"``."""
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
