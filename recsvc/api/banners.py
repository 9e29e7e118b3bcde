"""Banners: admin CRUD at ``/v1/admin/banners`` and ``GET /v1/visitors/<id>/banners``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify
from marshmallow import RAISE

from recsvc.api.blueprint import Blueprint
from recsvc.api.quick_parser import QuickParser, quick_query
from recsvc.api.visitors import VISITOR_ID_PARAMETER, checked_visitor_id
from recsvc.core.events import format_timestamp
from recsvc.schemas.banners import (
    BannerListSchema,
    BannerSchema,
    StoredBannerSchema,
    VisitorBannersQuerySchema,
    VisitorBannersSchema,
)
from recsvc.schemas.common import (
    ID_RULE,
    RATE_LIMITED,
    REDIS_UNAVAILABLE,
    ApiErrorSchema,
    is_valid_id,
)
from recsvc.serving.banners import banner_for_display
from recsvc.serving.disclosure import FULL, UNPROVEN
from recsvc.web.auth import current_caller
from recsvc.web.errors import ApiError
from recsvc.web.services import services

admin_blp = Blueprint(
    "admin_banners",
    __name__,
    url_prefix="/v1/admin/banners",
    description="Banners and their targeting rules (admin key).",
)
visitor_blp = Blueprint(
    "banners", __name__, url_prefix="/v1/visitors", description="Banners for a visitor."
)

# What ``VisitorBannersQuerySchema`` loads from a plainly written valid query (its ``n``
# default included); None for anything else, which the schema then answers.
quick_banners_query = quick_query(VisitorBannersQuerySchema(), 20, {"placement": is_valid_id})

# The storefront asks on every page: its usual query skips the schema (recsvc.api.quick_parser).
visitor_blp.ARGUMENTS_PARSER = QuickParser(VisitorBannersQuerySchema, quick_banners_query)

BANNER_EXAMPLE = {
    "id": "b-cart-rescue",
    "placement": "cart",
    "content": {
        "title": "Free shipping over 50",
        "body": "Add a little more to ship for free.",
        "image_url": "https://cdn.example.com/banners/free-shipping.png",
        "link": "https://shop.example.com/free-shipping",
        "cta": "Shop now",
    },
    "rules": {"stages": ["decision"], "has_cart": True, "cart_value_max": 50},
    "priority": 10,
    "frequency_cap_per_day": 3,
    "promotes": {"categories": ["accessories"]},
    "experiment": {"id": "shipping-copy", "variant": "a"},
}
BANNER_ID_PARAMETER = {
    "in": "path",
    "name": "banner_id",
    "required": True,
    "description": f"The banner's id: {ID_RULE}.",
    "schema": {"type": "string"},
}


def _now_iso() -> str:
    return format_timestamp(datetime.fromtimestamp(services().clock.now(), UTC))


def _checked_banner_id(banner_id: str) -> str:
    if not is_valid_id(banner_id):
        raise ApiError(404, "not_found", f"No banner {banner_id!r}.")
    return banner_id


@admin_blp.route("")
@admin_blp.response(200, BannerListSchema)
@admin_blp.alt_response(503, **REDIS_UNAVAILABLE)
def list_banners() -> dict[str, Any]:
    """Every banner, by id."""
    return {"banners": [banner_for_display(b) for b in services().banners.all()]}


@admin_blp.route("", methods=["POST"])
@admin_blp.arguments(BannerSchema, example=BANNER_EXAMPLE)
@admin_blp.response(201, StoredBannerSchema)
@admin_blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@admin_blp.alt_response(409, schema=ApiErrorSchema, description="A banner with this id exists.")
@admin_blp.alt_response(422, schema=ApiErrorSchema, description="Invalid banner or rule.")
@admin_blp.alt_response(503, **REDIS_UNAVAILABLE)
def create_banner(banner: dict[str, Any]) -> dict[str, Any]:
    """Create a banner.

    Rules are checked on write: an unknown rule kind, stage, segment or source is a 422.
    Without an ``id`` one is made. Workers serve it within about a second.
    """
    banner.setdefault("id", f"b-{uuid.uuid4().hex[:12]}")
    banner["created_at"] = banner["updated_at"] = _now_iso()
    if not services().banners.create(banner):
        raise ApiError(409, "conflict", f"Banner {banner['id']!r} exists; PUT replaces it.")
    return banner_for_display(banner)


@admin_blp.route("/<path:banner_id>", parameters=[BANNER_ID_PARAMETER])
@admin_blp.response(200, StoredBannerSchema)
@admin_blp.alt_response(404, schema=ApiErrorSchema, description="No such banner.")
@admin_blp.alt_response(503, **REDIS_UNAVAILABLE)
def get_banner(banner_id: str) -> dict[str, Any]:
    """One banner."""
    banner = services().banners.get(_checked_banner_id(banner_id))
    if banner is None:
        raise ApiError(404, "not_found", f"No banner {banner_id!r}.")
    return banner_for_display(banner)


@admin_blp.route("/<path:banner_id>", methods=["PUT"], parameters=[BANNER_ID_PARAMETER])
@admin_blp.arguments(BannerSchema, example=BANNER_EXAMPLE)
@admin_blp.response(200, StoredBannerSchema)
@admin_blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@admin_blp.alt_response(404, schema=ApiErrorSchema, description="No such banner.")
@admin_blp.alt_response(422, schema=ApiErrorSchema, description="Invalid banner or rule.")
@admin_blp.alt_response(503, **REDIS_UNAVAILABLE)
def replace_banner(banner: dict[str, Any], banner_id: str) -> dict[str, Any]:
    """Replace a banner (the whole of it; an ``id`` in the body must be the path's)."""
    store = services().banners
    stored = store.get(_checked_banner_id(banner_id))
    if stored is None:
        raise ApiError(404, "not_found", f"No banner {banner_id!r}; POST creates one.")
    if banner.setdefault("id", banner_id) != banner_id:
        raise ApiError(
            422,
            "validation_error",
            "The body's id differs from the path's.",
            {"errors": [{"field": "id", "reason": f"Must be {banner_id!r} or absent."}]},
        )
    banner["created_at"], banner["updated_at"] = stored.get("created_at"), _now_iso()
    if not store.replace(banner):  # deleted meanwhile
        raise ApiError(404, "not_found", f"No banner {banner_id!r}.")
    return banner_for_display(banner)


@admin_blp.route("/<path:banner_id>", methods=["DELETE"], parameters=[BANNER_ID_PARAMETER])
@admin_blp.response(204)
@admin_blp.alt_response(404, schema=ApiErrorSchema, description="No such banner.")
@admin_blp.alt_response(503, **REDIS_UNAVAILABLE)
def delete_banner(banner_id: str) -> Response:
    """Delete a banner; workers stop showing it within about a second."""
    if not services().banners.delete(_checked_banner_id(banner_id)):
        raise ApiError(404, "not_found", f"No banner {banner_id!r}.")
    return Response(status=204)


@visitor_blp.route("/<path:visitor_id>/banners", parameters=[VISITOR_ID_PARAMETER])
# unknown=RAISE: a misspelt "placement" must not silently return every placement's banner.
# An instance, not the class: webargs builds a schema per request from a class.
@visitor_blp.arguments(VisitorBannersQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@visitor_blp.response(200, VisitorBannersSchema)
@visitor_blp.alt_response(422, schema=ApiErrorSchema, description="Invalid visitor id or query.")
@visitor_blp.alt_response(429, **RATE_LIMITED)
def get_visitor_banners(visitor_id: str, n: int = 1, placement: str | None = None) -> Response:
    """The banners to show this visitor now, best first.

    Eligible banners (every rule matches the real-time profile, under the daily frequency
    cap, the visitor's variant of an experiment) ranked by priority, then by the visitor's
    affinity to what each promotes. Each names the rules it matched. Never fails for a
    valid request: without Redis the visitor is targeted as a new one, with
    ``"fallback": "unavailable"``.

    The visitor's ``stage``, ``segments`` and the visitor rules a banner matched (with
    the visitor's values: stage, cart value, sources, browsed categories) are the store's
    labels, answered to keys that read full profiles. A public key, which anyone may use
    with any visitor id, gets the banners, the time rules they matched and a reason
    saying "targeted to this visitor" for the rest; an identity token changes nothing
    here (a visitor's own browser does not see the store's labels either).
    """
    disclosure = FULL if current_caller().can("read_profiles") else UNPROVEN
    answer = services().banner_service.for_visitor(
        checked_visitor_id(visitor_id), placement, n, disclosure
    )
    # Built to VisitorBannersSchema's shape already: no marshmallow dump (every page asks).
    return jsonify(answer)
