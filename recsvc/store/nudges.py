"""Abandoned-cart nudges in Redis: the cart index, per-owner nudge state, claims, counters.

Three kinds of keys (``recsvc.keys``):

- ``cart_index(channel)``, one per off-site channel: ZSET cart owner -> ``cart_changed_at``
  of their cart, for carts that can be abandoned (items, no purchase since) and that the
  channel has not taken (claimed or held out) yet. Ingestion keeps them, in the same MULTI
  as the documents (``NudgeLedger``), for the owners a batch touched only: a changed cart
  enters every channel's index again. The claim script removes what it takes, so a claim
  reads the carts still waiting, not every cart ever claimed. It is a shortlist:
  ``recsvc.core.nudges`` on the owner's document decides what is due.
- ``nudge_state(owner)``: HASH, per channel ``<channel>:<field>``: ``cart`` (the
  ``cart_changed_at`` the channel claimed or held out: one nudge per cart), ``claimed_at``,
  ``holdout_at``, ``sent_at``, ``clicked_at``, ``recovered_at`` and ``recovered_order``
  (the order the recovery came with: its later lines add value, not a recovery); and
  ``claims``, the epoch seconds of the owner's off-site claims in the last 7 days (the
  weekly cap). Plain numbers, so the claim script compares and sets them in place. A new
  cart claimed or held out on a channel starts that channel's fields afresh. On a
  visitor's first login their state moves to the customer, with their cart.
- ``nudge_stats``: HASH ``<UTC day>|<channel>|<counter>`` -> count or value
  (``recsvc.core.nudge_report`` lists the counters).

Claims are one Lua script per candidate in the owner's slot (``_TAKE``): it checks that the
channel has not had this cart yet and, for a claim, the owner's weekly cap (a held-out
chance is recorded whatever the cap, as in the backtest), then marks it, in one step, so
two senders calling at once never get the same cart. The counters and the index
(``{marketing}``, another slot on a cluster) follow in a second step: a sender killed
between the two leaves a taken cart uncounted, never one counted twice
(``docs/redis.md``).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import redis

from recsvc.core.events import NUDGE_CHANNELS, OFFSITE_NUDGE_CHANNELS, event_day, event_epoch
from recsvc.core.nudge_report import COUNTERS, VALUE_COUNTERS
from recsvc.core.nudges import (
    WEEK,
    Attribution,
    cart_changed_at,
    channel_delay,
    due_at,
    in_holdout,
    owner_of,
)
from recsvc.core.profile import CART_EVENTS
from recsvc.keys import KeySpace
from recsvc.redis_client import mget_any
from recsvc.settings import Settings
from recsvc.store.chance_writer import Chance, ChanceWriter
from recsvc.store.outbox import Call, Relay, resolve_lease, run_calls

# Events whose nudge bookkeeping needs the owner's nudge state.
ATTRIBUTION_TYPES = frozenset({"nudge_sent", "nudge_impression", "nudge_click", "purchase"})
_RELEVANT_TYPES = ATTRIBUTION_TYPES | CART_EVENTS
# Index entries read per round trip while looking for due carts.
PAGE_SIZE = 200

# Takes one owner's cart for a channel, once per cart, in the owner's slot. KEYS[1] the
# owner's nudge state, KEYS[2] the owner's customer lease (a ``u:`` owner; for a ``v:``
# owner the state again: ingestion checks that hash itself). ARGV: channel, now, cap
# (negative: no cap, no claims kept: the onsite rule), window of the cap in seconds, state
# TTL in seconds (0: none), mode ("claim" or "holdout"), cart (its cart_changed_at), and
# the SHA-1 of the owner's document (KEYS[3]) as the claim read it ("": not checked).
# Returns 1 taken, 0 not (the weekly cap, or the document changed since it was read: the
# cart may not be the one seen), 2 this cart was taken already, -1 the owner's documents
# are being written (leased): try later.
_TAKE = """
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if ARGV[8] ~= '' then
  local document = redis.call('GET', KEYS[3])
  if not document or redis.sha1hex(document) ~= ARGV[8] then return 0 end
