"""The item catalog: what serving needs to know about a product beyond its vectors.

Layout: one HASH, ``<ns>:{catalog}:items``, field = item id, value = compact JSON of the
item's other fields (only those set), and one counter, ``<ns>:{catalog}:version``, in the
same slot. Why one hash rather than one key per item:

- memory: at 100,000 items of a typical size (title, two URLs, category, price, stock)
  the hash costs about 280 bytes an item against about 345 for a small hash per item
  (measured on Redis 7.0): no per-key object, key name and main-dictionary entry;
- reads: ``get_many`` is one HMGET, one command in one round trip whatever the number of
  ids, so decorating a page of recommendation tiles costs one call;
- iteration: ``all_items`` HSCANs this one key, where per-item keys would need a SCAN of
  the whole keyspace (millions of visitor profiles) to find the catalog;
- one hash tag: an upsert and the INCR of the version counter are one MULTI/EXEC, also
  on Redis Cluster (the whole catalog lives in one slot: fine at the 100k-item scale).

The version counter moves with every change (an upsert that changes at least one item,
a delete that deletes one) and never with a read or with an upsert that changes nothing,
so a worker caching arrays derived from the catalog (categories, stock flags) rebuilds
only when it really moved: ``snapshot()`` gives the items with the version read before
the scan, so a change landing mid-scan makes the next check rebuild again.

An upsert merges: fields sent replace stored ones, fields not sent are kept, a field sent
as ``null`` is removed (the JSON Merge Patch rule, RFC 7396).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import redis
from redis.exceptions import WatchError

from recsvc.keys import KeySpace
from recsvc.store.events import TooMuchContention

# The stored fields, in the order they are written.
ITEM_FIELDS = ("category", "price", "in_stock", "title", "url", "image_url")
MAX_ATTEMPTS = 10
BACKOFF_SECONDS = 0.002
SCAN_COUNT = 1000

# KEYS: items hash, version counter; ARGV: item id. 1 when deleted (and the counter moved).
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"""


# The fields a storefront needs to render an item's tile: answers carry them.
TILE_FIELDS = ("title", "category", "price", "in_stock", "url", "image_url")


class Upserted(NamedTuple):
    changed: int  # distinct items whose stored fields changed (new ones included)
    version: int  # the catalog version after the upsert


def _dumps(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _item(item_id: str, raw: bytes) -> dict[str, Any]:
    return {"item_id": item_id, **json.loads(raw)}


def merge(stored: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (fields without the id, or None for a new item) with ``patch`` applied:
    fields in the patch replace, ``None`` removes, the rest are kept."""
    merged = dict(stored or {})
    for name, value in patch.items():
        if name == "item_id":
            continue
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return {name: merged[name] for name in ITEM_FIELDS if name in merged}


class CatalogStore:
    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        self._delete = client.register_script(_DELETE)

    # --- writing ------------------------------------------------------------------------
    def upsert(self, items: Iterable[dict[str, Any]]) -> Upserted:
        """Merge ``items`` (validated dicts with ``item_id``; later ones over earlier ones
        of the same id) into the catalog, all or nothing. The version counter moves in the
        same transaction, only when something changed. Raises ``TooMuchContention`` when
        concurrent writers kept changing the catalog."""
        patches: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            patches.setdefault(item["item_id"], []).append(item)
        if not patches:
            return Upserted(0, self.version())
        ids = list(patches)
        items_key = self.keys.catalog_items()
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, BACKOFF_SECONDS * attempt))
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(items_key)
                    changed: dict[str, str] = {}
                    for item_id, raw in zip(ids, pipe.hmget(items_key, ids), strict=True):
                        stored = json.loads(raw) if raw is not None else None
                        merged = stored
                        for patch in patches[item_id]:
                            merged = merge(merged, patch)
                        if merged != stored:
                            changed[item_id] = _dumps(merged)
                    if not changed:
                        pipe.unwatch()
                        return Upserted(0, self.version())
                    pipe.multi()
                    pipe.hset(items_key, mapping=changed)
                    pipe.incr(self.keys.catalog_version())
                    _, version = pipe.execute()
                    return Upserted(len(changed), int(version))
                except WatchError:
                    continue
        raise TooMuchContention

    def delete(self, item_id: str) -> bool:
        """Remove an item; False when it was not there (and the version did not move)."""
        keys = [self.keys.catalog_items(), self.keys.catalog_version()]
        return bool(self._delete(keys=keys, args=[item_id]))

    # --- reading ------------------------------------------------------------------------
    def get(self, item_id: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.catalog_items(), item_id)
        return _item(item_id, raw) if raw is not None else None

    def get_many(self, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The known items among ``item_ids``, by id, in one round trip (one HMGET)."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        raws = self.client.hmget(self.keys.catalog_items(), ids)
        return {i: _item(i, raw) for i, raw in zip(ids, raws, strict=True) if raw is not None}

    def version(self) -> int:
        """The catalog's change counter (0 for a catalog never written)."""
        return int(self.client.get(self.keys.catalog_version()) or 0)

    def count(self) -> int:
        return self.client.hlen(self.keys.catalog_items())

    def all_items(self) -> Iterator[dict[str, Any]]:
        """Every item, by HSCAN in batches (never one huge HGETALL reply). Each item comes
        once, even where a rehash during the scan makes Redis return it twice."""
        seen: set[bytes] = set()
        for field, raw in self.client.hscan_iter(self.keys.catalog_items(), count=SCAN_COUNT):
            if field in seen:
                continue
            seen.add(field)
            yield _item(field.decode(), raw)

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """``(version, items)`` for building catalog-derived arrays. The version is read
        before the scan: if the catalog changes during it, the counter has already moved
        past the returned version, so the next ``version()`` check rebuilds."""
        version = self.version()
        return version, list(self.all_items())
