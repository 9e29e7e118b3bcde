"""The real-time profile as the API shows it."""

from __future__ import annotations

from marshmallow import Schema, fields

from recsvc.core.journey import SEGMENTS, STAGES


class TouchSchema(Schema):
    source = fields.String()
    at = fields.String(metadata={"format": "date-time"})


class StageChangeSchema(Schema):
    stage = fields.String(metadata={"enum": list(STAGES)})
    at = fields.String(metadata={"format": "date-time"})
    # "from" is a Python keyword; data_key keeps the JSON name.
    from_stage = fields.String(allow_none=True, data_key="from", attribute="from")


class SegmentChangeSchema(Schema):
    segment = fields.String(metadata={"enum": list(SEGMENTS)})
    action = fields.String(metadata={"enum": ["enter", "leave"]})
    at = fields.String(metadata={"format": "date-time"})


class RecentItemSchema(Schema):
    item_id = fields.String()
    type = fields.String(metadata={"description": "The latest event type on the item."})
    at = fields.String(metadata={"format": "date-time"})
    touches = fields.Integer(
        metadata={"description": "Events on the item since it entered the recent items."}
    )


class CartLineSchema(Schema):
    item_id = fields.String()
    quantity = fields.Integer()
    price = fields.Float(allow_none=True)


class CartSchema(Schema):
    items = fields.List(fields.Nested(CartLineSchema))
    quantity = fields.Integer()
    value = fields.Float()
    updated_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class PurchaseLineSchema(CartLineSchema):
    at = fields.String(metadata={"format": "date-time"})


class PurchasesSchema(Schema):
    count = fields.Integer(metadata={"description": "Orders."})
    value = fields.Float()
    items = fields.List(fields.Nested(PurchaseLineSchema))
    last_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class ProfileSchema(Schema):
    visitor_id = fields.String(required=True)
    user_id = fields.String(allow_none=True)
    first_seen = fields.String(metadata={"format": "date-time"})
    last_seen = fields.String(metadata={"format": "date-time"})
    visits = fields.Integer(metadata={"description": "A visit ends after 30 idle minutes."})
    events = fields.Integer()
    event_counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    first_touch = fields.Nested(TouchSchema, allow_none=True)
    last_touch = fields.Nested(TouchSchema, allow_none=True)
    sources = fields.Dict(keys=fields.String(), values=fields.Integer())
    visitor_type = fields.String(metadata={"enum": ["new", "returning"]})
    stage = fields.String(metadata={"enum": list(STAGES)})
    stage_history = fields.List(fields.Nested(StageChangeSchema))
    segments = fields.List(fields.String(metadata={"enum": list(SEGMENTS)}))
    segment_history = fields.List(fields.Nested(SegmentChangeSchema))
    recent_items = fields.List(fields.Nested(RecentItemSchema))
    cart = fields.Nested(CartSchema)
    purchases = fields.Nested(PurchasesSchema)
