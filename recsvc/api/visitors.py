"""``GET /v1/visitors/<visitor_id>/profile``: the real-time profile."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from recsvc.core.events import ID_PATTERN
from recsvc.core.profile import show_profile
from recsvc.schemas.common import ID_RULE, ApiErrorSchema
from recsvc.schemas.profile import ProfileSchema
from recsvc.web.errors import ApiError
from recsvc.web.services import services

blp = Blueprint("visitors", __name__, url_prefix="/v1/visitors", description="Visitor profiles.")


def checked_visitor_id(visitor_id: str) -> str:
    if not ID_PATTERN.match(visitor_id):
        raise ApiError(
            422,
            "validation_error",
            "Invalid visitor id.",
            {"errors": [{"field": "visitor_id", "reason": f"Must be {ID_RULE}."}]},
        )
    return visitor_id


@blp.route("/<visitor_id>/profile")
@blp.response(200, ProfileSchema)
@blp.alt_response(404, schema=ApiErrorSchema, description="Visitor never seen.")
@blp.alt_response(503, schema=ApiErrorSchema, description="Redis unreachable.")
def get_profile(visitor_id: str) -> dict[str, Any]:
    """The visitor's real-time profile: visits, touches, journey stage and its history,
    segments, recent items, cart and purchases (shared across a logged-in customer's
    devices)."""
    svc = services()
    loaded = svc.profiles.load(checked_visitor_id(visitor_id))
    if loaded is None:
        raise ApiError(404, "not_found", f"Unknown visitor {visitor_id!r}.")
    visitor, shared = loaded
    return show_profile(visitor, shared, svc.clock.now(), svc.settings)
