"""Recommendation queries and answers."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from recsvc.core.journey import STAGES

STRATEGIES = ["blend", "session", "foldin", "popular"]
EVIDENCE_PARTS = [
    "long_term",
    "session",
    "recent",
    "cart",
    "purchased",
    "history",
    "similar",
    "lists",
    "fold_in",
    "popular",
    "trending",
    "popular_in_category",
]


class ItemFilterQuerySchema(Schema):
    """How many items and which ones: shared by every endpoint that lists products."""

    class Meta:
        unknown = RAISE

    n = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    category = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={"description": "Only items of this category."},
    )
    exclude = fields.String(
        validate=validate.Length(max=4096),
        metadata={"description": "Comma-separated item ids never to return."},
    )
    in_stock = fields.Boolean(
        metadata={"description": "Only items in stock; default true when the catalog knows stock."}
    )


class RecommendationsQuerySchema(ItemFilterQuerySchema):
    exclude_seen = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Never return the visitor's own items (recently viewed, in the "
            "cart, bought): discovery only. By default they may come back, ranked by the "
            "evaluated blend (on RetailRocket they are what visitors most often cart)."
        },
    )
    diversity = fields.Float(
        validate=validate.Range(min=0.0, max=1.0),
        metadata={"description": "0 keeps the model's order; 1 spreads categories most."},
    )
    boost_category = fields.String(validate=validate.Length(min=1, max=128))
    boost = fields.Float(
        load_default=2.0,
        validate=validate.Range(min=1.0, max=100.0),
        metadata={"description": "Factor for boost_category's items."},
    )


class EvidenceSchema(Schema):
    part = fields.String(
        metadata={
            "enum": EVIDENCE_PARTS,
            "description": "The part of the strategy: long_term (the visitor's taste "
            "vector), session (their session, by the session model), recent (their own "
            "recent item), cart / purchased (in their cart, bought before), history "
            "(fold-in), similar, lists / fold_in (cart add-ons), popular, trending.",
        }
    )
    item_id = fields.String(
        metadata={"description": "The visitor's item behind this share, when there is one."}
    )
    share = fields.Float(metadata={"description": "Share of the score from this part and item."})


class RecommendedItemSchema(Schema):
    item_id = fields.String(required=True)
    score = fields.Float(allow_none=True)
    reason = fields.String(metadata={"example": "because you viewed sku-1"})
    evidence = fields.List(fields.Nested(EvidenceSchema))
    title = fields.String()
    category = fields.String()
    price = fields.Float()
    in_stock = fields.Boolean()
    url = fields.String()
    image_url = fields.String()


class RecommendationsSchema(Schema):
    items = fields.List(fields.Nested(RecommendedItemSchema), required=True)
    strategy = fields.String(metadata={"enum": STRATEGIES})
    model_version = fields.String(allow_none=True)
    fallback = fields.String(
        allow_none=True,
        metadata={
            "description": '"popular" when the answer comes from the worker\'s memory '
            "because Redis or the model was not available."
        },
    )
    stage = fields.String(allow_none=True, metadata={"enum": list(STAGES)})
