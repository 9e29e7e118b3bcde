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
- ``nudge_stats(day)``: HASH ``<UTC day>|<channel>|<counter>`` -> count or value
  (``recsvc.core.nudge_report`` lists the counters), one per day, expiring
  ``analytics_retention_days`` after it (``recsvc.store.funnel.retention_ttl``).

Claims are one Lua script (``_TAKE``): per candidate it checks that the index still holds
the cart the caller saw, that the channel has not had this cart yet and, for a claim, the
owner's weekly cap (a held-out chance is recorded whatever the cap, as in the backtest),
then marks it and counts it, all in one step, so two senders calling at once
never get the same cart and a counter never counts one twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import redis
from redis.exceptions import NoScriptError

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
from recsvc.settings import Settings
from recsvc.store.chance_writer import Chance, ChanceWriter
from recsvc.store.funnel import retention_ttl

# Events whose nudge bookkeeping needs the owner's nudge state.
ATTRIBUTION_TYPES = frozenset({"nudge_sent", "nudge_impression", "nudge_click", "purchase"})
_RELEVANT_TYPES = ATTRIBUTION_TYPES | CART_EVENTS
# Index entries read per round trip while looking for due carts.
PAGE_SIZE = 200

# Reads several hashes in one round trip on a connection that holds a WATCH (a pipeline in
# immediate mode sends one command per call). KEYS: the hashes. Read-only.
_READ_HASHES = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""

# Takes carts for a channel, once per cart. KEYS[1] the channel's cart index (a taken cart
# leaves it), KEYS[2] today's stats hash,
# KEYS[3..] each candidate's nudge state. ARGV: channel, now, stats field prefix
# ("<day>|<channel>|"), cap (negative: no cap, no claims kept: the onsite rule), window of
# the cap in seconds, state TTL in seconds (0: none), check index (1/0), the stats hash's
# TTL in seconds, then per candidate: owner, mode ("claim" or "holdout"), cart (its
# cart_changed_at).
# Returns the 1-based positions of the candidates taken.
_TAKE = """
local channel, now, prefix = ARGV[1], ARGV[2], ARGV[3]
local cap, week, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local check_index = ARGV[7] == '1'
local stats_ttl = ARGV[8]
local now_n = tonumber(now)
local cycle = {'claimed_at', 'holdout_at', 'sent_at', 'clicked_at', 'recovered_at',
               'recovered_order'}
local taken = {}
for i = 3, #KEYS do
  local state = KEYS[i]
  local at = 9 + (i - 3) * 3
  local owner, mode, cart = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local cart_n = tonumber(cart)
  local fresh = true
  if check_index then
    local indexed = redis.call('ZSCORE', KEYS[1], owner)
    fresh = indexed ~= false and tonumber(indexed) == cart_n
  end
  local had = redis.call('HGET', state, channel .. ':cart')
  if fresh and check_index and had and tonumber(had) == cart_n then
    redis.call('ZREM', KEYS[1], owner)  -- this cart was taken already: it waits no more
  end
  if fresh and not (had and tonumber(had) == cart_n) then
    local recent = {}
    local claims = redis.call('HGET', state, 'claims')
    if claims then
      for t in string.gmatch(claims, '%S+') do
        if now_n - tonumber(t) < week then table.insert(recent, t) end
      end
    end
    -- The cap limits sends only: a held-out chance is recorded whatever the cap, as the
    -- backtest (recsvc.marketing.nudge_sim) decides the holdout before the cap.
    if mode == 'holdout' or cap < 0 or #recent < cap then
      for _, name in ipairs(cycle) do redis.call('HDEL', state, channel .. ':' .. name) end
      redis.call('HSET', state, channel .. ':cart', cart)
      if mode == 'holdout' then
        redis.call('HSET', state, channel .. ':holdout_at', now)
        redis.call('HINCRBY', KEYS[2], prefix .. 'held_out', 1)
      else
        redis.call('HSET', state, channel .. ':claimed_at', now)
        if cap >= 0 then
          table.insert(recent, now)
          redis.call('HSET', state, 'claims', table.concat(recent, ' '))
          redis.call('HINCRBY', KEYS[2], prefix .. 'claimed', 1)
        end
      end
      redis.call('HINCRBY', KEYS[2], prefix .. 'eligible', 1)
      redis.call('EXPIRE', KEYS[2], stats_ttl)
      if ttl > 0 then redis.call('EXPIRE', state, ttl) end
      if check_index then redis.call('ZREM', KEYS[1], owner) end
      table.insert(taken, i - 2)
    end
  end
end
return taken
"""

