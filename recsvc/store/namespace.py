"""Whole-namespace maintenance."""

from __future__ import annotations

import redis

from recsvc.keys import KeySpace


def delete_namespace(client: redis.Redis, namespace: str, chunk: int = 500) -> int:
    """Delete every key of ``namespace`` (SCAN, never KEYS); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=KeySpace(namespace).pattern(), count=1000):
        batch.append(key)
        if len(batch) == chunk:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted
