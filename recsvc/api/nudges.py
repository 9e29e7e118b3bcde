"""Abandoned-cart nudges: ``GET /v1/visitors/<visitor_id>/nudges`` (the storefront, every
page), ``POST /v1/nudges/claim`` (off-site senders) and ``GET /v1/analytics/nudges``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from marshmallow import RAISE

from recsvc.api.analytics import day_range
from recsvc.api.blueprint import Blueprint
from recsvc.api.visitors import VISITOR_ID_PARAMETER, checked_visitor_id
from recsvc.core.events import NUDGE_CHANNELS
from recsvc.core.nudge_report import nudge_report
from recsvc.schemas.common import (
    IDENTITY_MISMATCH,
    IDENTITY_REQUIRED,
    RATE_LIMITED,
    REDIS_UNAVAILABLE,
    ApiErrorSchema,
)
from recsvc.schemas.nudges import (
    ClaimedNudgesSchema,
    ClaimRequestSchema,
    NudgeReportQuerySchema,
    NudgeReportSchema,
    VisitorNudgesSchema,
)
from recsvc.serving.nudges import claimed_nudges, onsite_nudges
from recsvc.web.errors import ApiError
from recsvc.web.identity import disclosure_for
from recsvc.web.services import services

blp = Blueprint("nudges", __name__, url_prefix="/v1", description="Abandoned-cart nudges.")


@blp.route("/visitors/<path:visitor_id>/nudges", parameters=[VISITOR_ID_PARAMETER])
@blp.response(200, VisitorNudgesSchema)
@blp.alt_response(401, **IDENTITY_REQUIRED)
@blp.alt_response(403, **IDENTITY_MISMATCH)
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid visitor id.")
@blp.alt_response(429, **RATE_LIMITED)
def get_visitor_nudges(visitor_id: str) -> Response:
    """Nudges to show this visitor now.

    One abandoned-cart nudge when their cart (shared across a customer's devices) has
    items, was last changed at least ``cart_abandon_seconds`` ago and not bought from
    since, and they are not in the onsite rule's holdout: the cart with catalog fields, a
    message and up to 3 add-ons. An unknown visitor has no nudge (not a 404: the storefront
    asks on every page). Never fails for a valid id: when Redis cannot be read the list is
    empty with ``"fallback": "unavailable"``.

    A nudge shows the cart's lines, so with a public key the request must prove the
    visitor, as for the profile: an ``X-Identity-Token`` whose ``vid`` is this visitor id
    (401 without a valid one, 403 for another visitor, checked before anything is read).
    A logged-in customer's cart is shown only when the token's ``sub`` is that customer
    (a device the customer logged out of has no nudge).
    """
    svc = services()
    visitor_id = checked_visitor_id(visitor_id)
    disclosure = disclosure_for(visitor_id, required=True)
    answer = onsite_nudges(
        svc.reader,
        svc.holder,
        svc.tiles,
        svc.nudges,
        svc.settings,
        visitor_id,
        svc.clock.now(),
        disclosure,
    )
    # Already the documented shape: returned without marshmallow's dump (every page asks).
    return jsonify(answer)


@blp.route("/nudges/claim", methods=["POST"])
@blp.arguments(ClaimRequestSchema, example={"channel": "email", "limit": 50})
@blp.response(200, ClaimedNudgesSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@blp.alt_response(403, schema=ApiErrorSchema, description="Needs a sender or admin key.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid body.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
def post_claim(body: dict[str, Any]) -> dict[str, Any]:
    """Claim due abandoned-cart nudges for an off-site channel.

    Carts abandoned at least the channel's delay ago (``nudge_delay_<channel>_seconds``),
    oldest first, each claimed by one call only and once per cart: a cart changed since
    may be claimed again, within the owner's weekly cap (``nudge_cap_per_week``, all
    channels). Owners in the channel's holdout are never returned. During quiet hours
    nothing is claimed and ``quiet_until`` says when to come back. Report each nudge sent
    as a ``nudge_sent`` event with ``properties.channel`` (and ``properties.nudge_id``).
    """
    svc = services()
    if body["limit"] > svc.settings.nudge_claim_max:
        raise ApiError(
            422,
            "validation_error",
            "Invalid body.",
            {
                "errors": [
                    {
                        "location": "json",
                        "field": "limit",
                        "reason": f"At most {svc.settings.nudge_claim_max}.",
                    }
                ]
            },
        )
    return claimed_nudges(
        svc.tiles, svc.nudges, svc.settings, body["channel"], body["limit"], svc.clock.now()
    )


@blp.route("/analytics/nudges")
@blp.arguments(NudgeReportQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, NudgeReportSchema)
@blp.alt_response(403, schema=ApiErrorSchema, description="Needs an analyst, server or admin key.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid filter.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
@blp.alt_response(429, **RATE_LIMITED)
def get_nudge_report(start=None, end=None, channel: str | None = None) -> dict[str, Any]:
    """Nudge results per channel between two UTC days (inclusive): carts eligible, held
    out, claimed, nudges sent and clicked, recoveries (a purchase within
    ``nudge_attribution_days`` of the nudge) and their value, the same for the held-out
    carts, and what the nudges added: incremental recoveries and lift over the holdout.
    Counters count on the day they happened (a recovery on the purchase's day), and are
    kept ``analytics_retention_days``. Nudge revenue is analytics: an analyst, server or
    admin key (a public or sender key: 403)."""
    start, end = day_range(start, end)
    channels = [channel] if channel else list(NUDGE_CHANNELS)
    counts = services().nudges.counts(start, end, channels)
    return {"start": start, "end": end, "channel": channel, **nudge_report(counts, channels)}
