"""Fields and schemas shared by several resources."""

from __future__ import annotations

import math
import numbers
from typing import Any

from marshmallow import Schema, ValidationError, fields

from recsvc.core.events import ID_PATTERN

ID_RULE = "1-128 characters: letters, digits and . _ : @ | = + / # ~ -"


def is_valid_id(value: str) -> bool:
    """True when the whole of ``value`` matches ``ID_PATTERN``. (``re.match`` would let a
    trailing newline through: ``$`` also matches just before one.)"""
    return ID_PATTERN.fullmatch(value) is not None


def _check_id(value: str) -> None:
    if not is_valid_id(value):
        raise ValidationError(f"Must be {ID_RULE}.")


class Id(fields.String):
    """An id that may become part of a Redis key: a string matching ``ID_PATTERN``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("validate", _check_id)
        kwargs.setdefault("metadata", {}).setdefault("pattern", ID_PATTERN.pattern)
        super().__init__(**kwargs)


class ItemId(Id):
    """An item id; storefronts often send integers, so an integer is taken as its string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


def item_id_property(self: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict:
    """apispec attribute function (``converter.add_attribute_function``): document an
    ``ItemId`` as what it accepts, a string id or an integer, so that the OpenAPI document
    does not call an integer item id invalid while the API takes it."""
    if not isinstance(field, ItemId):
        return {}
    string = {"type": ret.pop("type", "string"), "pattern": ret.pop("pattern", None)}
    return {"anyOf": [{k: v for k, v in string.items() if v}, {"type": "integer"}]}


class StrictInteger(fields.Integer):
    """An integer given as a JSON number: no strings, no booleans, no fractions."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValidationError("Must be an integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictNumber(fields.Float):
    """A finite JSON number: no strings, no booleans, no NaN or infinity."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValidationError("Must be a number.")
        if not math.isfinite(value):
            raise ValidationError("Must be a finite number.")
        return float(value)


class ApiErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict(metadata={"description": "What was wrong, field by field."})


# The header of every 503: Redis is unreachable, the client keeps its request and retries.
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


class ApiErrorSchema(Schema):
    """Every error the API answers: ``{"error": {"code", "message", "details"}}``."""

    error = fields.Nested(ApiErrorBodySchema, required=True)


# ``alt_response(503, **REDIS_UNAVAILABLE)``: how every endpoint that needs Redis documents
# its 503.
# Reads by a public or analyst key (recsvc.web.rate_limit).
RATE_LIMITED = {
    "schema": ApiErrorSchema,
    "description": "Public or analyst key: over the client address's or the visitor's rate "
    "limit for reads.",
    "headers": RETRY_AFTER_HEADER,
}
# The path visitor's identity token, on reads that reveal a visitor's data (profile,
# nudges): ``alt_response(401, **IDENTITY_REQUIRED)``, ``alt_response(403, **IDENTITY_MISMATCH)``.
IDENTITY_REQUIRED = {
    "schema": ApiErrorSchema,
    "description": "No valid API key; or, with a public key, no valid identity token.",
}
IDENTITY_MISMATCH = {
    "schema": ApiErrorSchema,
    "description": "Public key: the token proves another visitor.",
}
REDIS_UNAVAILABLE = {
    "schema": ApiErrorSchema,
    "description": "Redis unreachable.",
    "headers": RETRY_AFTER_HEADER,
}
