"""``GET /v1/analytics/funnel``: unique visitors per funnel step, with drop-offs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_smorest import Blueprint

from recsvc.clock import utc
from recsvc.core.funnel import funnel_table
from recsvc.schemas.analytics import FunnelQuerySchema, FunnelSchema
from recsvc.schemas.common import ApiErrorSchema
from recsvc.store.funnel import HLL_STANDARD_ERROR
from recsvc.web.errors import ApiError
from recsvc.web.services import services

blp = Blueprint("analytics", __name__, url_prefix="/v1/analytics", description="Journey analytics.")


@blp.route("/funnel")
@blp.arguments(FunnelQuerySchema, location="query", as_kwargs=True)
@blp.response(200, FunnelSchema)
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid filter.")
def get_funnel(
    start=None, end=None, source: str | None = None, visitor_type: str | None = None
) -> dict[str, Any]:
    """The web funnel between two UTC days (inclusive): unique visitors reaching each step
    (a visitor reaching a later step counts for the earlier ones that day), conversion from
    the previous step and drop-off, by first-touch source and new/returning visitor."""
    svc = services()
    end = end or utc(svc.clock).date()
    start = start or end - timedelta(days=svc.settings.funnel_default_days - 1)
    if (end - start).days + 1 > svc.settings.funnel_max_days:
        raise ApiError(
            422,
            "validation_error",
            "Date range too long.",
            {
                "errors": [
                    {"field": "start", "reason": f"At most {svc.settings.funnel_max_days} days."}
                ]
            },
        )
    counts = svc.funnel.counts(start, end, source, visitor_type)
    return {
        "start": start,
        "end": end,
        "source": source,
        "visitor_type": visitor_type,
        "steps": funnel_table(counts),
        "standard_error": HLL_STANDARD_ERROR,
    }
