"""``GET /v1/analytics/funnel``: unique visitors per funnel step, with drop-offs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from marshmallow import RAISE

from recsvc.api.blueprint import Blueprint
from recsvc.clock import utc
from recsvc.core.funnel import funnel_table
from recsvc.schemas.analytics import FunnelQuerySchema, FunnelSchema
from recsvc.schemas.common import RATE_LIMITED, REDIS_UNAVAILABLE, ApiErrorSchema
from recsvc.store.funnel import HLL_STANDARD_ERROR
from recsvc.web.errors import ApiError
from recsvc.web.services import services

blp = Blueprint("analytics", __name__, url_prefix="/v1/analytics", description="Journey analytics.")


@blp.route("/funnel")
# unknown=RAISE as the schema says: webargs would otherwise drop unknown query parameters,
# and a misspelt filter would silently count everybody.
@blp.arguments(FunnelQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, FunnelSchema)
@blp.alt_response(403, schema=ApiErrorSchema, description="Needs an analyst, server or admin key.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid filter.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
@blp.alt_response(429, **RATE_LIMITED)
def get_funnel(
    start=None, end=None, source: str | None = None, visitor_type: str | None = None
) -> dict[str, Any]:
    """The web funnel between two UTC days (inclusive): unique visitors reaching each step
    (a visitor reaching a later step counts for the earlier ones that day), conversion from
    the previous step and drop-off, by first-touch source and new/returning visitor.
    Analytics need an analyst, server or admin key (a public key: 403)."""
    svc = services()
    start, end = day_range(start, end)
    counts = svc.funnel.counts(start, end, source, visitor_type)
    return {
        "start": start,
        "end": end,
        "source": source,
        "visitor_type": visitor_type,
        "steps": funnel_table(counts),
        "standard_error": HLL_STANDARD_ERROR,
    }


def day_range(start: date | None, end: date | None) -> tuple[date, date]:
    """The UTC days an analytics query covers: ``end`` defaults to today, ``start`` to
    ``funnel_default_days`` back from ``end``; a 422 when reversed or longer than
    ``funnel_max_days``."""
    svc = services()
    end = end or utc(svc.clock).date()
    if start is None:
        # Clamped: going back from the first days of year 1 would overflow.
        back = min(svc.settings.funnel_default_days - 1, (end - date.min).days)
        start = end - timedelta(days=back)
    if start > end:  # the schema checks this only when both are given
        raise _invalid_range("Invalid date range.", "Must not be after end.")
    if (end - start).days + 1 > svc.settings.funnel_max_days:
        raise _invalid_range(
            "Date range too long.", f"At most {svc.settings.funnel_max_days} days."
        )
    return start, end


def _invalid_range(message: str, reason: str) -> ApiError:
    return ApiError(
        422, "validation_error", message, {"errors": [{"field": "start", "reason": reason}]}
    )
