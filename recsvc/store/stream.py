"""How an event record sits in the Redis stream: one field ``e`` holding its JSON."""

from __future__ import annotations

import json
from typing import Any

ENTRY_FIELD = b"e"


def encode_entry(record: dict[str, Any]) -> dict[str, str]:
    """Stream entry fields for one event record (compact JSON, stable key order)."""
    return {"e": json.dumps(record, separators=(",", ":"), ensure_ascii=False)}


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """The event record back from a stream entry's fields."""
    return json.loads(fields[ENTRY_FIELD])
