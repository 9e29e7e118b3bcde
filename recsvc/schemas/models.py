"""Model versions as the admin API shows them, and the requests that switch them."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields

from recsvc.schemas.common import Id

VERSION_EXAMPLE = "20260310-120000-als-1a2b3c4d"


class ModelVersionSchema(Schema):
    version = fields.String(required=True, metadata={"example": VERSION_EXAMPLE})
    created = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "When it was trained (ISO 8601 UTC).", "example": None},
    )
    model = fields.String(required=True, allow_none=True, metadata={"example": "als"})
    metrics = fields.Dict(
        required=True,
        metadata={
            "description": "Headline offline metrics per evaluated model (empty when the "
            "version was not evaluated).",
            "example": {"als": {"ndcg@10": 0.0412, "recall@20": 0.0833}},
        },
    )
    params = fields.Dict(
        required=True,
        metadata={"description": "Training parameters.", "example": {"factors": 64}},
    )
    current = fields.Boolean(required=True, metadata={"description": "Served now."})


class ModelListSchema(Schema):
    current = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The version served now; null before the first publish."},
    )
    versions = fields.List(
        fields.Nested(ModelVersionSchema),
        required=True,
        metadata={"description": "Published versions, newest first."},
    )


class MakeCurrentSchema(Schema):
    class Meta:
        unknown = RAISE

    version = Id(required=True, metadata={"example": VERSION_EXAMPLE})


class CurrentSchema(Schema):
    current = fields.String(required=True, metadata={"example": VERSION_EXAMPLE})
