"""The event a storefront sends, and the answer to sending it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from recsvc.core.events import (
    CHANNELS,
    EVENT_TYPES,
    NUDGE_CHANNELS,
    NUDGE_EVENT_TYPES,
    OFFSITE_NUDGE_CHANNELS,
    PRODUCT_EVENT_TYPES,
    SOURCES,
    format_timestamp,
    new_event_ids,
    parse_timestamp,
)
from recsvc.schemas.common import ID_RULE, Id, ItemId, StrictInteger, StrictNumber, is_valid_id
from recsvc.settings import Settings

_SCALARS = (str, int, float, bool, type(None))
# A property value as the OpenAPI document describes it: a scalar or a list of scalars.
_SCALAR_DOC = {
    "anyOf": [{"type": "string", "nullable": True}, {"type": "number"}, {"type": "boolean"}]
}


# Bounds the schema declares and the quick path (EventSchema.quick_load) checks by hand.
QUANTITY_RANGE = (1, 10_000)
PRICE_RANGE = (0, 1e9)
PROPERTY_KEY_LENGTH = (1, 64)

# Event times are epoch seconds inside the profile; earlier ones are clock bugs.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


class Timestamp(fields.Field):
    """ISO 8601 date-time; without an offset it is taken as UTC. Normalised to UTC ``Z``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("Must be an ISO 8601 date-time string.")
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError) as error:
            # OverflowError: a valid ISO string whose UTC time falls outside years 1-9999,
            # such as "0001-01-01T00:00:00+01:00".
            raise ValidationError("Not a valid ISO 8601 date-time.") from error