end
local channel, now, mode, cart = ARGV[1], ARGV[2], ARGV[6], ARGV[7]
local cap, week, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now_n, cart_n = tonumber(now), tonumber(cart)
local state = KEYS[1]
local had = redis.call('HGET', state, channel .. ':cart')
if had and tonumber(had) == cart_n then return 2 end
local recent = {}
local claims = redis.call('HGET', state, 'claims')
if claims then
  for t in string.gmatch(claims, '%S+') do
    if now_n - tonumber(t) < week then table.insert(recent, t) end
  end
end
-- The cap limits sends only: a held-out chance is recorded whatever the cap, as the
-- backtest (recsvc.marketing.nudge_sim) decides the holdout before the cap.
if mode ~= 'holdout' and cap >= 0 and #recent >= cap then return 0 end
for _, name in ipairs({'claimed_at', 'holdout_at', 'sent_at', 'clicked_at', 'recovered_at',
                       'recovered_order'}) do
  redis.call('HDEL', state, channel .. ':' .. name)
end
redis.call('HSET', state, channel .. ':cart', cart)
if mode == 'holdout' then
  redis.call('HSET', state, channel .. ':holdout_at', now)
else
  redis.call('HSET', state, channel .. ':claimed_at', now)
  if cap >= 0 then
    table.insert(recent, now)
    redis.call('HSET', state, 'claims', table.concat(recent, ' '))
  end
end
if ttl > 0 then redis.call('EXPIRE', state, ttl) end
return 1
"""
TAKEN, NOT_TAKEN, TAKEN_BEFORE, LEASED = 1, 0, 2, -1


def utc_day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def stat_field(day: str, channel: str, counter: str) -> str:
    return f"{day}|{channel}|{counter}"


def nudge_channel(record: dict[str, Any]) -> str:
    """The channel a nudge event concerns; the schema made sure ``nudge_sent`` names it."""
    return (record.get("properties") or {}).get("channel") or "onsite"


def line_value(record: dict[str, Any]) -> float:
    return (record.get("price") or 0) * (record.get("quantity") or 1)


def _cart(state: dict[str, str], channel: str) -> float:
    """The cart a channel's fields concern (``-inf`` when none was recorded)."""
    return float(state.get(f"{channel}:cart", "-inf"))


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _hash(flat: list[Any]) -> dict[str, str]:
    """An HGETALL answer as returned from Lua (flat field, value list) as a dict."""
    return {_decode(flat[i]): _decode(flat[i + 1]) for i in range(0, len(flat), 2)}


# --- ingestion ---------------------------------------------------------------------------
def state_owners(records: list[dict[str, Any]], visitors: dict[str, dict[str, Any]]) -> list[str]:
    """The owners whose nudge state a batch needs: every owner its nudge events and
    purchases may belong to once applied (the visitor, the customer their document names,
    any customer the batch logs them in as), and both sides of a first login of a known
    visitor (their nudges move with their cart). Most batches need none."""
    attributed = {r["visitor_id"] for r in records if r["type"] in ATTRIBUTION_TYPES}
    owners: set[str] = set()
    for record in records:
        visitor_id, user_id = record["visitor_id"], record.get("user_id")
        document = visitors.get(visitor_id)
        if visitor_id in attributed:
            owners.add(f"v:{visitor_id}")
            if document and document["user_id"]:
                owners.add(f"u:{document['user_id']}")
            if user_id:
                owners.add(f"u:{user_id}")
        elif user_id and document is not None and document["user_id"] is None:
            owners.update((f"v:{visitor_id}", f"u:{user_id}"))
    return sorted(owners)


