"""Catalog items: what an admin upserts and what the storefront reads back."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from recsvc.schemas.common import ItemId, StrictNumber

MAX_BATCH_ITEMS = 1000
MAX_CATEGORY = 128
MAX_TITLE = 512
MAX_URL = 2048


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``: no ``"yes"``, no ``1``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


def _url(**kwargs: Any) -> fields.Url:
    return fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=MAX_URL),
        allow_none=True,
        **kwargs,
    )


class CatalogItemSchema(Schema):
    """One catalog item. In an upsert every field but ``item_id`` is optional: fields sent
    replace the stored ones, fields left out are kept, a field sent as ``null`` is
    removed."""

    class Meta:
        unknown = RAISE

    item_id = ItemId(required=True, metadata={"example": "sku-1"})
    category = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_CATEGORY),
        metadata={"example": "shoes", "description": "Used by the recommendation filters."},
    )
    price = StrictNumber(
        allow_none=True, validate=validate.Range(min=0, max=1e9), metadata={"example": 59.9}
    )
    in_stock = StrictBoolean(allow_none=True, metadata={"example": True})
    title = fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_TITLE),
        metadata={"example": "Trail running shoe"},
    )
    url = _url(metadata={"example": "https://shop.example.com/p/sku-1"})
    image_url = _url(metadata={"example": "https://cdn.example.com/sku-1.jpg"})


class CatalogUpsertSchema(Schema):
    """For the OpenAPI document: the upsert body. Validation goes item by item."""

    items = fields.List(
        fields.Nested(CatalogItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH_ITEMS),
    )


class CatalogUpsertedSchema(Schema):
    upserted = fields.Integer(
        required=True, metadata={"example": 2, "description": "Items in the request."}
    )
    changed = fields.Integer(
        required=True,
        metadata={
            "example": 1,
            "description": "Distinct items whose stored fields changed (new ones included).",
        },
    )
    version = fields.Integer(
        required=True,
        metadata={"example": 17, "description": "The catalog's change counter afterwards."},
    )


class ItemDetailsSchema(Schema):
    """A stored item: the fields that were set."""

    item_id = fields.String(required=True, metadata={"example": "sku-1"})
    category = fields.String(metadata={"example": "shoes"})
    price = fields.Float(metadata={"example": 59.9})
    in_stock = fields.Boolean(metadata={"example": True})
    title = fields.String(metadata={"example": "Trail running shoe"})
    url = fields.String(metadata={"example": "https://shop.example.com/p/sku-1"})
    image_url = fields.String(metadata={"example": "https://cdn.example.com/sku-1.jpg"})
