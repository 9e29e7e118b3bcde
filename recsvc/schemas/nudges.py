"""Abandoned-cart nudges: the storefront's answer, a sender's claim, the analytics."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from recsvc.core.events import NUDGE_CHANNELS, OFFSITE_NUDGE_CHANNELS
from recsvc.core.nudge_report import TOTAL
from recsvc.schemas.analytics import DateRangeQuerySchema
from recsvc.schemas.common import StrictInteger
from recsvc.schemas.recommendations import RecommendedItemSchema

# A claim's default size; the largest is the nudge_claim_max setting.
DEFAULT_CLAIM = 100
NUDGE_KINDS = ["abandoned_cart"]
DATE_TIME = {"format": "date-time"}


def _date_time(description: str, **options) -> fields.String:
    return fields.String(metadata={**DATE_TIME, "description": description}, **options)


class NudgeCartLineSchema(Schema):
    item_id = fields.String(required=True, metadata={"example": "sku-1"})
    quantity = fields.Integer(required=True, metadata={"example": 2})
    price = fields.Float(
        allow_none=True,
        metadata={"description": "The price the item was added at, else the catalog's."},
    )
    title = fields.String(metadata={"example": "Red shoes"})
    category = fields.String()
    in_stock = fields.Boolean()
    url = fields.String()
    image_url = fields.String()


class NudgeCartSchema(Schema):
    items = fields.List(fields.Nested(NudgeCartLineSchema), required=True)
    quantity = fields.Integer(required=True, metadata={"example": 2})
    value = fields.Float(required=True, metadata={"example": 39.8})


class NudgeSchema(Schema):
    id = fields.String(
        required=True,
        metadata={
            "description": "<owner>|<channel>|<cart changed, epoch ms>: pass it back as "
            "properties.nudge_id of nudge_sent, nudge_impression and nudge_click.",
            "example": "v:v-1|onsite|1773144000000",
        },
    )
    kind = fields.String(required=True, metadata={"enum": NUDGE_KINDS})
    channel = fields.String(required=True, metadata={"enum": list(NUDGE_CHANNELS)})
    owner = fields.String(
        metadata={"description": "The cart owner: u:<user_id> or v:<visitor_id>."}
    )
    visitor_id = fields.String(
        allow_none=True,
        metadata={"description": "For a customer, the visitor id they were last seen with."},
    )
    user_id = fields.String(allow_none=True)
    abandoned_at = _date_time("When the cart counted as abandoned.", required=True)
    cart = fields.Nested(NudgeCartSchema, required=True)
    message = fields.String(required=True, metadata={"example": "Red shoes is still in your cart."})
    recommendations = fields.List(
        fields.Nested(RecommendedItemSchema),
        metadata={"description": "Onsite only: up to 3 add-ons for the cart, never in it."},
    )


class VisitorNudgesSchema(Schema):
    nudges = fields.List(fields.Nested(NudgeSchema), required=True)
    fallback = fields.String(
        allow_none=True,
        metadata={
            "enum": ["unavailable"],
            "description": '"unavailable" when Redis could not be read: no nudge this time.',
        },
    )


class ClaimRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    channel = fields.String(
        required=True,
        validate=validate.OneOf(OFFSITE_NUDGE_CHANNELS),
        metadata={"enum": list(OFFSITE_NUDGE_CHANNELS), "example": "email"},
    )
    limit = StrictInteger(
        load_default=DEFAULT_CLAIM,
        validate=validate.Range(min=1),
        metadata={
            "description": "Most nudges to claim; at most the nudge_claim_max setting "
            f"(500 by default). Default {DEFAULT_CLAIM}.",
            "example": 50,
        },
    )


class ClaimedNudgesSchema(Schema):
    nudges = fields.List(
        fields.Nested(NudgeSchema),
        required=True,
        metadata={
            "description": "Carts claimed by this call, oldest first: no other call gets them."
        },
    )
    quiet_until = _date_time(
        "Within quiet hours: when claims may start again (nothing was claimed).",
        allow_none=True,
    )


class NudgeReportQuerySchema(DateRangeQuerySchema):
    channel = fields.String(
        validate=validate.OneOf(NUDGE_CHANNELS), metadata={"enum": list(NUDGE_CHANNELS)}
    )


def _rate(description: str) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description})


class NudgeChannelReportSchema(Schema):
    channel = fields.String(metadata={"enum": [*NUDGE_CHANNELS, TOTAL]})
    eligible = fields.Integer(metadata={"description": "Abandoned carts the rule considered."})
    held_out = fields.Integer(metadata={"description": "Of those, held out: never nudged."})
    claimed = fields.Integer(metadata={"description": "Claimed by a sender (off-site)."})
    sent = fields.Integer(metadata={"description": "Sent or shown, once per cart."})
    clicked = fields.Integer()
    recovered = fields.Integer(
        metadata={"description": "Nudged carts bought from within the attribution window."}
    )
    recovered_value = fields.Float()
    recovery_rate = _rate("recovered / sent")
    holdout_recovered = fields.Integer(
        metadata={"description": "Held-out carts bought from within the window."}
    )
    holdout_recovered_value = fields.Float()
    holdout_recovery_rate = _rate("holdout_recovered / held_out")
    incremental_recoveries = _rate("recovered - sent × holdout_recovery_rate")
    lift = _rate("recovery_rate / holdout_recovery_rate - 1; null when undefined")


class NudgeReportSchema(Schema):
    start = fields.Date()
    end = fields.Date()
    channel = fields.String(allow_none=True)
    channels = fields.List(fields.Nested(NudgeChannelReportSchema), required=True)
    totals = fields.Nested(
        NudgeChannelReportSchema,
        required=True,
        metadata={"description": 'The channels above together (channel "all").'},
    )
