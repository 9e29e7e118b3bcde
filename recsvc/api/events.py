"""``POST /v1/events``: one event, or ``{"events": [...]}`` of up to 1,000, all or nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from recsvc.api.batches import batch_error, invalid_batch, read_json_body, validate_each
from recsvc.api.blueprint import Blueprint
from recsvc.clock import utc
from recsvc.core.profile import CartLimitExceeded
from recsvc.schemas.common import RETRY_AFTER_HEADER, ApiErrorSchema
from recsvc.schemas.events import EventsAcceptedSchema, EventSchema, to_records
from recsvc.store.events import StreamFull, TooMuchContention
from recsvc.web.auth import Caller, current_caller
from recsvc.web.errors import ApiError, unavailable
from recsvc.web.identity import require_user_ids
from recsvc.web.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from recsvc.web.rate_limit import charge_events
from recsvc.web.services import Services, services

blp = Blueprint("events", __name__, url_prefix="/v1", description="Storefront events in.")


REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"$ref": "#/components/schemas/EventBatch"},
                ]
            },
            "examples": {
                "one": {
                    "value": {
                        "type": "product_view",
                        "visitor_id": "v-1",
                        "item_id": "sku-1",
                        "source": "google_ads",
                    }
                },
                "batch": {
                    "value": {
                        "events": [
                            {"type": "page_view", "visitor_id": "v-1", "source": "email"},
                            {
                                "type": "add_to_cart",
                                "visitor_id": "v-1",
                                "item_id": "sku-1",
                                "quantity": 1,
                                "price": 19.9,
                            },
                        ]
                    }
                },
            },
        }
    },
}


@blp.route("/events", methods=["POST"])
@blp.doc(requestBody=REQUEST_BODY)
@blp.response(202, EventsAcceptedSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@blp.alt_response(
    401,
    schema=ApiErrorSchema,
    description="No valid API key, or a user_id without a valid identity token "
    "(public and analyst keys); nothing was written.",
)
@blp.alt_response(
    403, schema=ApiErrorSchema, description="The identity token is another user's or visitor's."
)
@blp.alt_response(413, schema=ApiErrorSchema, description="Body larger than the limit.")
@blp.alt_response(
    422,
    schema=ApiErrorSchema,
    description="Invalid events (a timestamp outside the accepted window, a cart past its "
    "caps among them); nothing was written.",
)
@blp.alt_response(
    429,
    schema=ApiErrorSchema,
    description="Over the key's, the client address's or a visitor's rate limit; nothing "
    "was written.",
    headers=RETRY_AFTER_HEADER,
)
@blp.alt_response(
    503,
    schema=ApiErrorSchema,
    description="Redis unreachable: retry later.",
    headers=RETRY_AFTER_HEADER,
)
def post_events() -> dict[str, Any]:
    """Accept storefront events.

    The batch is all or nothing: if any event is invalid the answer is 422 naming each bad
    event's index, field and reason, and nothing is written. Accepted events get a server
    id, are in the Redis stream when this answers 202, and have updated the visitor's
    profile, cart and the funnel counters.

    With a public or analyst key an event may carry a ``user_id`` only when the request's
    ``X-Identity-Token`` (minted by the store's backend) proves that user (401 without a
    valid token, 403 for another user's); timestamps may lie at most
    ``public_event_max_age_seconds`` back (server keys: ``analytics_retention_days``) and
    a day ahead; events are rate limited per key, client address and visitor (429,
    ``Retry-After``).
    A cart holds at most ``cart_max_lines`` lines of at most ``cart_max_quantity`` (422).
    """
    svc = services()
    caller = current_caller()
    events = _events_from_body(read_json_body(), svc.settings.max_batch_events)
    received_at = utc(svc.clock)
    valid = _validate(events, received_at, caller)
    require_user_ids(caller, valid)
    # Redis failed the last writes: answer now rather than after a socket timeout, which
    # would hold a sync worker (and every request queued behind it) for a second a batch.
    if not svc.write_breaker.allow():
        EVENTS_REJECTED.labels("redis_unavailable").inc()
        raise unavailable()
    with svc.write_breaker.watching():
        charge_events(caller, valid)
        records = to_records(valid, received_at, svc.clock.now())
        _write(svc, records)
    for record in records:
        EVENTS_ACCEPTED.labels(record["type"]).inc()
    return {"accepted": len(records), "ids": [record["id"] for record in records]}


def _write(svc: Services, records: list[dict[str, Any]]) -> None:
    try:
        svc.events.write(records, svc.banners.existing(_banner_ids(records)))
    except (StreamFull, TooMuchContention) as error:
        EVENTS_REJECTED.labels(type(error).__name__).inc()
        raise unavailable("The event queue is busy; retry later.") from error
    except CartLimitExceeded as error:
        EVENTS_REJECTED.labels("cart_limit").inc()
        raise _cart_limit_error(error, records) from error


def _cart_limit_error(error: CartLimitExceeded, records: list[dict[str, Any]]) -> ApiError:
    """The 422 naming the event past a cart's caps. Nothing was written, unless another
    request changed that cart while this batch was being written, visitor by visitor
    (``EventWriter.write``): then the answer says how many of the batch's events (other
    visitors') were accepted, so the client does not send them again."""
    index = next(i for i, record in enumerate(records) if record["id"] == error.event_id)
    answer = invalid_batch("events", [batch_error(index, error.field, error.reason)], len(records))
    if error.committed:
        answer.message = (
            f"1 of {len(records)} events invalid; {error.committed} events of other visitors "
            "were accepted before the cart changed."
        )
        answer.details["accepted"] = error.committed
    return answer


def _banner_ids(records: list[dict[str, Any]]) -> set[str]:
    """The banners the batch's impressions name: only stored ones are counted."""
    return {
        record["properties"]["banner_id"]
        for record in records
        if record["type"] == "banner_impression" and "banner_id" in (record.get("properties") or {})
    }


def _events_from_body(body: Any, limit: int) -> list[Any]:
    if isinstance(body, dict) and "events" in body:
        extra = sorted(set(body) - {"events"})
        if extra:
            raise invalid_batch("events", [batch_error(None, extra[0], "Unknown field.")])
        events = body["events"]
        if not isinstance(events, list) or not events:
            raise invalid_batch(
                "events", [batch_error(None, "events", "Must be a non-empty list.")]
            )
        if len(events) > limit:
            raise ApiError(
                422,
                "too_many_events",
                f"At most {limit} events per request.",
                {
                    "errors": [
                        {
                            "index": None,
                            "field": "events",
                            "reason": f"{len(events)} events; the limit is {limit}.",
                        }
                    ]
                },
            )
        return events
    if isinstance(body, dict):
        return [body]
    raise invalid_batch("events", [batch_error(None, None, "Body must be a JSON object.")])


def _validate(events: list[Any], received_at: datetime, caller: Caller) -> list[dict[str, Any]]:
    settings = services().settings
    if caller.can("server"):
        max_age = timedelta(days=settings.analytics_retention_days)
    else:
        max_age = timedelta(seconds=settings.public_event_max_age_seconds)
    schema = EventSchema(
        now=received_at,
        max_future=timedelta(seconds=settings.max_future_seconds),
        max_age=max_age,
        max_properties=settings.max_properties,
        max_properties_bytes=settings.max_properties_bytes,
    )
    valid, errors = validate_each(events, schema, schema.quick_load)
    if errors:
        EVENTS_REJECTED.labels("validation").inc()
        raise invalid_batch("events", errors, len(events))
    return valid
