"""Funnel query and answer."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from recsvc.core.events import SOURCES
from recsvc.core.funnel import FUNNEL_STEPS, UNKNOWN_SOURCE, VISITOR_TYPES


class DateRangeQuerySchema(Schema):
    """A range of UTC days, as every analytics query takes it."""

    class Meta:
        unknown = RAISE

    start = fields.Date(
        metadata={"description": "First UTC day (YYYY-MM-DD); default 30 days ago."}
    )
    end = fields.Date(metadata={"description": "Last UTC day, inclusive; default today."})

    @validates_schema
    def _ordered(self, data, **_):
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("Must not be after end.", "start")


class FunnelQuerySchema(DateRangeQuerySchema):
    source = fields.String(
        validate=validate.OneOf([*SOURCES, UNKNOWN_SOURCE]),
        metadata={"description": "First-touch source."},
    )
    visitor_type = fields.String(validate=validate.OneOf(VISITOR_TYPES))


class FunnelStepSchema(Schema):
    step = fields.String(metadata={"enum": list(FUNNEL_STEPS)})
    visitors = fields.Integer(metadata={"description": "Unique visitors who reached the step."})
    conversion = fields.Float(metadata={"description": "visitors / previous step's visitors"})
    drop_off = fields.Float(metadata={"description": "1 - conversion"})
    dropped = fields.Integer(metadata={"description": "Visitors lost since the previous step."})
    overall = fields.Float(metadata={"description": "visitors / landing visitors"})


class FunnelSchema(Schema):
    start = fields.Date()
    end = fields.Date()
    source = fields.String(allow_none=True)
    visitor_type = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(FunnelStepSchema))
    standard_error = fields.Float(
        metadata={"description": "Relative standard error of each count (HyperLogLog)."}
    )
