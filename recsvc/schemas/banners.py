"""Banners: what an admin writes (validated here, rules included) and what a visitor gets.

The same ``BannerSchema`` loads a banner sent to ``/v1/admin/banners`` and each banner of
a ``recsvc backtest-rules --banners`` file, so a rule the API rejects is rejected there too.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from recsvc.core.events import SOURCES
from recsvc.core.journey import SEGMENTS, STAGES
from recsvc.core.targeting import DAYS, VISITOR_TYPES
from recsvc.schemas.catalog import MAX_CATEGORY, MAX_URL, StrictBoolean
from recsvc.schemas.common import Id, ItemId, StrictInteger, StrictNumber
from recsvc.schemas.events import Timestamp

MAX_LIST = 100
MAX_TEXT = 1000


def _one_of(choices: tuple[str, ...], example: list[str]) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(choices), metadata={"enum": list(choices)}),
        validate=validate.Length(min=1, max=len(choices)),
        metadata={"example": example},
    )


class EpochTimestamp(Timestamp):
    """ISO 8601 in, epoch seconds inside (what targeting compares with), ISO 8601 out."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        return super()._deserialize(value, attr, data, **kwargs).timestamp()


class BannerRulesSchema(Schema):
    """Targeting rules: every rule given must match; within a list, any value may."""

    class Meta:
        unknown = RAISE

    stages = _one_of(STAGES, ["consideration", "decision"])
    segments = _one_of(SEGMENTS, ["cart_abandoner"])
    sources = _one_of(SOURCES, ["google_ads"])
    visitor_type = fields.String(
        validate=validate.OneOf(VISITOR_TYPES), metadata={"enum": list(VISITOR_TYPES)}
    )
    has_cart = StrictBoolean(metadata={"example": True})
    cart_value_min = StrictNumber(validate=validate.Range(min=0, max=1e9))
    cart_value_max = StrictNumber(validate=validate.Range(min=0, max=1e9))
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_CATEGORY)),
        validate=validate.Length(min=1, max=MAX_LIST),
        metadata={"description": "The visitor's recent items include one of these."},
    )
    days = _one_of(DAYS, ["sat", "sun"])
    hours = fields.List(
        StrictInteger(validate=validate.Range(min=0, max=23)),
        validate=validate.Length(min=1, max=24),
        metadata={"example": [18, 19, 20], "description": "Store-local hours (0-23)."},
    )
    start = EpochTimestamp(metadata={"type": "string", "format": "date-time"})
    end = EpochTimestamp(metadata={"type": "string", "format": "date-time"})

    @validates_schema
    def _ranges_are_ordered(self, data: dict[str, Any], **_: Any) -> None:
        low, high = data.get("cart_value_min"), data.get("cart_value_max")
        if low is not None and high is not None and low > high:
            raise ValidationError("Must not exceed cart_value_max.", "cart_value_min")
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and start >= end:
            raise ValidationError("Must be before end.", "start")


_HTTP_URL = validate.URL(schemes={"http", "https"}, require_tld=False)


