"""Accepting events: each visitor's part of a batch commits in the visitor's own hash slot.

A batch is split per visitor. For each visitor (all visitors of a batch together, one
pipeline per step, on a single Redis and on a Redis Cluster alike):

1. read the visitor document (and, where the batch needs it, nudge state), and put a
   *pending mark* in the visitor's stream shard;
2. take the *lease* of each customer the visitor's events touch (a logged-in visitor's cart
   and purchases live in the customer document, in the customer's slot), then read the
   customer documents;
3. apply the events in Python (``recsvc.core.profile``, ``recsvc.store.nudges``);
4. commit in the visitor's slot: the visitor document, its nudge state and an outbox entry
   holding everything meant for other slots (customer documents, funnel marks, nudge
   counters, cart index changes, the stream records), in one script that checks the
   documents are still as read (``recsvc.store.outbox.COMMIT``). That is acceptance.
5. relay the outbox entry to the other slots, idempotently (``recsvc.store.outbox``).

A visitor whose documents changed meanwhile, or whose customer is leased by another batch,
is tried again on fresh state; the others are not written twice. Two visitors of one
customer in one batch commit one after the other. ``docs/redis.md`` has the design and its
failure cases.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections import defaultdict
from typing import Any

import orjson
import redis

from recsvc.core.events import event_epoch
from recsvc.core.profile import apply_event, new_visitor, shared_for
from recsvc.keys import KeySpace
from recsvc.redis_client import is_cluster, mget_any
from recsvc.settings import Settings
from recsvc.store.nudges import NudgeLedger, state_owners
from recsvc.store.outbox import (
    COMMIT,
    RELEASE,
    Call,
    Relay,
    group_by_visitor,
    hash_digest,
    nudge_args,
    resolve_lease,
    run_calls,
)
from recsvc.store.stream import shard_of, total_length

log = logging.getLogger(__name__)

# Jittered backoff between attempts, so writers racing on one visitor spread out.
BACKOFF_SECONDS = 0.002
# A customer lease never expires by itself before this (a writer cannot take that long);
# a stale one is resolved by the next writer or claim well before (``docs/redis.md``).
LEASE_MS = 86_400_000


class StreamFull(Exception):
    """The stream holds ``stream_max_len`` unexported events: the exporter is behind."""


class TooMuchContention(Exception):
    """Concurrent writers kept changing the same visitors; the client should retry.
    ``committed`` events of the batch (those of other visitors) were accepted all the
    same."""

    def __init__(self, committed: int = 0) -> None:
        super().__init__(f"contention; {committed} events of the batch were accepted")
        self.committed = committed


def dumps(document: dict[str, Any]) -> bytes:
    # orjson: profiles are read and written on every event and every page; it is several
    # times faster than json and writes the same compact UTF-8.
    return orjson.dumps(document)


def _decode_hash(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _customers_of(document: dict[str, Any] | None, records: list[dict[str, Any]]) -> set[str]:
    """The customers whose document applying ``records`` to a visitor may change."""
    users = {r["user_id"] for r in records if r.get("user_id")}
    if document is not None and document.get("user_id"):
        users.add(document["user_id"])
    return users


class EventWriter:
    """Writes validated event records (``recsvc.core.events``) visitor by visitor."""

    def __init__(self, client: redis.Redis, keys: KeySpace, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.ttl = settings.profile_ttl_days * 86400 or 0
        self.relay = Relay(client, keys, settings)

    def write(self, records: list[dict[str, Any]]) -> int:
        """Store ``records`` (already validated, with ids and timestamps); returns how many.

        Raises ``StreamFull`` (nothing written), ``TooMuchContention`` (the events of
        the visitors it names as committed were accepted, the rest not) or a redis error
        (a visitor's commit whose reply was lost may have been accepted).
        """
        groups = group_by_visitor(records)
        if total_length(self.client, self.keys, self.settings.stream_shards) + len(records) > (
            self.settings.stream_max_len
        ):
            raise StreamFull
        pending = list(groups)
        deadline = time.monotonic() + self.settings.ingest_contention_seconds
        committed = attempt = 0
        while pending:
            if attempt:
                if time.monotonic() > deadline:
                    raise TooMuchContention(committed)
                time.sleep(random.uniform(0, BACKOFF_SECONDS * min(attempt, 20)))
            done = self._attempt({v: groups[v] for v in pending})
            # Relayed before the next attempt: that releases the customer leases the
            # committed visitors held, which the batch's next visitor of the same
            # customer waits for.
            self.relay.relay(done)
            committed += sum(len(entry["r"]) for entry, _ in done)
            finished = {entry["v"] for entry, _ in done}
            pending = [v for v in pending if v not in finished]
            attempt += 1
        return len(records)

    # --- one attempt -----------------------------------------------------------------------
    def _attempt(
        self, groups: dict[str, list[dict[str, Any]]]
    ) -> list[tuple[dict[str, Any], bytes]]:
        """Try to commit each visitor's records once; returns the committed outbox entries
        (entry, raw JSON). Visitors left out are retried by the caller."""
        token = os.urandom(8).hex()
        now_ms = int(time.time() * 1000)
        documents, raws = self._read_visitors(groups, token, now_ms)
        users_of = self._plan(groups, documents)
        blocked = self._take_leases(users_of, token, now_ms)
        chosen = [v for v in users_of if v not in blocked]
        states, customers = self._read_shared(groups, documents, users_of, chosen)
        entries: dict[str, tuple[dict[str, Any], bytes, Call]] = {}
        for visitor_id in chosen:
            entries[visitor_id] = self._prepare(
                visitor_id,
                groups[visitor_id],
                documents,
                raws,
                states,
                customers,
                users_of[visitor_id],
                token,
                now_ms,
            )
        replies = run_calls(self.client, [call for _, _, call in entries.values()] + self._wait())
        self._check_replicas(replies[len(entries) :])
        done = []
        for visitor_id, reply in zip(entries, replies, strict=False):
            if isinstance(reply, Exception):
                raise reply  # outcome unknown: the caller answers 503
            if reply == 1:
                done.append(entries[visitor_id][:2])
        self._let_go(
            [v for v in groups if v not in {e["v"] for e, _ in done}], users_of, token, now_ms
        )
        return done

    def _read_visitors(
        self, groups: dict[str, list[dict[str, Any]]], token: str, now_ms: int
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, bytes | None]]:
        """Visitor documents as read, and each visitor's pending mark put (before any
        commit, so that the sweeper finds an entry whose relay never ran)."""
        shards = self.settings.stream_shards
        marks: dict[int, list[Any]] = defaultdict(list)
        for v in groups:
            marks[shard_of(v, shards)] += [now_ms, f"{v}|{token}"]
        calls = [Call(("ZADD", self.keys.events_pending(k), *m)) for k, m in marks.items()]
        _raise_first(run_calls(self.client, calls))
        replies = mget_any(self.client, [self.keys.visitor_profile(v) for v in groups])
        raws = dict(zip(groups, replies, strict=True))
        documents = {v: orjson.loads(raw) if raw else None for v, raw in raws.items()}
        return documents, raws

    @staticmethod
    def _plan(
        groups: dict[str, list[dict[str, Any]]], documents: dict[str, dict[str, Any] | None]
    ) -> dict[str, set[str]]:
        """Visitors to try now, with their customers: a customer goes with one visitor per
        attempt (the next visitor of the same customer waits for the next attempt)."""
        taken: set[str] = set()
        plan: dict[str, set[str]] = {}
        for visitor_id, records in groups.items():
            users = _customers_of(documents[visitor_id], records)
            if users & taken:
                continue
            taken |= users
            plan[visitor_id] = users
        return plan

    def _lease_value(self, token: str, visitor_id: str, now_ms: int) -> str:
        return f"{token}|{visitor_id}|{now_ms}"

    def _take_leases(self, users_of: dict[str, set[str]], token: str, now_ms: int) -> set[str]:
        """Take every planned customer's lease; returns the visitors that could not (their
        leases taken here are given back). A stale lease met on the way is resolved."""
        wanted = [(v, u) for v, users in users_of.items() for u in sorted(users)]
        if not wanted:
            return set()
        calls = [
            Call(
                (
                    "SET",
                    self.keys.customer_lease(u),
                    self._lease_value(token, v, now_ms),
                    "NX",
                    "PX",
                    LEASE_MS,
                )
            )
            for v, u in wanted
        ]
        replies = _raise_first(run_calls(self.client, calls))
        refused = [(v, u) for (v, u), ok in zip(wanted, replies, strict=True) if not ok]
        if not refused:
            return set()
        blocked = {v for v, _ in refused}
        self._resolve_stale([u for _, u in refused], now_ms)
        held = [(v, u) for (v, u), ok in zip(wanted, replies, strict=True) if ok and v in blocked]
        self._release(held, token, now_ms)
        return blocked

    def _resolve_stale(self, users: list[str], now_ms: int) -> None:
        """Settle leases older than ``customer_lease_stale_seconds``: their batch is relayed
        if it committed, fenced off if not; either way the lease goes."""
        holders = run_calls(
            self.client, [Call(("GET", self.keys.customer_lease(u))) for u in users]
        )
        stale_ms = self.settings.customer_lease_stale_seconds * 1000
        for user_id, value in zip(users, holders, strict=True):
            if not value or isinstance(value, Exception):
                continue
            taken_ms = value.decode().rpartition("|")[2]
            if now_ms - int(taken_ms) < stale_ms:
                continue
            resolve_lease(self.client, self.keys, self.relay, user_id, value)

    def _release(self, held: list[tuple[str, str]], token: str, now_ms: int) -> None:
        calls = [
            Call.lua(RELEASE, [self.keys.customer_lease(u)], [self._lease_value(token, v, now_ms)])
            for v, u in held
        ]
        run_calls(self.client, calls)

    def _let_go(
        self, visitors: list[str], users_of: dict[str, set[str]], token: str, now_ms: int
    ) -> None:
        """Give back what visitors that did not commit hold: leases and pending marks."""
        if not visitors:
            return
        shards = self.settings.stream_shards
        self._release([(v, u) for v in visitors for u in users_of.get(v, ())], token, now_ms)
        marks: dict[int, list[str]] = defaultdict(list)
        for v in visitors:
            marks[shard_of(v, shards)].append(f"{v}|{token}")
        calls = [Call(("ZREM", self.keys.events_pending(k), *m)) for k, m in marks.items()]
        run_calls(self.client, calls)

    def _read_shared(
        self,
        groups: dict[str, list[dict[str, Any]]],
        documents: dict[str, dict[str, Any] | None],
        users_of: dict[str, set[str]],
        chosen: list[str],
    ) -> tuple[dict[str, dict[bytes, bytes]], dict[str, dict[str, Any]]]:
        """The nudge states the chosen visitors' batches need (by owner) and their customer
        documents (by user id; leased, so nobody else changes them)."""
        owners = sorted(
            {
                o
                for v in chosen
                for o in state_owners(groups[v], {v: documents[v]} if documents[v] else {})
            }
        )
        users = sorted({u for v in chosen for u in users_of[v]})
        calls = [Call(("HGETALL", self.keys.nudge_state(o))) for o in owners]
        calls += [Call(("GET", self.keys.customer(u))) for u in users]
        replies = _raise_first(run_calls(self.client, calls))
        states = {o: _as_hash(r) for o, r in zip(owners, replies[: len(owners)], strict=True)}
        customers = {
            u: orjson.loads(raw)
            for u, raw in zip(users, replies[len(owners) :], strict=True)
            if raw is not None
        }
        return states, customers

    def _prepare(
        self,
        visitor_id: str,
        records: list[dict[str, Any]],
        documents: dict[str, dict[str, Any] | None],
        raws: dict[str, bytes | None],
        states: dict[str, dict[bytes, bytes]],
        customers: dict[str, dict[str, Any]],
        users: set[str],
        token: str,
        now_ms: int,
    ) -> tuple[dict[str, Any], bytes, Call]:
        """Apply a visitor's records; returns its outbox entry and the commit call."""
        ledger = NudgeLedger(self.keys, self.settings)
        document = documents[visitor_id]
        mine = state_owners(records, {visitor_id: document} if document else {})
        ledger.start_from({o: _decode_hash(states[o]) for o in mine})
        visitor = document
        # Leased for this visitor alone in this attempt (``_plan``): changed in place.
        theirs = {u: customers[u] for u in users if u in customers}
        funnel: dict[str, list[str]] = defaultdict(list)
        for record in records:
            if visitor is None:
                visitor = new_visitor(visitor_id, event_epoch(record))
            shared = shared_for(
                visitor,
                record.get("user_id"),
                theirs,
                self.settings.purchased_items_max,
                ledger.stitched,
            )
            effect = apply_event(visitor, shared, record, self.settings)
            ledger.after_event(visitor, shared, record)
            for mark in effect.funnel_marks:
                key = self.keys.funnel_counter(mark.day, mark.step, mark.source, mark.visitor_type)
                funnel[key].append(visitor_id)
        owner = f"v:{visitor_id}"
        entry = {
            "t": token,
            "v": visitor_id,
            "at": now_ms,
            "s": shard_of(visitor_id, self.settings.stream_shards),
            "r": records,
            "c": {u: {"doc": doc, "n": ledger.state_writes(f"u:{u}")} for u, doc in theirs.items()},
            "f": {key: sorted(set(members)) for key, members in funnel.items()},
            "n": ledger.counter_increments(),
            "i": ledger.index_changes(),
        }
        raw_entry = orjson.dumps(entry)
        read = raws[visitor_id]
        digest = hash_digest(states[owner]) if owner in mine else "-"
        args: list[Any] = [
            hashlib.sha1(read).hexdigest() if read else "",
            digest,
            token,
            dumps(visitor),
            self.ttl,
            raw_entry,
        ]
        if digest != "-":
            args += nudge_args(ledger.state_writes(owner))
        keys = [
            self.keys.visitor_profile(visitor_id),
            self.keys.nudge_state(owner),
            self.keys.outbox(visitor_id),
            self.keys.fence(visitor_id),
        ]
        return entry, raw_entry, Call.lua(COMMIT, keys, args)

    # --- replication -----------------------------------------------------------------------
    def _wait(self) -> list[Call]:
        """WAIT for ``redis_wait_replicas`` replicas after the commits, on their connection
        (single server or Sentinel; a cluster has no replicas here)."""
        if self.settings.redis_wait_replicas <= 0 or is_cluster(self.client):
            return []
        return [
            Call(("WAIT", self.settings.redis_wait_replicas, self.settings.redis_wait_timeout_ms))
        ]

    def _check_replicas(self, replies: list[Any]) -> None:
        for reply in replies:
            if isinstance(reply, int) and reply < self.settings.redis_wait_replicas:
                log.warning(
                    "commit reached %d of %d replicas", reply, self.settings.redis_wait_replicas
                )


def _as_hash(reply: Any) -> dict[bytes, bytes]:
    """HGETALL's reply through execute_command: a dict (RESP2 parsing) or a flat list."""
    if isinstance(reply, dict):
        return reply
    return {reply[i]: reply[i + 1] for i in range(0, len(reply), 2)}


def _raise_first(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
