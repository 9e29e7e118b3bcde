"""Catalog fields for answer tiles (title, price, image, ...), without a read per request.

The worker holds each current-model item's tile fields (``CatalogView.tiles``, as fresh as
its last catalog poll); items the model does not know are read from Redis in one round
trip, behind the reader's breaker, and go without their fields when Redis cannot be read.
"""

from __future__ import annotations

from typing import Any

import orjson

from recsvc.serving.breaker import CircuitBreaker
from recsvc.serving.holder import ModelHolder
from recsvc.store.catalog import TILE_FIELDS, CatalogStore


class Tiles:
    def __init__(self, holder: ModelHolder, catalog: CatalogStore, breaker: CircuitBreaker) -> None:
        self.holder = holder
        self.catalog = catalog
        self.breaker = breaker

    def add(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``items`` (each with an ``item_id``), updated in place with their tile fields."""
        model = self.holder.current()
        missing = []
        for item in items:
            row = model.row_of.get(item["item_id"]) if model is not None else None
            if row is None or not model.catalog.tiles:
                missing.append(item)
            else:
                item.update(orjson.loads(model.catalog.tiles[row]))
        if missing:
            self.breaker.call(lambda: self._read(missing), None)
        return items

    def _read(self, items: list[dict[str, Any]]) -> None:
        catalog = self.catalog.get_many([item["item_id"] for item in items])
        for item in items:
            known = catalog.get(item["item_id"], {})
            item.update({name: known[name] for name in TILE_FIELDS if name in known})
