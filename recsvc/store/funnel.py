"""Funnel counters: one HyperLogLog per (day, step, first-touch source, visitor type).

PFCOUNT over several keys counts the union, so a query over a date range and any filter
counts each visitor once. Redis HyperLogLogs have a standard error of 0.81%; below a few
hundred members per key they use the sparse encoding, whose estimates are exact in
practice for the small counts tests use (checked in tests/store/test_funnel.py).

Each counter expires ``analytics_retention_days`` after the end of its day, counted on the
service's clock (the batch's ``received_at``), so the keys alive are at most (retention +
the days events may lie ahead) x steps x sources x visitor types, each at most 12 KB. A
day already past its retention makes no counter at all. Ingestion's outbox entry carries
each counter's TTL; the relay adds the visitors and sets it (``recsvc.store.outbox``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis

from recsvc.core.events import SOURCES, parse_timestamp
from recsvc.core.funnel import FUNNEL_STEPS, UNKNOWN_SOURCE, VISITOR_TYPES
from recsvc.core.profile import FunnelMark
from recsvc.keys import KeySpace
from recsvc.store.outbox import Call, run_calls

HLL_STANDARD_ERROR = 0.0081


@functools.lru_cache(maxsize=1024)  # a few days recur in every batch; parsing them is not free
def day_expiry(day: str, retention_days: int) -> int:
    """Unix seconds at which a counter of ``day`` (YYYY-MM-DD, UTC) expires: the end of the
    day plus ``retention_days``."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return int((start + timedelta(days=1 + retention_days)).timestamp())


def retention_ttl(day: str, retention_days: int, now: float) -> int:
    """Seconds a counter of ``day`` has left at ``now`` (unix seconds, the service's
    clock); 0 or less when the day is past its retention. A relative TTL, so a service
    (or a test) on its own clock keeps its counters as long as its clock says."""
    return day_expiry(day, retention_days) - int(now)


def batch_time(records: list[dict[str, Any]]) -> float:
    """The service's time of an ingestion batch, unix seconds: its latest ``received_at``
    (the latest event time for records stored without one). Record times are written in
    one fixed-width ISO format, so the latest string is the latest time: one parse."""
    return parse_timestamp(max(r.get("received_at") or r["timestamp"] for r in records)).timestamp()


class FunnelWrites:
    """One visitor's funnel marks in an ingestion batch, as its outbox entry carries them
    (``recsvc.store.outbox``): per counter key the visitors to PFADD and the seconds the
    counter has left at ``now`` (the batch's time), which the relay sets with EXPIRE; none
    for a day past its retention."""

    def __init__(self, keys: KeySpace, retention_days: int, now: float) -> None:
        self.keys = keys
        self.retention_days = retention_days
        self.now = now
        self.members: dict[str, set[str]] = defaultdict(set)
        self.ttls: dict[str, int] = {}

    def add(self, mark: FunnelMark, visitor_id: str) -> None:
        key = self.keys.funnel_counter(mark.day, mark.step, mark.source, mark.visitor_type)
        if key not in self.ttls:
            self.ttls[key] = retention_ttl(mark.day, self.retention_days, self.now)
        if self.ttls[key] > 0:
            self.members[key].add(visitor_id)

    def entry_members(self) -> dict[str, list[str]]:
        """Counter key -> the visitors to add (sorted), for counters within retention."""
        return {key: sorted(members) for key, members in self.members.items()}

    def entry_ttls(self) -> dict[str, int]:
        """Counter key -> seconds it has left at the batch's time (positive), for the same
        counters as ``entry_members``."""
        return {key: self.ttls[key] for key in self.members}


class FunnelStore:
    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys

    def counts(
        self,
        start: date,
        end: date,
        source: str | None = None,
        visitor_type: str | None = None,
    ) -> list[int]:
        """Unique visitors per funnel step (``FUNNEL_STEPS`` order) between ``start`` and
        ``end`` inclusive (UTC days), optionally for one first-touch source and one
        visitor type."""
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        sources = [source] if source else [*SOURCES, UNKNOWN_SOURCE]
        visitor_types = [visitor_type] if visitor_type else list(VISITOR_TYPES)
        calls = []
        for step in FUNNEL_STEPS:
            keys = [
                self.keys.funnel_counter(day, step, src, vt)
                for day in days
                for src in sources
                for vt in visitor_types
            ]
            # All in {funnel}: one slot. (redis-py refuses pipe.pfcount on a cluster, where
            # it cannot know that; a raw PFCOUNT is routed by its first key.)
            calls.append(Call(("PFCOUNT", *keys)))
        replies = run_calls(self.client, calls)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [int(n) for n in replies]
