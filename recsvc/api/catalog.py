"""The item catalog: ``PUT /v1/admin/catalog/items`` (batch upsert, all or nothing),
``DELETE /v1/admin/catalog/items/<item_id>`` (admin key) and ``GET /v1/items/<item_id>``
(storefront)."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import ValidationError

from recsvc.core.events import ID_PATTERN
from recsvc.schemas.catalog import (
    MAX_BATCH_ITEMS,
    CatalogItemSchema,
    CatalogUpsertedSchema,
    ItemDetailsSchema,
)
from recsvc.schemas.common import ID_RULE, RETRY_AFTER_HEADER, ApiErrorSchema, is_valid_id
from recsvc.store.events import TooMuchContention
from recsvc.web.errors import ApiError, unavailable
from recsvc.web.services import services

admin_blp = Blueprint(
    "catalog",
    __name__,
    url_prefix="/v1/admin/catalog",
    description="The item catalog: upsert and delete items (admin key).",
)
items_blp = Blueprint(
    "catalog_items", __name__, url_prefix="/v1/items", description="Catalog items."
)

MAX_ERRORS_SHOWN = 100
ITEM_SCHEMA = CatalogItemSchema()

# Ids may contain "/" (ID_PATTERN), hence the path converter, as for visitors. Werkzeug
# prefers a rule with more static parts, so ``/v1/items/<id>/similar`` still routes there.
ITEM_ID_PARAMETER = {
    "in": "path",
    "name": "item_id",
    "required": True,
    "description": f"The item id: {ID_RULE}.",
    "schema": {"type": "string", "pattern": ID_PATTERN.pattern},
}

UNAVAILABLE = {
    "schema": ApiErrorSchema,
    "description": "Redis unreachable: retry later.",
    "headers": RETRY_AFTER_HEADER,
}

REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/CatalogUpsert"},
            "examples": {
                "new": {
                    "value": {
                        "items": [
                            {
                                "item_id": "sku-1",
                                "category": "shoes",
                                "price": 59.9,
                                "in_stock": True,
                                "title": "Trail running shoe",
                                "url": "https://shop.example.com/p/sku-1",
                                "image_url": "https://cdn.example.com/sku-1.jpg",
                            },
                            {"item_id": "sku-2", "category": "socks", "price": 4.5},
                        ]
                    }
                },
                "out_of_stock": {
                    "summary": "Change one field; the others are kept.",
                    "value": {"items": [{"item_id": "sku-1", "in_stock": False}]},
                },
                "remove_a_field": {
                    "summary": "null removes a stored field.",
                    "value": {"items": [{"item_id": "sku-2", "image_url": None}]},
                },
            },
        }
    },
}


@admin_blp.route("/items", methods=["PUT"])
@admin_blp.doc(requestBody=REQUEST_BODY)
@admin_blp.response(200, CatalogUpsertedSchema)
@admin_blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@admin_blp.alt_response(413, schema=ApiErrorSchema, description="Body larger than the limit.")
@admin_blp.alt_response(
    422, schema=ApiErrorSchema, description="Invalid items; nothing was written."
)
@admin_blp.alt_response(503, **UNAVAILABLE)
def put_items() -> dict[str, Any]:
    """Upsert up to 1,000 items.

    Each item is merged into the stored one: fields sent replace, fields left out are kept,
    a field sent as null is removed. All or nothing: if any item is invalid the answer is
    422 naming each bad item's index, field and reason, and nothing is written. The
    catalog's version counter moves when at least one item changed.
    """
    items = _validate(_items_from_body(_json_body()))
    try:
        changed, version = services().catalog.upsert(items)
    except TooMuchContention as error:
        raise unavailable("The catalog is busy; retry later.") from error
    return {"upserted": len(items), "changed": changed, "version": version}


@admin_blp.route("/items/<path:item_id>", methods=["DELETE"], parameters=[ITEM_ID_PARAMETER])
@admin_blp.response(204)
@admin_blp.alt_response(404, schema=ApiErrorSchema, description="Unknown item.")
@admin_blp.alt_response(422, schema=ApiErrorSchema, description="Invalid item id.")
@admin_blp.alt_response(503, **UNAVAILABLE)
def delete_item(item_id: str) -> None:
    """Remove an item from the catalog."""
    if not services().catalog.delete(checked_item_id(item_id)):
        raise _unknown(item_id)


@items_blp.route("/<path:item_id>", parameters=[ITEM_ID_PARAMETER])
@items_blp.response(200, ItemDetailsSchema)
@items_blp.alt_response(404, schema=ApiErrorSchema, description="Unknown item.")
@items_blp.alt_response(422, schema=ApiErrorSchema, description="Invalid item id.")
@items_blp.alt_response(503, **UNAVAILABLE)
def get_item(item_id: str) -> dict[str, Any]:
    """Get a catalog item.

    The fields that were set; fields never set (or removed) are absent.
    """
    item = services().catalog.get(checked_item_id(item_id))
    if item is None:
        raise _unknown(item_id)
    return item


def checked_item_id(item_id: str) -> str:
    if not is_valid_id(item_id):
        raise ApiError(
            422,
            "validation_error",
            "Invalid item id.",
            {"errors": [{"field": "item_id", "reason": f"Must be {ID_RULE}."}]},
        )
    return item_id


def _unknown(item_id: str) -> ApiError:
    return ApiError(404, "not_found", f"Unknown item {item_id!r}.")


def _json_body() -> Any:
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH raises 413 here
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", f"Body is not valid JSON: {error}") from error


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _items_from_body(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise _invalid([_error(None, None, "Body must be a JSON object.")])
    extra = sorted(set(body) - {"items"})
    if extra:
        raise _invalid([_error(None, name, "Unknown field.") for name in extra])
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise _invalid([_error(None, "items", "Must be a non-empty list.")])
    if len(items) > MAX_BATCH_ITEMS:
        raise ApiError(
            422,
            "too_many_items",
            f"At most {MAX_BATCH_ITEMS} items per request.",
            {
                "errors": [
                    _error(None, "items", f"{len(items)} items; the limit is {MAX_BATCH_ITEMS}.")
                ]
            },
        )
    return items


def _validate(items: list[Any]) -> list[dict[str, Any]]:
    valid, errors = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(_error(index, None, "Must be a JSON object."))
            continue
        try:
            valid.append(ITEM_SCHEMA.load(item))
        except ValidationError as error:
            errors.extend(_flatten(index, error.messages))
    if errors:
        raise _invalid(errors, len({e["index"] for e in errors}), len(items))
    return valid


def _error(index: int | None, field: str | None, reason: str) -> dict[str, Any]:
    return {"index": index, "field": field, "reason": reason}


def _flatten(index: int, messages: Any, prefix: str = "") -> list[dict[str, Any]]:
    """marshmallow's messages as flat ``{"index", "field", "reason"}`` entries."""
    if isinstance(messages, dict):
        found = []
        for name, value in messages.items():
            field = name if name != "_schema" else None
            path = f"{prefix}.{field}" if prefix and field else (field or prefix or None)
            found.extend(_flatten(index, value, path or ""))
        return found
    reasons = messages if isinstance(messages, list) else [messages]
    return [_error(index, prefix or None, str(reason)) for reason in reasons]


def _invalid(errors: list[dict[str, Any]], bad: int = 1, total: int = 1) -> ApiError:
    message = f"{bad} of {total} items invalid; nothing was written."
    details = {"errors": errors[:MAX_ERRORS_SHOWN], "invalid_items": bad}
    return ApiError(422, "validation_error", message, details)