# Drops an owner whose document is gone (expired) from every channel's index: KEYS[1] the
# document, KEYS[2..] the indexes; ARGV[1] owner. Conditional, so an entry written
# meanwhile with its document stays.
_FORGET = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1
"""


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

    ``load`` runs inside the batch's WATCH; ``after_event`` after each record is applied;
    ``queue`` inside its MULTI.
    """

    def __init__(self, keys: KeySpace, settings: Settings, now: float) -> None:
        self.keys = keys
        self.settings = settings
        self.now = now  # the batch's time: counters' TTLs count from it
        self.states: dict[str, dict[str, str]] = {}
        self.changed: dict[str, dict[str, str]] = defaultdict(dict)
        self.removed: dict[str, set[str]] = defaultdict(set)
        self.moved: set[str] = set()  # states moved to a customer on login: deleted
        # owner -> its shared document; read when queued, so the batch's last state counts.
        self.carts: dict[str, dict[str, Any]] = {}
        self.gone: set[str] = set()
        self.counts: Counter[str] = Counter()

    def load(self, pipe: redis.client.Pipeline, owners: list[str]) -> None:
        """Watch and read the nudge state of ``owners`` (usually none: most batches carry no
        nudge event nor purchase, and then this costs nothing)."""
        if not owners:
            return
        state_keys = [self.keys.nudge_state(owner) for owner in owners]
        pipe.watch(*state_keys)
        replies = pipe.eval(_READ_HASHES, len(state_keys), *state_keys)
        self.states = {owner: _hash(flat) for owner, flat in zip(owners, replies, strict=True)}

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

    def queue(self, pipe: redis.client.Pipeline) -> None:
        """The index, state and counter writes, inside the batch's MULTI."""
        for index in (self.keys.cart_index(c) for c in OFFSITE_NUDGE_CHANNELS):
            for owner in self.gone:
                pipe.zrem(index, owner)
            for owner, shared in self.carts.items():
                changed = cart_changed_at(shared)
                if changed is None:
                    pipe.zrem(index, owner)
                else:
                    # An unchanged cart a channel took already may come back here (a cart
                    # event that changed nothing): the claim script drops it again.
                    pipe.zadd(index, {owner: changed})
        ttl = self.settings.profile_ttl_days * 86400
        for owner in self.moved:
            pipe.delete(self.keys.nudge_state(owner))
        for owner, fields in self.removed.items():
            if fields and owner not in self.moved:
                pipe.hdel(self.keys.nudge_state(owner), *fields)
        for owner, fields in self.changed.items():
            key = self.keys.nudge_state(owner)
            if fields and owner not in self.moved:
                pipe.hset(key, mapping=fields)
                if ttl:
                    pipe.expire(key, ttl)
        retention = self.settings.analytics_retention_days
        for field, amount in self.counts.items():
            day = field.partition("|")[0]
            ttl = retention_ttl(day, retention, self.now)
            if ttl <= 0:
                continue  # a day past its retention: its counters are gone already
            stats = self.keys.nudge_stats(day)
            if field.rpartition("|")[2] not in VALUE_COUNTERS:
                pipe.hincrby(stats, field, int(amount))
            elif amount:
                pipe.hincrbyfloat(stats, field, round(amount, 2))
            pipe.expire(stats, ttl)


# --- claims ------------------------------------------------------------------------------
@dataclass
class DueCart:
    """An owner's cart due for a nudge, as read for a claim."""

    owner: str
    document: dict[str, Any]  # the visitor document (``v:``) or the customer document (``u:``)
    shared: dict[str, Any]  # cart and purchases
    changed: float  # cart_changed_at: the cart's identity for "once per cart"
    held_out: bool


