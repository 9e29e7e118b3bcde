"""``POST /v1/events``: one event, or ``{"events": [...]}`` of up to 1,000, all or nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import ValidationError

from recsvc.clock import utc
from recsvc.core.events import new_event_id
from recsvc.schemas.common import RETRY_AFTER_HEADER, ApiErrorSchema
from recsvc.schemas.events import EventsAcceptedSchema, EventSchema, to_record
from recsvc.store.events import StreamFull, TooMuchContention
from recsvc.web.errors import ApiError, unavailable
from recsvc.web.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from recsvc.web.services import services

blp = Blueprint("events", __name__, url_prefix="/v1", description="Storefront events in.")

MAX_ERRORS_SHOWN = 100

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
@blp.alt_response(413, schema=ApiErrorSchema, description="Body larger than the limit.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid events; nothing was written.")
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
    """
    svc = services()
    events = _events_from_body(_json_body(), svc.settings.max_batch_events)
    received_at = utc(svc.clock)
    valid = _validate(events, received_at)
    now = svc.clock.now()
    records = [to_record(event, new_event_id(now), received_at) for event in valid]
    try:
        svc.events.write(records)
    except (StreamFull, TooMuchContention) as error:
        EVENTS_REJECTED.labels(type(error).__name__).inc()
        raise unavailable("The event queue is busy; retry later.") from error
    for record in records:
        EVENTS_ACCEPTED.labels(record["type"]).inc()
    return {"accepted": len(records), "ids": [record["id"] for record in records]}


def _json_body() -> Any:
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH raises 413 here
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", f"Body is not valid JSON: {error}") from error


def _no_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON has not: refuse them, so that what
    we store stays JSON that every reader (exporter, training job) can parse."""
    raise ValueError(f"{name} is not a JSON value")


def _events_from_body(body: Any, limit: int) -> list[Any]:
    if isinstance(body, dict) and "events" in body:
        extra = sorted(set(body) - {"events"})
        if extra:
            raise _invalid([{"index": None, "field": extra[0], "reason": "Unknown field."}])
        events = body["events"]
        if not isinstance(events, list) or not events:
            raise _invalid(
                [{"index": None, "field": "events", "reason": "Must be a non-empty list."}]
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
    raise _invalid([{"index": None, "field": None, "reason": "Body must be a JSON object."}])


def _validate(events: list[Any], received_at) -> list[dict[str, Any]]:
    settings = services().settings
    schema = EventSchema(
        now=received_at,
        max_future=timedelta(seconds=settings.max_future_seconds),
        max_properties=settings.max_properties,
        max_properties_bytes=settings.max_properties_bytes,
    )
    valid, errors = [], []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append({"index": index, "field": None, "reason": "Must be a JSON object."})
            continue
        try:
            valid.append(schema.load(event))
        except ValidationError as error:
            errors.extend(_flatten(index, error.messages))
    if errors:
        EVENTS_REJECTED.labels("validation").inc()
        raise _invalid(errors, len({e["index"] for e in errors}), len(events))
    return valid


def _flatten(index: int, messages: Any, prefix: str = "") -> list[dict[str, Any]]:
    """marshmallow's nested messages as flat ``{"index", "field", "reason"}`` entries."""
    if isinstance(messages, dict):
        found = []
        for name, value in messages.items():
            field = name if name != "_schema" else None
            path = f"{prefix}.{field}" if prefix and field else (field or prefix or None)
            found.extend(_flatten(index, value, path or ""))
        return found
    reasons = messages if isinstance(messages, list) else [messages]
    return [{"index": index, "field": prefix or None, "reason": str(r)} for r in reasons]


def _invalid(errors: list[dict[str, Any]], bad: int = 1, total: int = 1) -> ApiError:
    message = f"{bad} of {total} events invalid; nothing was written."
    details = {"errors": errors[:MAX_ERRORS_SHOWN], "invalid_events": bad}
    return ApiError(422, "validation_error", message, details)