class Link(fields.String):
    """Where a banner points, as the storefront's page will use it (``href``, ``src``): a
    storefront-relative path (``/cart``, ``/p/sku-1?ref=banner``) or an http(s) URL.
    Anything else is refused: ``javascript:``, ``data:`` and every other scheme (they
    would run in, or replace, the storefront's page), a protocol-relative ``//host``
    (another site), and whitespace, control characters or backslashes (browsers strip or
    reinterpret them, so ``java\tscript:`` and ``/\\evil.com`` are not what they seem)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", _check_link)
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "A storefront-relative path (/cart) or an http(s) URL."
        )
        super().__init__(**kwargs)


def _check_link(value: str) -> None:
    if not 1 <= len(value) <= MAX_URL:
        raise ValidationError(f"Must be 1 to {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "\\" for c in value):
        raise ValidationError("No whitespace, control characters or backslashes.")
    if value.startswith("/"):
        if value.startswith("//"):
            raise ValidationError("A relative path starts with one slash (// is another site).")
        return
    try:
        _HTTP_URL(value)
    except ValidationError as error:
        raise ValidationError(
            "Must be a storefront-relative path (/cart) or an http(s) URL."
        ) from error


class BannerContentSchema(Schema):
    class Meta:
        unknown = RAISE

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(validate=validate.Length(max=MAX_TEXT))
    image_url = Link()
    link = Link()
    cta = fields.String(validate=validate.Length(min=1, max=60), metadata={"example": "Shop now"})


class PromotesSchema(Schema):
    """What the banner advertises: ranks banners of equal priority by the visitor's
    affinity to it."""

    class Meta:
        unknown = RAISE

    # Both always present once loaded: an absent "items" key would make marshmallow's dump
    # read the dict's own .items method.
    categories = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_CATEGORY)),
        validate=validate.Length(max=MAX_LIST),
        load_default=list,
    )
    items = fields.List(ItemId(), validate=validate.Length(max=MAX_LIST), load_default=list)


class ExperimentSchema(Schema):
    """Banners sharing an experiment ``id`` are its variants: each visitor sees one."""

    class Meta:
        unknown = RAISE

    id = Id(required=True, metadata={"example": "summer-copy"})
    variant = Id(required=True, metadata={"example": "b"})


class BannerSchema(Schema):
    """A banner as an admin writes it (``id`` optional on create: one is made)."""

    class Meta:
        unknown = RAISE
        ordered = True

    id = Id(metadata={"example": "b-summer"})
    placement = Id(required=True, metadata={"example": "home"})
    content = fields.Nested(BannerContentSchema, required=True)
    rules = fields.Nested(BannerRulesSchema, load_default=dict, dump_default=dict)
    priority = StrictInteger(
        load_default=0, validate=validate.Range(min=-1000, max=1000), metadata={"example": 10}
    )
    frequency_cap_per_day = StrictInteger(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "Impressions per visitor per store-local day; null: none."},
    )
    promotes = fields.Nested(PromotesSchema, load_default=lambda: {"categories": [], "items": []})
    experiment = fields.Nested(ExperimentSchema, allow_none=True, load_default=None)


class StoredBannerSchema(BannerSchema):
    """A banner as stored and returned: with its id and times (rule times in ISO 8601,
    as written)."""

    id = Id(required=True, metadata={"example": "b-summer"})
    created_at = fields.String(metadata={"format": "date-time"})
    updated_at = fields.String(metadata={"format": "date-time"})


class BannerListSchema(Schema):
    banners = fields.List(fields.Nested(StoredBannerSchema), required=True)


class VisitorBannersQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    placement = Id(metadata={"example": "home", "description": "Any placement when absent."})
    n = fields.Integer(load_default=1, validate=validate.Range(min=1, max=20))


class ShownBannerSchema(Schema):
    id = fields.String(required=True)
    placement = fields.String(required=True)
    content = fields.Nested(BannerContentSchema, required=True)
    priority = fields.Integer(required=True)
    experiment = fields.Nested(ExperimentSchema, allow_none=True)
    matched = fields.Dict(
        required=True,
        metadata={
            "description": "Each rule kind with the visitor's value that met it.",
            "example": {"stages": "decision", "cart_value_min": 120.0},
        },
    )
    affinity = fields.Float(
        required=True, metadata={"description": "The visitor's affinity to what it promotes."}
    )
    reason = fields.String(required=True)


class VisitorBannersSchema(Schema):
    banners = fields.List(fields.Nested(ShownBannerSchema), required=True)
    stage = fields.String(allow_none=True)
    segments = fields.List(fields.String())
    fallback = fields.String(
        allow_none=True,
        metadata={"description": "Set when the profile could not be read: targeted as new."},
    )
