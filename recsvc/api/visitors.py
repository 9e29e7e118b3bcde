"""``GET /v1/visitors/<visitor_id>/profile``: the real-time profile."""

from __future__ import annotations

from typing import Any

from recsvc.api.blueprint import Blueprint
from recsvc.core.events import ID_PATTERN
from recsvc.core.profile import browser_profile, show_profile
from recsvc.schemas.common import (
    ID_RULE,
    IDENTITY_MISMATCH,
    IDENTITY_REQUIRED,
    RATE_LIMITED,
    REDIS_UNAVAILABLE,
    ApiErrorSchema,
    is_valid_id,
)
from recsvc.schemas.profile import ProfileSchema
from recsvc.web.errors import ApiError
from recsvc.web.identity import disclosure_for
from recsvc.web.services import services

blp = Blueprint("visitors", __name__, url_prefix="/v1/visitors", description="Visitor profiles.")


def checked_visitor_id(visitor_id: str) -> str:
    if not is_valid_id(visitor_id):
        raise ApiError(
            422,
            "validation_error",
            "Invalid visitor id.",
            {"errors": [{"field": "visitor_id", "reason": f"Must be {ID_RULE}."}]},
        )
    return visitor_id


# Ids may contain "/" (ID_PATTERN), so the path converter: with the default one a visitor
# "shop/v-1" would be accepted by POST /v1/events and then be impossible to look up.
VISITOR_ID_PARAMETER = {
    "in": "path",
    "name": "visitor_id",
    "required": True,
    "description": f"The visitor's anonymous id: {ID_RULE}.",
    "schema": {"type": "string", "pattern": ID_PATTERN.pattern},
}


@blp.route("/<path:visitor_id>/profile", parameters=[VISITOR_ID_PARAMETER])
@blp.response(200, ProfileSchema)
@blp.alt_response(401, **IDENTITY_REQUIRED)
@blp.alt_response(403, **IDENTITY_MISMATCH)
@blp.alt_response(404, schema=ApiErrorSchema, description="Visitor never seen.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid visitor id.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
@blp.alt_response(429, **RATE_LIMITED)
def get_profile(visitor_id: str) -> dict[str, Any]:
    """The visitor's real-time profile: visits, touches, journey stage and its history,
    segments, recent items, cart and purchases (shared across a logged-in customer's
    devices).

    The full profile (``"view": "full"``) needs an analyst, sender, server or admin key.
    With a public key the request must prove the visitor: an ``X-Identity-Token`` whose
    ``vid`` is this visitor id (401 without a valid one, 403 for another visitor), and the
    answer is what the visitor's own browser may see (``"view": "browser"``): visits and
    recent items, and the cart and purchases when they are its own (an anonymous
    visitor's, or a customer's when the token's ``sub`` is that customer), never the
    store's labels (stage, segments, sources).
    """
    svc = services()
    visitor_id = checked_visitor_id(visitor_id)
    disclosure = disclosure_for(visitor_id, required=True)  # before the read
    loaded = svc.profiles.load(visitor_id)
    if loaded is None:
        raise ApiError(404, "not_found", f"Unknown visitor {visitor_id!r}.")
    visitor, shared = loaded
    profile = show_profile(visitor, shared, svc.clock.now(), svc.settings)
    if disclosure.labels:
        return {**profile, "view": "full"}
    return browser_profile(profile, disclosure.owns(visitor))
