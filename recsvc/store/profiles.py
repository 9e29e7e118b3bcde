"""Reading a visitor's profile documents."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from recsvc.core.profile import new_shared
from recsvc.keys import KeySpace


class ProfileStore:
    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys

    def load(self, visitor_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The visitor document and the shared (cart, purchases) document it uses, or None
        for a visitor never seen (or whose profile expired)."""
        raw = self.client.get(self.keys.visitor_profile(visitor_id))
        if raw is None:
            return None
        visitor = orjson.loads(raw)
        if not visitor["user_id"]:
            return visitor, visitor["shared"]
        customer = self.client.get(self.keys.customer(visitor["user_id"]))
        if customer is None:  # expired independently: show what the visitor document has
            return visitor, visitor.get("shared") or new_shared()
        return visitor, orjson.loads(customer)