class NudgeStore:
    def __init__(self, client: redis.Redis, keys: KeySpace, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self._take = client.register_script(_TAKE)
        self._forget = client.register_script(_FORGET)
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
            due, forgotten = self._due(channel, [_decode(owner) for owner, _ in page], now)
            taken = self._take_up_to(channel, due, limit - len(claimed), now)
            claimed.extend(cart for cart in taken if not cart.held_out)
            # What was taken or forgotten left the index; the rest of the page stays ahead.
            offset += len(page) - len(taken) - forgotten
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
        """The take script for each chance, all in one pipeline (bare EVALSHA: a registered
        script on a pipeline would add a SCRIPT EXISTS round trip); loaded and run again
        where Redis does not have it (restarted, flushed)."""
        replies = self._pipe_takes(chances)
        missing = [c for c, r in zip(chances, replies, strict=True) if isinstance(r, NoScriptError)]
        if missing:
            self.client.script_load(_TAKE)
            replies = [r for r in replies if not isinstance(r, NoScriptError)]
            replies += self._pipe_takes(missing)
        failed = next((r for r in replies if isinstance(r, Exception)), None)
        if failed is not None:
            raise failed

    def _pipe_takes(self, chances: list[Chance]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for chance in chances:
            due = DueCart(chance.owner, {}, {}, chance.changed, chance.held_out)
            keys, args = self._take_call(chance.channel, [due], chance.now, offsite=False)
            pipe.evalsha(self._take.sha, len(keys), *keys, *args)
        return pipe.execute(raise_on_error=False)

    def counts(
        self, start: date, end: date, channels: Iterable[str]
    ) -> dict[str, dict[str, float]]:
        """Counters summed over the UTC days ``start``..``end`` (inclusive), per channel,
        with this process's queued onsite chances written first."""
        self._chances.flush()
        channels = list(channels)
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        wanted = [(channel, counter) for channel in channels for counter in COUNTERS]
        pipe = self.client.pipeline(transaction=False)
        for day in days:  # one hash per day
            pipe.hmget(self.keys.nudge_stats(day), [stat_field(day, *cc) for cc in wanted])
        summed: dict[str, dict[str, float]] = {c: dict.fromkeys(COUNTERS, 0) for c in channels}
        for day_values in pipe.execute():
            for (channel, counter), raw in zip(wanted, day_values, strict=True):
                if raw is None:
                    continue
                value = float(raw) if counter in VALUE_COUNTERS else int(raw)
                summed[channel][counter] += value
        return summed

    # --- claiming, step by step ----------------------------------------------------------
    def _due(self, channel: str, owners: list[str], now: float) -> tuple[list[DueCart], int]:
        """The owners whose documents say a nudge on ``channel`` is due now (the core rules
        decide, the index only shortlisted them), and how many owners were dropped from the
        indexes because their document is gone."""
        document_keys = [self._document_key(owner) for owner in owners]
        found, forgotten = [], 0
        for owner, key, raw in zip(
            owners, document_keys, self.client.mget(document_keys), strict=True
        ):
            if raw is None:
                indexes = [self.keys.cart_index(c) for c in OFFSITE_NUDGE_CHANNELS]
                forgotten += self._forget(keys=[key, *indexes], args=[owner])
                continue
            document = orjson.loads(raw)
            shared = _shared_of(owner, document)
            moment = None if shared is None else due_at(shared, channel, self.settings)
            if moment is None or moment > now:
                continue
            held_out = in_holdout(owner, channel, self.settings.nudge_holdout_share)
            changed = cart_changed_at(shared)
            found.append(DueCart(owner, document, shared, changed, held_out))
        return found, forgotten

    def _take_up_to(
        self, channel: str, due: list[DueCart], wanted: int, now: float
    ) -> list[DueCart]:
        """Run the claim script over ``due`` in order, never handing it more claims than are
        still ``wanted`` (a cart it claims must be returned); held-out carts ride along and
        are recorded. Returns every cart taken, held out ones included."""
        taken: list[DueCart] = []
        claimed = 0
        rest = list(due)
        while rest and claimed < wanted:
            chunk: list[DueCart] = []
            claims = 0
            while rest and claims < wanted - claimed:
                chunk.append(rest.pop(0))
                claims += not chunk[-1].held_out
            got = self._run_take(channel, chunk, now, offsite=True)
            taken.extend(got)
            claimed += sum(1 for cart in got if not cart.held_out)
        return taken

    def _run_take(
        self, channel: str, carts: list[DueCart], now: float, offsite: bool
    ) -> list[DueCart]:
        if not carts:
            return []
        keys, args = self._take_call(channel, carts, now, offsite)
        taken = self._take(keys=keys, args=args)
        return [carts[position - 1] for position in taken]

    def _take_call(
        self, channel: str, carts: list[DueCart], now: float, offsite: bool
    ) -> tuple[list[str], list[Any]]:
        """The take script's keys and arguments (see ``_TAKE``)."""
        args: list[Any] = [
            channel,
            repr(now),
            f"{utc_day(now)}|{channel}|",
            self.settings.nudge_cap_per_week if offsite else -1,
            WEEK,
            self.settings.profile_ttl_days * 86400,
            1 if offsite else 0,
            retention_ttl(utc_day(now), self.settings.analytics_retention_days, now),
        ]
        for cart in carts:
            args += [cart.owner, "holdout" if cart.held_out else "claim", repr(cart.changed)]
        keys = [
            self.keys.cart_index(channel),
            self.keys.nudge_stats(utc_day(now)),
            *(self.keys.nudge_state(cart.owner) for cart in carts),
        ]
        return keys, args

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
