"""The item catalog: ``PUT /v1/admin/catalog/items`` (batch upsert, all or nothing),
``DELETE /v1/admin/catalog/items/<item_id>`` (admin key) and ``GET /v1/items/<item_id>``
(storefront)."""

from __future__ import annotations

from typing import Any

from recsvc.api.batches import batch_error, invalid_batch, read_json_body, validate_each
from recsvc.api.blueprint import Blueprint
from recsvc.core.events import ID_PATTERN
from recsvc.schemas.catalog import (
    MAX_BATCH_ITEMS,
    CatalogItemSchema,
    CatalogUpsertedSchema,
    ItemDetailsSchema,
)
from recsvc.schemas.common import (
    ID_RULE,
    RATE_LIMITED,
    RETRY_AFTER_HEADER,
    ApiErrorSchema,
    is_valid_id,
)
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
    items = _validate(_items_from_body(read_json_body()))
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
@items_blp.alt_response(429, **RATE_LIMITED)
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


def _items_from_body(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise invalid_batch("items", [batch_error(None, None, "Body must be a JSON object.")])
    extra = sorted(set(body) - {"items"})
    if extra:
        raise invalid_batch("items", [batch_error(None, name, "Unknown field.") for name in extra])
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise invalid_batch("items", [batch_error(None, "items", "Must be a non-empty list.")])
    if len(items) > MAX_BATCH_ITEMS:
        raise ApiError(
            422,
            "too_many_items",
            f"At most {MAX_BATCH_ITEMS} items per request.",
            {
                "errors": [
                    batch_error(
                        None, "items", f"{len(items)} items; the limit is {MAX_BATCH_ITEMS}."
                    )
                ]
            },
        )
    return items


def _validate(items: list[Any]) -> list[dict[str, Any]]:
    valid, errors = validate_each(items, ITEM_SCHEMA)
    if errors:
        raise invalid_batch("items", errors, len(items))
    return valid