class EventSchema(Schema):
    """One storefront event (DESIGN.md, "The customer journey, as data")."""

    class Meta:
        unknown = RAISE

    type = fields.String(
        required=True,
        validate=validate.OneOf(EVENT_TYPES),
        metadata={"example": "product_view", "enum": list(EVENT_TYPES)},
    )
    visitor_id = Id(required=True, metadata={"example": "v-8f14e45f"})
    user_id = Id(
        metadata={
            "description": "Logged-in customer id; stitches devices. With a public key, "
            "only when the request's X-Identity-Token proves this user (README, "
            '"Identity").'
        }
    )
    item_id = ItemId(metadata={"description": "Required for product events.", "example": "sku-1"})
    quantity = StrictInteger(validate=validate.Range(*QUANTITY_RANGE))
    price = StrictNumber(validate=validate.Range(*PRICE_RANGE), metadata={"example": 19.9})
    source = fields.String(validate=validate.OneOf(SOURCES), metadata={"enum": list(SOURCES)})
    channel = fields.String(validate=validate.OneOf(CHANNELS), metadata={"enum": list(CHANNELS)})
    session_id = Id()
    timestamp = Timestamp(
        metadata={
            "type": "string",
            "format": "date-time",
            "description": "When it happened; server time when absent. At most a day "
            "ahead; at most 3 days back with a public key (RECSVC_PUBLIC_EVENT_MAX_AGE_"
            "SECONDS), 400 days with a server key (RECSVC_ANALYTICS_RETENTION_DAYS).",
        }
    )
    properties = fields.Dict(
        keys=fields.String(validate=validate.Length(*PROPERTY_KEY_LENGTH)),
        metadata={
            "description": "A small object of scalars (or lists of scalars): at most 20 keys "
            "of 1-64 characters, at most 2 KiB as JSON.",
            "maxProperties": 20,
            "additionalProperties": {
                "anyOf": [_SCALAR_DOC, {"type": "array", "items": _SCALAR_DOC}]
            },
        },
    )

    def __init__(
        self,
        *,
        now: datetime | None = None,
        max_future: timedelta = timedelta(days=1),
        max_age: timedelta | None = None,
        max_properties: int = 20,
        max_properties_bytes: int = 2048,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.now = now
        self.max_future = max_future
        self.max_age = max_age
        self.max_properties = max_properties
        self.max_properties_bytes = max_properties_bytes

    def quick_load(self, value: dict[str, Any]) -> dict[str, Any] | None:
        """What :meth:`load` returns for ``value``, checked by hand, for the events a
        storefront sends on every page (no ``timestamp``, not a marketing event); None for
        anything else or anything invalid: the schema then decides, with its own errors.
        marshmallow's load was 15% of a batch's CPU (``loadtests/bench_ingest.py``);
        ``tests/schemas/test_event_schema.py`` holds the two equal on generated events."""
        kind = value.get("type")
        if type(kind) is not str or kind not in _QUICK_TYPES or "timestamp" in value:
            return None
        if not _is_id(value.get("visitor_id")):
            return None
        if kind in PRODUCT_EVENT_TYPES and "item_id" not in value:
            return None
        loaded: dict[str, Any] = {}
        for name in self.load_fields:  # the schema's order, as load gives them
            if name not in value:
                continue
            field = value[name]
            if name in ("type", "visitor_id"):
                loaded[name] = field
            elif name == "properties":
                if not self._quick_properties(field):
                    return None
                loaded[name] = dict(field)
            elif _check_field(name, field):
                loaded[name] = float(field) if name == "price" else field
            else:
                return None
        return loaded if len(loaded) == len(value) else None  # else: an unknown field

    def _quick_properties(self, value: Any) -> bool:
        """``properties``' own rules (an object, keys of ``PROPERTY_KEY_LENGTH``
        characters) and :meth:`_properties_problem`'s, as a yes or no."""
        if type(value) is not dict:
            return False
        shortest, longest = PROPERTY_KEY_LENGTH
        if not all(shortest <= len(key) <= longest for key in value):
            return False
        return self._properties_problem(value) is None

    @validates("timestamp")
    def _plausible_time(self, value: datetime, **_: Any) -> None:
        if value < EARLIEST:
            raise ValidationError("Lies before 1970-01-01T00:00:00Z.")
        now = self.now or datetime.now(UTC)
        if self.max_age is not None and value < now - self.max_age:
            raise ValidationError(
                f"Lies more than {int(self.max_age.total_seconds())} s in the past."
            )
        if value > now + self.max_future:
            raise ValidationError(
                f"Lies more than {int(self.max_future.total_seconds())} s in the future."
            )

    @validates("properties")
    def _small_properties(self, value: dict[str, Any], **_: Any) -> None:
        problem = self._properties_problem(value)
        if problem is not None:
            raise ValidationError(problem)

    def _properties_problem(self, value: dict[str, Any]) -> str | None:
        """What is wrong with a ``properties`` object of string keys, None if nothing."""
        if len(value) > self.max_properties:
            return f"At most {self.max_properties} properties."
        for key, item in value.items():
            items = item if isinstance(item, list) else [item]
            if not all(isinstance(x, _SCALARS) for x in items):
                return f"Property {key!r} must be a scalar or a list of scalars."
            if any(isinstance(x, float) and not math.isfinite(x) for x in items):
                # 1e400 parses as infinity, which has no JSON spelling to store it with.
                return f"Property {key!r} must hold finite numbers."
        if len(json.dumps(value)) > self.max_properties_bytes:
            return f"At most {self.max_properties_bytes} bytes of properties."
        return None

    @validates_schema
    def _product_events_name_item(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") in PRODUCT_EVENT_TYPES and not data.get("item_id"):
            raise ValidationError(f"Required for {data['type']} events.", "item_id")

    @validates_schema
    def _marketing_events_name_their_target(self, data: dict[str, Any], **_: Any) -> None:
        """Nudge events say their channel (a sender's ``nudge_sent`` must: its channel is
        what the analytics count it under); a banner id, when given, must be an id."""
        kind = data.get("type")
        properties = data.get("properties") or {}
        if kind in NUDGE_EVENT_TYPES:
            channels = OFFSITE_NUDGE_CHANNELS if kind == "nudge_sent" else NUDGE_CHANNELS
            channel = properties.get("channel", None if kind == "nudge_sent" else "onsite")
            if channel not in channels:
                raise ValidationError(
                    f"{kind} needs properties.channel, one of {', '.join(channels)}.",
                    "properties",
                )
        if kind in ("banner_impression", "banner_click") and "banner_id" in properties:
            banner_id = properties["banner_id"]
            if not (isinstance(banner_id, str) and is_valid_id(banner_id)):
                raise ValidationError(f"properties.banner_id must be {ID_RULE}.", "properties")


# What the quick path (EventSchema.quick_load) checks by hand: the events a storefront
# sends on every page. Timestamps (parsed, then checked against the accepted window) and
# the marketing events' own rules are the schema's alone.
_QUICK_TYPES = frozenset(EVENT_TYPES) - {*NUDGE_EVENT_TYPES, "banner_impression", "banner_click"}
_SOURCES, _CHANNELS = frozenset(SOURCES), frozenset(CHANNELS)


def _is_id(value: Any) -> bool:
    return type(value) is str and is_valid_id(value)


def _check_field(name: str, value: Any) -> bool:
    """Whether ``EventSchema`` would take ``value`` for the optional field ``name`` as it
    is (``price`` as its float)."""
    if name in ("user_id", "item_id", "session_id"):
        return _is_id(value)
    if name == "source":
        return type(value) is str and value in _SOURCES
    if name == "channel":
        return type(value) is str and value in _CHANNELS
    if name == "quantity":
        return type(value) is int and QUANTITY_RANGE[0] <= value <= QUANTITY_RANGE[1]
    if name == "price":  # NaN compares False
        return type(value) in (int, float) and PRICE_RANGE[0] <= value <= PRICE_RANGE[1]
    return False


def to_records(
    events: list[dict[str, Any]], received_at: datetime, now: float | None = None
) -> list[dict[str, Any]]:
    """The event records (``recsvc.core.events``) of a validated batch, each with a new
    id; the time it was received written once for the whole batch."""
    received = format_timestamp(received_at)
    records = []
    for event, event_id in zip(events, new_event_ids(len(events), now), strict=True):
        record: dict[str, Any] = {"id": event_id}
        record.update(event)
        moment = event.get("timestamp")
        record["timestamp"] = format_timestamp(moment) if moment else received
        record["received_at"] = received
        records.append(record)
    return records


def largest_event(settings: Settings) -> dict[str, Any]:
    """A valid event record as large as ``EventSchema`` allows under ``settings``: every id
    128 characters, the longest type, source and channel, and one property whose ASCII value
    fills ``max_properties_bytes`` (the schema measures properties as ``json.dumps`` writes
    them; one key stores the most, since the stream's compact JSON drops a space per key and
    value). Its stream entry is the most one accepted event costs the stream (README,
    "Bounded state")."""
    longest = "x" * 128
    key = "k" * 64
    room = settings.max_properties_bytes - len(json.dumps({key: ""}))
    moment = format_timestamp(datetime(2026, 1, 1, tzinfo=UTC))
    return {
        "id": "f" * 32,
        "type": max(EVENT_TYPES, key=len),
        "visitor_id": longest,
        "user_id": longest,
        "item_id": longest,
        "quantity": 10_000,
        "price": 999_999_999.99,
        "source": max(SOURCES, key=len),
        "channel": max(CHANNELS, key=len),
        "session_id": longest,
        "timestamp": moment,
        "received_at": moment,
        "properties": {key: "v" * room},
    }


# What the OpenAPI document adds to ``EventSchema`` at the schema level: product events name
# their item (``_product_events_name_item``), which field metadata cannot say.
EVENT_SCHEMA_RULES: dict[str, Any] = {
    "anyOf": [
        {"properties": {"type": {"not": {"enum": sorted(PRODUCT_EVENT_TYPES)}}}},
        {"required": ["item_id"]},
    ]
}


class EventBatchSchema(Schema):
    """For the OpenAPI document: a batch body. Validation goes event by event."""

    events = fields.List(
        fields.Nested(EventSchema), required=True, validate=validate.Length(min=1, max=1000)
    )


class EventsAcceptedSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"example": 1})
    ids = fields.List(fields.String(), required=True)
