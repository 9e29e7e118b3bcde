"""Banners in Redis: one hash of banner JSON and a version counter workers cache by.

Every change (create, replace, delete) and the counter's INCR happen in one transaction,
so a worker that sees the counter move and reloads sees the change. Banners are few (tens,
maybe hundreds): the whole hash is read at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from recsvc.keys import KeySpace

# KEYS: banners hash, version counter. ARGV: id, JSON, mode ("create" | "replace").
# Returns 1 when written, 0 when the id is taken (create) or missing (replace).
_WRITE = """
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1])
if (ARGV[3] == 'create' and exists == 1) or (ARGV[3] == 'replace' and exists == 0) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
"""

_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
"""


class BannerStore:
    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        self._write = client.register_script(_WRITE)
        self._delete = client.register_script(_DELETE)

    def _key_pair(self) -> list[str]:
        return [self.keys.banners(), self.keys.banners_version()]

    def create(self, banner: dict[str, Any]) -> bool:
        """Store a new banner; False when its id is already taken."""
        return self._put(banner, "create")

    def replace(self, banner: dict[str, Any]) -> bool:
        """Replace a stored banner; False when there is none with that id."""
        return self._put(banner, "replace")

    def _put(self, banner: dict[str, Any], mode: str) -> bool:
        raw = json.dumps(banner, separators=(",", ":"), ensure_ascii=False)
        return bool(self._write(keys=self._key_pair(), args=[banner["id"], raw, mode]))

    def delete(self, banner_id: str) -> bool:
        return bool(self._delete(keys=self._key_pair(), args=[banner_id]))

    def get(self, banner_id: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.banners(), banner_id)
        return None if raw is None else json.loads(raw)

    def existing(self, banner_ids: Iterable[str]) -> frozenset[str]:
        """Those of ``banner_ids`` that name a stored banner (one round trip; none for no
        ids): what ingestion counts impressions of."""
        wanted = sorted(set(banner_ids))
        if not wanted:
            return frozenset()
        found = self.client.hmget(self.keys.banners(), wanted)
        return frozenset(b for b, raw in zip(wanted, found, strict=True) if raw is not None)

    def all(self) -> list[dict[str, Any]]:
        """Every banner, by id."""
        raws = self.client.hgetall(self.keys.banners())
        return [json.loads(raws[k]) for k in sorted(raws)]

    def version(self) -> int:
        return int(self.client.get(self.keys.banners_version()) or 0)

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """``(version, banners)`` read in one transaction, so they belong together."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.banners_version())
            pipe.hgetall(self.keys.banners())
            version, raws = pipe.execute()
        return int(version or 0), [json.loads(raws[k]) for k in sorted(raws)]
