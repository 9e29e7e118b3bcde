"""Accepting events: the stream, the profiles, the carts and the funnel in one transaction.

A batch is read (profiles of its visitors and customers), applied in Python by
``recsvc.core.profile``, and written back with the stream entries, funnel counters and the
nudge bookkeeping (``recsvc.store.nudges``: abandoned-cart index, nudge attribution) in
one MULTI/EXEC guarded by WATCH on every document it read. Either all of it lands or none
of it does; a concurrent writer to the same visitor makes the transaction retry on fresh
state. (On Redis Cluster the batch would have to be split per slot: the visitor and
customer documents carry different hash tags. That is not done yet.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.exceptions import WatchError

from recsvc.core.events import event_epoch
from recsvc.core.profile import apply_event, new_customer, new_visitor, shared_for
from recsvc.keys import KeySpace
from recsvc.settings import Settings
from recsvc.store.funnel import FunnelWrites, batch_time
from recsvc.store.nudges import NudgeLedger, state_owners
from recsvc.store.stream import encode_entry

MAX_ATTEMPTS = 10
# Jittered backoff between attempts, so writers racing on one visitor spread out.
BACKOFF_SECONDS = 0.002


class StreamFull(Exception):
    """The stream holds ``stream_max_len`` unexported events: the exporter is behind."""


class TooMuchContention(Exception):
    """Concurrent writers kept changing the same visitors; the client should retry."""


def dumps(document: dict[str, Any]) -> bytes:
    # orjson: profiles are read and written on every event and every page; it is several
    # times faster than json and writes the same compact UTF-8.
    return orjson.dumps(document)


@dataclass
class _Batch:
    """The documents one batch touches, loaded under WATCH."""

    nudges: NudgeLedger
    funnel: FunnelWrites
    visitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)


class EventWriter:
    """Writes validated event records (``recsvc.core.events``) atomically."""

    def __init__(self, client: redis.Redis, keys: KeySpace, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.ttl = settings.profile_ttl_days * 86400 or None

    def write(
        self, records: list[dict[str, Any]], known_banners: Container[str] | None = None
    ) -> int:
        """Store ``records`` (already validated, with ids and timestamps); returns how many.
        Banner impressions count toward frequency caps for ``known_banners`` only (any
        banner when None).

        Raises ``StreamFull``, ``TooMuchContention``, ``CartLimitExceeded`` (naming the
        event) or a redis error; in every one of those cases nothing was written.
        """
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, BACKOFF_SECONDS * attempt))
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    batch = self._load(pipe, records)
                    self._apply(batch, records, known_banners)
                    self._queue_writes(pipe, batch, records)
                    pipe.execute()
                    return len(records)
                except WatchError:
                    continue
        raise TooMuchContention

    def _load(self, pipe: redis.client.Pipeline, records: list[dict[str, Any]]) -> _Batch:
        visitor_ids = list(dict.fromkeys(r["visitor_id"] for r in records))
        visitor_keys = [self.keys.visitor_profile(v) for v in visitor_ids]
        pipe.watch(*visitor_keys)
        if pipe.xlen(self.keys.events_stream()) + len(records) > self.settings.stream_max_len:
            raise StreamFull
        retention, now = self.settings.analytics_retention_days, batch_time(records)
        batch = _Batch(
            NudgeLedger(self.keys, self.settings, now), FunnelWrites(self.keys, retention, now)
        )
        for visitor_id, raw in zip(visitor_ids, pipe.mget(visitor_keys), strict=True):
            if raw is not None:
                batch.visitors[visitor_id] = orjson.loads(raw)
        user_ids = {doc["user_id"] for doc in batch.visitors.values() if doc["user_id"]}
        user_ids.update(r["user_id"] for r in records if r.get("user_id"))
        if user_ids:
            user_ids_list = sorted(user_ids)
            user_keys = [self.keys.customer(u) for u in user_ids_list]
            pipe.watch(*user_keys)
            for user_id, raw in zip(user_ids_list, pipe.mget(user_keys), strict=True):
                batch.customers[user_id] = orjson.loads(raw) if raw else new_customer(user_id)
        batch.nudges.load(pipe, state_owners(records, batch.visitors))
        return batch

    def _apply(
        self, batch: _Batch, records: list[dict[str, Any]], known_banners: Container[str] | None
    ) -> None:
        for record in records:
            visitor = batch.visitors.get(record["visitor_id"])
            if visitor is None:
                visitor = new_visitor(record["visitor_id"], event_epoch(record))
                batch.visitors[record["visitor_id"]] = visitor
            shared = shared_for(
                visitor,
                record.get("user_id"),
                batch.customers,
                self.settings.purchased_items_max,
                batch.nudges.stitched,
                (self.settings.cart_max_lines, self.settings.cart_max_quantity),
            )
            effect = apply_event(visitor, shared, record, self.settings, known_banners)
            batch.nudges.after_event(visitor, shared, record)
            for mark in effect.funnel_marks:
                batch.funnel.add(mark, record["visitor_id"])

    def _queue_writes(
        self, pipe: redis.client.Pipeline, batch: _Batch, records: list[dict[str, Any]]
    ) -> None:
        pipe.multi()
        stream = self.keys.events_stream()
        for record in records:
            pipe.xadd(stream, encode_entry(record))
        for visitor_id, visitor in batch.visitors.items():
            pipe.set(self.keys.visitor_profile(visitor_id), dumps(visitor), ex=self.ttl)
        for user_id, customer in batch.customers.items():
            pipe.set(self.keys.customer(user_id), dumps(customer), ex=self.ttl)
        batch.funnel.queue(pipe)
        batch.nudges.queue(pipe)
