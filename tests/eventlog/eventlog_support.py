"""Realistic event records, a producer that behaves like the ingestion endpoint, and
readers of the raw log lines (duplicates included, unlike ``iter_records``)."""

from __future__ import annotations

import gzip
import json
import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from recsvc.core.events import CHANNELS, SOURCES, format_timestamp, new_event_id
from recsvc.eventlog.reader import log_files
from recsvc.keys import KeySpace
from recsvc.store.stream import encode_entry

DAYS = ("2026-11-24", "2026-11-25")


def make_record(day: str, rng: random.Random | None = None) -> dict[str, Any]:
    """An event record as the ingestion endpoint stores it, happening on ``day`` (UTC)."""
    rng = rng or random.Random()
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(
        seconds=rng.uniform(0, 86399)
    )
    record: dict[str, Any] = {
        "id": new_event_id(),
        "type": rng.choice(["page_view", "product_view", "add_to_cart", "purchase"]),
        "visitor_id": f"v-{rng.randrange(1000)}",
        "timestamp": format_timestamp(moment),
        "received_at": format_timestamp(moment + timedelta(milliseconds=80)),
        "channel": rng.choice(CHANNELS),
        "session_id": f"s-{rng.randrange(5000)}",
    }
    if record["type"] == "page_view":
        record["source"] = rng.choice(SOURCES)
    else:
        record["item_id"] = f"sku-{rng.randrange(500)}"
        record["price"] = round(rng.uniform(1, 300), 2)
    if rng.random() < 0.3:
        record["user_id"] = f"u-{rng.randrange(300)}"
        record["properties"] = {"note": "café ☕", "n": rng.randrange(10)}
    return record


def make_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` records spread over two days."""
    rng = random.Random(seed)
    return [make_record(DAYS[i % 2], rng) for i in range(count)]


def produce(client: redis.Redis, keys: KeySpace, records: Sequence[dict[str, Any]]) -> list[bytes]:
    """XADD records in one MULTI/EXEC, as the ingestion endpoint does; their stream ids."""
    pipe = client.pipeline(transaction=True)
    for record in records:
        pipe.xadd(keys.events_stream(), encode_entry(record))
    return list(pipe.execute())


class Producer(threading.Thread):
    """Keeps adding small batches of events until stopped; ``ids`` are the event ids
    whose MULTI/EXEC succeeded."""

    def __init__(self, client: redis.Redis, keys: KeySpace, seed: int) -> None:
        super().__init__(daemon=True)
        self.client, self.keys = client, keys
        self.rng = random.Random(seed)
        self.ids: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            records = [
                make_record(self.rng.choice(DAYS), self.rng) for _ in range(self.rng.randint(1, 10))
            ]
            produce(self.client, self.keys, records)
            self.ids.extend(r["id"] for r in records)
            self.stopping.wait(0.005)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def raw_records(out: Path) -> list[dict[str, Any]]:
    """Every line of every log file under ``out``, duplicates kept."""
    lines: list[dict[str, Any]] = []
    for path in log_files(out):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            lines.extend(json.loads(line) for line in handle if line.strip())
    return lines


def temp_files(out: Path) -> list[Path]:
    return sorted(out.rglob(".*.tmp"))