class NudgeLedger:
    """The nudge side of one ingestion batch: which carts moved in the index, and what the
    batch's nudge events and purchases add to the owners' nudge state and the counters.

    ``start_from`` takes the states read before the batch is applied; ``after_event`` runs
    after each record is applied; ``state_writes``, ``index_changes`` and
    ``counter_increments`` say what to write, slot by slot (``recsvc.store.events``).
    """

    def __init__(self, keys: KeySpace, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings
        self.states: dict[str, dict[str, str]] = {}
        self.changed: dict[str, dict[str, str]] = defaultdict(dict)
        self.removed: dict[str, set[str]] = defaultdict(set)
        self.moved: set[str] = set()  # states moved to a customer on login: deleted
        # owner -> its shared document; read when queued, so the batch's last state counts.
        self.carts: dict[str, dict[str, Any]] = {}
        self.gone: set[str] = set()
        self.counts: Counter[str] = Counter()

    def start_from(self, states: dict[str, dict[str, str]]) -> None:
        """Begin with the nudge states of the batch's owners (``state_owners``) as read
        (``nudge_state`` hashes decoded to str -> str); usually none."""
        self.states = {owner: dict(state) for owner, state in states.items()}

    def stitched(self, visitor_id: str, user_id: str, customer: dict[str, Any]) -> None:
        """A visitor's cart moved into a customer's on their first login."""
        owner = f"v:{visitor_id}"
        self.carts.pop(owner, None)
        self.gone.add(owner)
        self.carts[f"u:{user_id}"] = customer
        self._move_state(owner, f"u:{user_id}")

    def _move_state(self, source: str, target: str) -> None:
        """The visitor's nudges go with their cart, so a purchase after the login is still
        attributed to them: per channel the visitor's fields replace the customer's when
        they concern a newer cart (or the customer has none); the weekly cap counts both
        sides' claims."""
        theirs = self.states.get(source)
        if not theirs:
            return
        mine = self.states.setdefault(target, {})
        for channel in NUDGE_CHANNELS:
            prefix = f"{channel}:"
            their_fields = {k: v for k, v in theirs.items() if k.startswith(prefix)}
            my_fields = [k for k in mine if k.startswith(prefix)]
            if not their_fields or (my_fields and _cart(theirs, channel) <= _cart(mine, channel)):
                continue
            for name in my_fields:
                self._unset(target, name)
            for name, value in their_fields.items():
                self._set(target, name, value)
        claims = {*mine.get("claims", "").split(), *theirs.get("claims", "").split()}
        if claims != set(mine.get("claims", "").split()):
            self._set(target, "claims", " ".join(sorted(claims, key=float)))
        self.moved.add(source)

    def after_event(
        self, visitor: dict[str, Any], shared: dict[str, Any], record: dict[str, Any]
    ) -> None:
        """Note what ``record``, just applied to ``visitor`` and ``shared``, changes."""
        kind = record["type"]
        if kind not in _RELEVANT_TYPES:
            return
        owner = owner_of(visitor)
        if kind in CART_EVENTS:
            self.carts[owner] = shared
        if kind == "purchase":
            self._recover(owner, shared, record)
        elif kind in ATTRIBUTION_TYPES:
            channel = nudge_channel(record)
            name = "clicked" if kind == "nudge_click" else "sent"
            self._first(owner, channel, f"{name}_at", name, record)

    def _set(self, owner: str, field: str, value: str) -> None:
        self.states.setdefault(owner, {})[field] = value
        self.changed[owner][field] = value
        self.removed[owner].discard(field)

    def _unset(self, owner: str, field: str) -> None:
        self.states.get(owner, {}).pop(field, None)
        self.changed[owner].pop(field, None)
        self.removed[owner].add(field)

    def _count(self, day: str, channel: str, counter: str, amount: float = 1) -> None:
        self.counts[stat_field(day, channel, counter)] += amount

    def _first(
        self, owner: str, channel: str, field: str, counter: str, record: dict[str, Any]
    ) -> None:
        """Mark (and count) the first send or click of the channel's current cart."""
        name = f"{channel}:{field}"
        if name in self.states.get(owner, {}):
            return
        self._set(owner, name, repr(event_epoch(record)))
        self._count(event_day(record), channel, counter)

    def _recover(self, owner: str, shared: dict[str, Any], record: dict[str, Any]) -> None:
        """A purchase after a nudge (or a held-out chance) within the attribution window
        recovers that cart: once per cart and channel; later lines of the same order add
        their value."""
        state = self.states.get(owner, {})
        at, day = event_epoch(record), event_day(record)
        order = str(shared["purchases"]["orders"])
        for channel in NUDGE_CHANNELS:
            for given_field, prefix in (("sent_at", ""), ("holdout_at", "holdout_")):
                given = state.get(f"{channel}:{given_field}")
                if given is None or not Attribution(float(given)).covers(at, self.settings):
                    continue
                if f"{channel}:recovered_at" not in state:
                    self._set(owner, f"{channel}:recovered_at", repr(at))
                    self._set(owner, f"{channel}:recovered_order", order)
                    self._count(day, channel, f"{prefix}recovered")
                elif state.get(f"{channel}:recovered_order") != order:
                    break
                self._count(day, channel, f"{prefix}recovered_value", line_value(record))
                break

    def state_writes(self, owner: str) -> dict[str, Any] | None:
        """What the batch changes in ``owner``'s nudge state: ``{"drop": bool, "set":
        {field: value}, "unset": [field]}`` (``drop``: the state moved to a customer on
        login and is deleted), or None when nothing. Applied in the owner's slot, in the
        same step as the owner's document (``recsvc.store.outbox``)."""
        if owner in self.moved:
            return {"drop": True, "set": {}, "unset": []}
        changed, removed = self.changed.get(owner), self.removed.get(owner)
        if not changed and not removed:
            return None
        return {"drop": False, "set": dict(changed or {}), "unset": sorted(removed or ())}

    def owners_written(self) -> set[str]:
        """Every owner whose nudge state ``state_writes`` has something for."""
        return {o for o in {*self.moved, *self.changed, *self.removed} if self.state_writes(o)}

    def index_changes(self) -> dict[str, float | None]:
        """Cart index changes, the same for every off-site channel: owner -> its cart's
        ``cart_changed_at`` (enters or stays in the index), or None (leaves it). An
        unchanged cart a channel took already may come back (a cart event that changed
        nothing): the claim drops it again."""
        changes: dict[str, float | None] = dict.fromkeys(self.gone)
        for owner, shared in self.carts.items():
            changes[owner] = cart_changed_at(shared)
        return changes

    def counter_increments(self) -> dict[str, float]:
        """``nudge_stats`` field -> amount to add (counts are whole, values rounded)."""
        out: dict[str, float] = {}
        for field_name, amount in self.counts.items():
            if field_name.rpartition("|")[2] not in VALUE_COUNTERS:
                out[field_name] = int(amount)
            elif amount:
                out[field_name] = round(amount, 2)
        return out


# --- claims ------------------------------------------------------------------------------
@dataclass
class DueCart:
    """An owner's cart due for a nudge, as read for a claim."""

    owner: str
    document: dict[str, Any]  # the visitor document (``v:``) or the customer document (``u:``)
    shared: dict[str, Any]  # cart and purchases
    changed: float  # cart_changed_at: the cart's identity for "once per cart"
    held_out: bool
    # SHA-1 of the owner's document as read: the take checks it is unchanged.
    digest: str = ""


class NudgeStore:
    def __init__(self, client: redis.Redis, keys: KeySpace, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        # Onsite chances are written in the background, once per cart and process.
        self._chances = ChanceWriter(self._write_chances)

    def claim(self, channel: str, limit: int, now: float) -> list[DueCart]:
        """Claim up to ``limit`` carts due on off-site ``channel`` at ``now``, oldest first,
        each for one caller only; owners in the channel's holdout are recorded as held out
        on the way and never returned."""
        cutoff = now - self.settings.cart_abandon_seconds - channel_delay(channel, self.settings)
        claimed: list[DueCart] = []
        offset = 0
        while len(claimed) < limit:
            page = self.client.zrangebyscore(
                self.keys.cart_index(channel),
                "-inf",
                cutoff,
                start=offset,
                # A little more than wanted (some are held out or not due after all): a
                # claim of 10 must not read 200 documents.
                num=min(PAGE_SIZE, 2 * (limit - len(claimed)) + 10),
                withscores=True,
            )
            if not page:
                break
            scores = {_decode(owner): score for owner, score in page}
            due, forgotten = self._due(channel, list(scores), now)
            # The index must still hold the cart the document shows (else ingestion is
            # moving it: the next claim sees it).
            due = [cart for cart in due if scores[cart.owner] == cart.changed]
            taken, dropped = self._take_up_to(channel, due, limit - len(claimed), now)
            claimed.extend(cart for cart in taken if not cart.held_out)
            # What was taken, taken before or forgotten left the index; the rest of the
            # page stays ahead.
            offset += len(page) - len(taken) - dropped - forgotten
        return claimed

    def record_chance(
        self, owner: str, channel: str, changed: float, held_out: bool, now: float
    ) -> bool:
        """Record, once per cart, that ``owner``'s cart was eligible on a channel that takes
        no claims (onsite): shown, or held out. Queued, not written: the page does not wait
        for Redis (``recsvc.store.chance_writer``). True when queued, the first time this
        process saw the cart."""
        return self._chances.add(Chance(owner, channel, changed, held_out, now))

    def _write_chances(self, chances: list[Chance]) -> None:
        """The take script for each chance in its owner's slot, then the counters, all
        pipelined (``recsvc.store.outbox.run_calls``)."""
        carts = [DueCart(c.owner, {}, {}, c.changed, c.held_out) for c in chances]
        calls = [
            self._take_call(c.channel, cart, c.now, offsite=False)
            for c, cart in zip(chances, carts, strict=True)
        ]
        replies = run_calls(self.client, calls)
        failed = next((r for r in replies if isinstance(r, Exception)), None)
        if failed is not None:
            raise failed
        self._count_taken(
            [
                (c.channel, cart, c.now)
                for c, cart, r in zip(chances, carts, replies, strict=True)
                if r == TAKEN
            ],
            offsite=False,
        )

    def counts(
        self, start: date, end: date, channels: Iterable[str]
    ) -> dict[str, dict[str, float]]:
        """Counters summed over the UTC days ``start``..``end`` (inclusive), per channel,
        with this process's queued onsite chances written first."""
        self._chances.flush()
        channels = list(channels)
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        fields = [
            (channel, counter, stat_field(day, channel, counter))
            for day in days
            for channel in channels
            for counter in COUNTERS
        ]
        values = self.client.hmget(self.keys.nudge_stats(), [f for _, _, f in fields])
        summed: dict[str, dict[str, float]] = {c: dict.fromkeys(COUNTERS, 0) for c in channels}
        for (channel, counter, _), raw in zip(fields, values, strict=True):
            if raw is not None:
                value = float(raw) if counter in VALUE_COUNTERS else int(raw)
                summed[channel][counter] += value
        return summed

    # --- claiming, step by step ----------------------------------------------------------
    def _due(self, channel: str, owners: list[str], now: float) -> tuple[list[DueCart], int]:
        """The owners whose documents say a nudge on ``channel`` is due now (the core rules
        decide, the index only shortlisted them), and how many owners were dropped from the
        indexes because their document is gone."""
        document_keys = [self._document_key(owner) for owner in owners]
        found, gone = [], []
        for owner, raw in zip(owners, mget_any(self.client, document_keys), strict=True):
            if raw is None:
                gone.append(owner)
                continue
            document = orjson.loads(raw)
            shared = _shared_of(owner, document)
            moment = None if shared is None else due_at(shared, channel, self.settings)
            if moment is None or moment > now:
                continue
            held_out = in_holdout(owner, channel, self.settings.nudge_holdout_share)
            changed = cart_changed_at(shared)
            digest = hashlib.sha1(raw).hexdigest()
            found.append(DueCart(owner, document, shared, changed, held_out, digest))
        return found, self._forget(gone)

    def _forget(self, owners: list[str]) -> int:
        """Drop owners whose document is gone (expired) from every channel's index. Checked
        again just before (the documents and the indexes are in different slots: a
        document written between the check and the ZREM loses its index entry until its
        cart next changes)."""
        if not owners:
            return 0
        exists = run_calls(self.client, [Call(("EXISTS", self._document_key(o))) for o in owners])
        doomed = [o for o, n in zip(owners, exists, strict=True) if n == 0]
        if doomed:
            calls = [
                Call(("ZREM", self.keys.cart_index(c), *doomed)) for c in OFFSITE_NUDGE_CHANNELS
            ]
            run_calls(self.client, calls)
        return len(doomed)

    def _take_up_to(
        self, channel: str, due: list[DueCart], wanted: int, now: float
    ) -> tuple[list[DueCart], int]:
        """Run the take script over ``due`` in order, never handing it more claims than are
        still ``wanted`` (a cart it claims must be returned); held-out carts ride along and
        are recorded. Returns every cart taken, held out ones included, and how many
        others left the index (taken before)."""
        taken: list[DueCart] = []
        dropped = claimed = 0
        rest = list(due)
        while rest and claimed < wanted:
            chunk: list[DueCart] = []
            claims = 0
            while rest and claims < wanted - claimed:
                chunk.append(rest.pop(0))
                claims += not chunk[-1].held_out
            got, before = self._run_take(channel, chunk, now)
            taken.extend(got)
            dropped += len(before)
            claimed += sum(1 for cart in got if not cart.held_out)
        return taken, dropped

    def _run_take(
        self, channel: str, carts: list[DueCart], now: float
    ) -> tuple[list[DueCart], list[DueCart]]:
        """Take ``carts`` (each in its owner's slot), then count them and drop them, and
        those taken before, from the channel's index. Leased owners are left for later
        (their stale leases resolved)."""
        calls = [self._take_call(channel, cart, now, offsite=True) for cart in carts]
        replies = run_calls(self.client, calls)
        failed = next((r for r in replies if isinstance(r, Exception)), None)
        if failed is not None:
            raise failed
        taken = [c for c, r in zip(carts, replies, strict=True) if r == TAKEN]
        before = [c for c, r in zip(carts, replies, strict=True) if r == TAKEN_BEFORE]
        leased = [c for c, r in zip(carts, replies, strict=True) if r == LEASED]
        self._count_taken([(channel, cart, now) for cart in taken], offsite=True)
        if taken or before:
            self.client.zrem(self.keys.cart_index(channel), *(c.owner for c in taken + before))
        if leased:
            self._settle_leases([c.owner for c in leased], now)
        return taken, before

    def _count_taken(self, taken: list[tuple[str, DueCart, float]], offsite: bool) -> None:
        """Add the counters of carts just taken (``{marketing}``)."""
        if not taken:
            return
        pipe = self.client.pipeline(transaction=False)
        for channel, cart, now in taken:
            prefix = f"{utc_day(now)}|{channel}|"
            pipe.hincrby(self.keys.nudge_stats(), prefix + "eligible", 1)
            if cart.held_out:
                pipe.hincrby(self.keys.nudge_stats(), prefix + "held_out", 1)
            elif offsite:
                pipe.hincrby(self.keys.nudge_stats(), prefix + "claimed", 1)
        pipe.execute()

    def _settle_leases(self, owners: list[str], now: float) -> None:
        """Resolve the stale customer leases among ``owners`` (a writer died holding it)."""
        users = [o.partition(":")[2] for o in owners if o.startswith("u:")]
        values = mget_any(self.client, [self.keys.customer_lease(u) for u in users])
        stale_ms = self.settings.customer_lease_stale_seconds * 1000
        relay = Relay(self.client, self.keys, self.settings)
        for user_id, value in zip(users, values, strict=True):
            if value and now * 1000 - int(value.decode().rpartition("|")[2]) >= stale_ms:
                resolve_lease(self.client, self.keys, relay, user_id, value)

    def _take_call(self, channel: str, cart: DueCart, now: float, offsite: bool) -> Call:
        """The take script's call for one cart (see ``_TAKE``)."""
        state = self.keys.nudge_state(cart.owner)
        kind, _, name = cart.owner.partition(":")
        lease = self.keys.customer_lease(name) if kind == "u" else state
        args: list[Any] = [
            channel,
            repr(now),
            self.settings.nudge_cap_per_week if offsite else -1,
            WEEK,
            self.settings.profile_ttl_days * 86400,
            "holdout" if cart.held_out else "claim",
            repr(cart.changed),
            cart.digest,
        ]
        return Call.lua(_TAKE, [state, lease, self._document_key(cart.owner)], args)

    def _document_key(self, owner: str) -> str:
        kind, _, name = owner.partition(":")
        return self.keys.customer(name) if kind == "u" else self.keys.visitor_profile(name)


def _shared_of(owner: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """The cart-and-purchases document inside an owner's document; None for a visitor
    document whose cart has moved to a customer (an index entry left from before)."""
    if owner.startswith("u:"):
        return document
    if document.get("user_id"):
        return None
    return document.get("shared")
