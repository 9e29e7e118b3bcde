"""Similar items and cart add-ons: queries, bodies and answers."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from recsvc.schemas.common import Id, ItemId, StrictInteger
from recsvc.schemas.recommendations import ItemFilterQuerySchema, RecommendedItemSchema

MAX_CART_ITEMS = 100
MAX_ADDONS = 50
CART_STRATEGIES = ["cart", "popular"]

FALLBACK = fields.String(
    allow_none=True,
    metadata={"description": '"popular" when no model is loaded yet (the list is then empty).'},
)


class SimilarQuerySchema(ItemFilterQuerySchema):
    """``n``, ``category``, ``exclude`` and ``in_stock``, as for recommendations."""


class SimilarItemsSchema(Schema):
    item_id = fields.String(required=True, metadata={"description": "The item asked about."})
    items = fields.List(
        fields.Nested(RecommendedItemSchema),
        required=True,
        metadata={"description": "Most similar first; never the item itself."},
    )
    model_version = fields.String(allow_none=True)
    fallback = FALLBACK


class CartRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    items = fields.List(
        ItemId(),
        required=True,
        validate=validate.Length(min=1, max=MAX_CART_ITEMS),
        metadata={"description": "Item ids in the cart; ids the model does not know are ignored."},
    )
    visitor_id = Id(
        metadata={"description": "Whose cart: what this visitor bought is left out too."}
    )
    n = StrictInteger(load_default=10, validate=validate.Range(min=1, max=MAX_ADDONS))


class CartAddOnsSchema(Schema):
    items = fields.List(fields.Nested(RecommendedItemSchema), required=True)
    strategy = fields.String(
        metadata={
            "enum": CART_STRATEGIES,
            "description": '"cart" from the cart\'s items; "popular" when the model knows '
            "none of them.",
        }
    )
    model_version = fields.String(allow_none=True)
    fallback = FALLBACK
