"""How an event record sits in the Redis stream (one field ``e`` holding its JSON), and
which shard of the stream a visitor's events go to."""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson
import redis

from recsvc.keys import KeySpace

ENTRY_FIELD = b"e"


def encode_entry(record: dict[str, Any]) -> dict[str, str]:
    """Stream entry fields for one event record (compact JSON, stable key order)."""
    return {"e": encode_record(record)}


def encode_record(record: dict[str, Any]) -> str:
    """The ``e`` field's value: compact JSON, UTF-8, keys in the record's order (orjson:
    the same text as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` for event
    records, several times faster; the relay encodes every accepted event)."""
    return orjson.dumps(record).decode()


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """The event record back from a stream entry's fields."""
    return json.loads(fields[ENTRY_FIELD])


def shard_of(visitor_id: str, shards: int) -> int:
    """The stream shard of a visitor's events: stable (CRC-32 of the id), so one visitor's
    events stay in order in one stream."""
    return zlib.crc32(visitor_id.encode()) % shards if shards > 1 else 0


def stream_keys(keys: KeySpace, shards: int) -> list[str]:
    """Every shard's stream key, shard 0 first."""
    return [keys.events_stream(shard) for shard in range(shards)]


def total_length(client: redis.Redis, keys: KeySpace, shards: int) -> int:
    """Entries in all shards together (XLEN of each, in one pipeline)."""
    pipe = client.pipeline(transaction=False)
    for key in stream_keys(keys, shards):
        pipe.xlen(key)
    return sum(int(n) for n in pipe.execute())


def read_records(client: redis.Redis, keys: KeySpace, shards: int) -> list[dict[str, Any]]:
    """Every record in every shard, sorted by event id (acceptance time): for tests and
    benchmarks that check what landed, not for the exporter (which reads by group)."""
    records = []
    for key in stream_keys(keys, shards):
        records += [decode_entry(fields) for _, fields in client.xrange(key)]
    return sorted(records, key=lambda record: record["id"])
