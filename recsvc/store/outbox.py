"""Ingestion across hash slots: per-visitor commits with an outbox, relayed idempotently.

A visitor's batch commits in the visitor's own slot (``{v:<id>}``): the visitor document,
its nudge state and one *outbox entry* in one Lua script (``COMMIT``), conditional on the
documents being what the writer read (a SHA-1 of each: optimistic concurrency without
WATCH, so the commits of a whole batch go out in one pipeline). That commit is the moment
an event is accepted. Everything else the batch changes lives in other slots and is
*relayed* from the outbox entry, each step idempotent:

- the customer document and customer nudge state (``{u:<id>}``): written only by the holder
  of the customer's lease (``customer_lease``, taken before the documents were read), and
  the write releases the lease, so it happens once (``APPLY_CUSTOMER``);
- the funnel HyperLogLogs (``{funnel}``): PFADD is idempotent;
- the nudge counters and cart indexes (``{marketing}``): counters added once per entry id
  (marks kept ``MARKETING_MARK_SECONDS``); index changes are plain ZADD/ZREM;
- the event stream shard (``{events:<k>}``): appended once per entry id (marks kept
  ``STREAM_MARK_SECONDS``; past that the log readers drop repeated event ids anyway).

Then the entry leaves the outbox, and last the batch's *pending mark* (a ZSET member in
the stream shard's slot, written before the commit) is removed. A writer that dies (or
whose Redis call fails) between commit and relay leaves the mark: ``sweep`` (run by the
exporter) relays the outboxes of marks older than a few seconds. ``docs/redis.md`` lists
the failure cases.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from redis.exceptions import NoScriptError

from recsvc.core.events import OFFSITE_NUDGE_CHANNELS
from recsvc.keys import KeySpace
from recsvc.settings import Settings
from recsvc.store.stream import encode_record

log = logging.getLogger(__name__)

STREAM_MARK_SECONDS = 600
MARKETING_MARK_SECONDS = 86400
# A pending mark this old is the sweeper's: its writer is dead or its relay failed.
SWEEP_AFTER_SECONDS = 10.0
# Pending marks a sweep takes per shard.
SWEEP_LIMIT = 500

# The visitor's commit. KEYS: profile, nudge state, outbox, fence. ARGV: SHA-1 of the
# profile as read ("" when there was none), digest of the nudge state as read ("-": not
# read, not written), the batch's lease token, new profile JSON, TTL seconds (0: none),
# outbox entry JSON, then the nudge state writes: drop (1/0), n set, field/value pairs,
# fields to unset. Returns 1 committed, 0 changed since read, -1 fenced (its customer lease
# was taken over: the batch must start again).
COMMIT = """
if redis.call('GET', KEYS[4]) == ARGV[3] then return -1 end
local current = redis.call('GET', KEYS[1])
local seen = current and redis.sha1hex(current) or ''
if seen ~= ARGV[1] then return 0 end
if ARGV[2] ~= '-' then
  local flat = redis.call('HGETALL', KEYS[2])
  if redis.sha1hex(table.concat(flat, '\\n')) ~= ARGV[2] then return 0 end
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[4], 'EX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[4])
end
redis.call('RPUSH', KEYS[3], ARGV[6])
if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
local at = 7
if ARGV[2] ~= '-' and ARGV[at] ~= '-' then
  if ARGV[at] == '1' then
    redis.call('DEL', KEYS[2])
  else
    local n = tonumber(ARGV[at + 1])
    for i = 0, n - 1 do
      redis.call('HSET', KEYS[2], ARGV[at + 2 + 2 * i], ARGV[at + 3 + 2 * i])
    end
    for i = at + 2 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
    if ttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
  end
end
return 1
"""

# A customer's documents from a committed entry, once. KEYS: lease, customer document,
# customer nudge state. ARGV: lease token, document JSON, TTL, then nudge writes as in
# COMMIT ("-" first when none). 1 written (lease released), 0 not ours (written already).
APPLY_CUSTOMER = """
local lease = redis.call('GET', KEYS[1])
if not lease or string.sub(lease, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[2])
end
local at = 4
if ARGV[at] ~= '-' then
  if ARGV[at] == '1' then
    redis.call('DEL', KEYS[3])
  else
    local n = tonumber(ARGV[at + 1])
    for i = 0, n - 1 do
      redis.call('HSET', KEYS[3], ARGV[at + 2 + 2 * i], ARGV[at + 3 + 2 * i])
    end
    for i = at + 2 + 2 * n, #ARGV do redis.call('HDEL', KEYS[3], ARGV[i]) end
    if ttl > 0 and redis.call('EXISTS', KEYS[3]) == 1 then redis.call('EXPIRE', KEYS[3], ttl) end
  end
end
redis.call('DEL', KEYS[1])
return 1
"""

# Releases a lease if it still holds the given value. KEYS: lease. ARGV: value.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Settles a stale lease's batch in its visitor's slot. KEYS: outbox, fence. ARGV: token.
# Returns the committed outbox entry holding the token, or fences the token off (its
# commit, should it still come, fails) and returns false.
RESOLVE = """
local prefix = '{"t":"' .. ARGV[1] .. '"'
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(entry, 1, #prefix) == prefix then return entry end
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400)
return false
"""

# Appends entries to a stream shard once each. KEYS: stream, marks. ARGV: now ms, mark
# retention ms, then per entry: id, record count, records (JSON). Returns entries appended.
RELAY_STREAM = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
local at, added = 3, 0
while at <= #ARGV do
  local id, n = ARGV[at], tonumber(ARGV[at + 1])
  if not redis.call('ZSCORE', KEYS[2], id) then
    for i = 1, n do redis.call('XADD', KEYS[1], '*', 'e', ARGV[at + 1 + i]) end
    redis.call('ZADD', KEYS[2], now, id)
    added = added + 1
  end
  at = at + 2 + n
end
return added
"""

# Adds entries' nudge counters once each and applies their cart index changes. KEYS:
# marks, stats, then one cart index per off-site channel. ARGV: now ms, retention ms,
# channel count, then per entry: id, n counters, (field, value)..., n index changes,
# (owner, score or "")... . Integral values use HINCRBY, others HINCRBYFLOAT.
RELAY_MARKETING = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local channels = tonumber(ARGV[3])
local at = 4
while at <= #ARGV do
  local id, n = ARGV[at], tonumber(ARGV[at + 1])
  at = at + 2
  if n > 0 and not redis.call('ZSCORE', KEYS[1], id) then
    for i = 0, n - 1 do
      local field, value = ARGV[at + 2 * i], ARGV[at + 2 * i + 1]
      if string.find(value, '[.eE]') then
        redis.call('HINCRBYFLOAT', KEYS[2], field, value)
      else
        redis.call('HINCRBY', KEYS[2], field, value)
      end
    end
    redis.call('ZADD', KEYS[1], now, id)
  end
  at = at + 2 * n
  local m = tonumber(ARGV[at])
  for i = 0, m - 1 do
    local owner, score = ARGV[at + 1 + 2 * i], ARGV[at + 2 + 2 * i]
    for c = 1, channels do
      if score == '' then
        redis.call('ZREM', KEYS[2 + c], owner)
      else
        redis.call('ZADD', KEYS[2 + c], score, owner)
      end
    end
  end
  at = at + 1 + 2 * m
end
return 1
"""


@dataclass(frozen=True)
class Call:
    """One command for ``run_calls``: a plain command, or an EVALSHA of ``script``."""

    args: tuple[Any, ...]
    script: str | None = None

    @staticmethod
    def lua(script: str, keys: list[str], args: list[Any]) -> Call:
        return Call(("EVALSHA", _sha(script), len(keys), *keys, *args), script)


_SHAS: dict[str, str] = {}


def _sha(script: str) -> str:
    if script not in _SHAS:
        import hashlib

        _SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    return _SHAS[script]


def run_calls(client: redis.Redis, calls: list[Call]) -> list[Any]:
    """Run ``calls`` in one non-transactional pipeline (spread over the masters on a
    cluster); a script Redis does not have is loaded and only its calls run again.
    Replies come back in order, errors as exception objects."""
    if not calls:
        return []
    replies = _pipeline(client, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {calls[i].script for i in missing if calls[i].script}:
            client.script_load(script)
        for i, reply in zip(missing, _pipeline(client, [calls[i] for i in missing]), strict=True):
            replies[i] = reply
    return replies


def _pipeline(client: redis.Redis, calls: list[Call]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for call in calls:
        pipe.execute_command(*call.args)
    return pipe.execute(raise_on_error=False)


def nudge_args(writes: dict[str, Any] | None) -> list[Any]:
    """A nudge state change (``NudgeLedger.state_writes``) as script arguments."""
    if writes is None:
        return ["-"]
    if writes["drop"]:
        return ["1"]
    pairs = [item for pair in writes["set"].items() for item in pair]
    return ["0", len(writes["set"]), *pairs, *writes["unset"]]


def hash_digest(state: dict[bytes, bytes]) -> str:
    """The digest COMMIT compares: SHA-1 of HGETALL's fields and values joined by
    newlines, in the order Redis returned them (unchanged while the hash is)."""
    import hashlib

    return hashlib.sha1(b"\n".join(item for pair in state.items() for item in pair)).hexdigest()


# --- relaying ----------------------------------------------------------------------------
class Relay:
    """Relays committed outbox entries (dicts, see ``recsvc.store.events``) to the other
    slots, and sweeps the entries that writers left behind."""

    def __init__(self, client: redis.Redis, keys: KeySpace, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.ttl = settings.profile_ttl_days * 86400

    def relay(self, entries: list[tuple[dict[str, Any], bytes]]) -> int:
        """Relay ``(entry, raw JSON)`` pairs; each fully relayed entry leaves its outbox and
        then its pending mark. Returns how many were finished; the rest stay for ``sweep``
        (a failed step is logged, never raised: the events are accepted already)."""
        if not entries:
            return 0
        now_ms = int(time.time() * 1000)
        calls, owners = self._relay_calls([e for e, _ in entries], now_ms)
        try:
            replies = run_calls(self.client, calls)
        except redis.RedisError as error:
            log.warning("relay failed; the sweeper will finish it: %s", error)
            return 0
        failed = {owner for owner, reply in zip(owners, replies, strict=True) if _failed(reply)}
        done = [
            (e, raw) for e, raw in entries if e["t"] + e["v"] not in failed and "*" not in failed
        ]
        for reply in replies:
            if _failed(reply):
                log.warning("relay step failed; the sweeper will finish it: %s", reply)
                break
        return self._finish(done)

    def _relay_calls(
        self, entries: list[dict[str, Any]], now_ms: int
    ) -> tuple[list[Call], list[str]]:
        """The relay's calls, and for each the entry it belongs to (``token + visitor``;
        ``"*"`` for calls shared by several entries)."""
        calls: list[Call] = []
        owners: list[str] = []
        by_shard: dict[int, list[Any]] = defaultdict(list)
        shard_owners: dict[int, list[str]] = defaultdict(list)
        marketing: list[Any] = []
        marketing_owners: list[str] = []
        funnel: dict[str, set[str]] = defaultdict(set)
        funnel_owners: dict[str, list[str]] = defaultdict(list)
        for entry in entries:
            owner = entry["t"] + entry["v"]
            for user_id, customer in entry.get("c", {}).items():
                calls.append(self._apply_customer(entry["t"], user_id, customer))
                owners.append(owner)
            for key, members in entry.get("f", {}).items():
                funnel[key].update(members)
                funnel_owners[key].append(owner)
            counts = entry.get("n", {})
            index = entry.get("i", {})
            if counts or index:
                if counts and now_ms - entry["at"] > MARKETING_MARK_SECONDS * 1000 * 0.9:
                    # Its mark may have expired: adding again could count twice.
                    log.error("outbox entry too old to count its nudge counters: %s", counts)
                    counts = {}
                marketing += [f"{entry['t']}:{entry['v']}", len(counts)]
                marketing += [x for f, v in counts.items() for x in (f, _number(v))]
                marketing += [len(index)]
                marketing += [
                    x for o, s in index.items() for x in (o, "" if s is None else repr(s))
                ]
                marketing_owners.append(owner)
            records = [encode_record(r) for r in entry["r"]]
            by_shard[entry["s"]] += [f"{entry['t']}:{entry['v']}", len(records), *records]
            shard_owners[entry["s"]].append(owner)
        for key, members in funnel.items():
            calls.append(Call(("PFADD", key, *sorted(members))))
            owners.append(funnel_owners[key][0] if len(funnel_owners[key]) == 1 else "*")
        if marketing:
            channels = [self.keys.cart_index(c) for c in OFFSITE_NUDGE_CHANNELS]
            calls.append(
                Call.lua(
                    RELAY_MARKETING,
                    [self.keys.marketing_relayed(), self.keys.nudge_stats(), *channels],
                    [now_ms, MARKETING_MARK_SECONDS * 1000, len(channels), *marketing],
                )
            )
            owners.append(marketing_owners[0] if len(marketing_owners) == 1 else "*")
        for shard, args in by_shard.items():
            keys = [self.keys.events_stream(shard), self.keys.events_relayed(shard)]
            calls.append(Call.lua(RELAY_STREAM, keys, [now_ms, STREAM_MARK_SECONDS * 1000, *args]))
            owners.append(shard_owners[shard][0] if len(shard_owners[shard]) == 1 else "*")
        return calls, owners

    def _apply_customer(self, token: str, user_id: str, customer: dict[str, Any]) -> Call:
        keys = [
            self.keys.customer_lease(user_id),
            self.keys.customer(user_id),
            self.keys.nudge_state(f"u:{user_id}"),
        ]
        args = [token, orjson.dumps(customer["doc"]), self.ttl, *nudge_args(customer.get("n"))]
        return Call.lua(APPLY_CUSTOMER, keys, args)

    def _finish(self, done: list[tuple[dict[str, Any], bytes]]) -> int:
        """Remove relayed entries from their outboxes, then their pending marks (in that
        order: a mark gone with its entry still there would hide the entry from the
        sweeper)."""
        if not done:
            return 0
        try:
            run_calls(
                self.client, [Call(("LREM", self.keys.outbox(e["v"]), 1, raw)) for e, raw in done]
            )
            marks: dict[int, list[str]] = defaultdict(list)
            for e, _ in done:
                marks[e["s"]].append(f"{e['v']}|{e['t']}")
            run_calls(
                self.client,
                [Call(("ZREM", self.keys.events_pending(k), *m)) for k, m in marks.items()],
            )
        except redis.RedisError as error:
            log.warning("relay clean-up failed; the sweeper will finish it: %s", error)
            return 0
        return len(done)

    # --- sweeping ------------------------------------------------------------------------
    def sweep(self, older_than: float = SWEEP_AFTER_SECONDS, limit: int = SWEEP_LIMIT) -> int:
        """Relay the outboxes of batches whose pending mark is older than ``older_than``
        seconds (their writer died, or its relay failed), in every stream shard; returns
        the entries relayed."""
        relayed = 0
        cutoff = int((time.time() - older_than) * 1000)
        for shard in range(self.settings.stream_shards):
            pending_key = self.keys.events_pending(shard)
            marks = self.client.zrangebyscore(pending_key, "-inf", cutoff, start=0, num=limit)
            if not marks:
                continue
            visitors = sorted({m.decode().rpartition("|")[0] for m in marks})
            raws = run_calls(
                self.client, [Call(("LRANGE", self.keys.outbox(v), 0, -1)) for v in visitors]
            )
            entries = [
                (orjson.loads(raw), raw) for reply in raws if not _failed(reply) for raw in reply
            ]
            relayed += self.relay(entries) if entries else 0
            # Marks whose visitor's outbox is empty now: relayed, or never committed.
            check = run_calls(self.client, [Call(("LLEN", self.keys.outbox(v))) for v in visitors])
            empty = {v for v, n in zip(visitors, check, strict=True) if n == 0}
            stale = [m for m in marks if m.decode().rpartition("|")[0] in empty]
            if stale:
                self.client.zrem(pending_key, *stale)
        return relayed


def resolve_lease(
    client: redis.Redis, keys: KeySpace, relay: Relay, user_id: str, value: bytes
) -> None:
    """Settle the lease ``value`` on ``user_id``'s documents (a stale one): relay its batch if
    that committed (which writes the customer and releases the lease), else fence the batch
    off in its visitor's slot and release the lease."""
    token, visitor_id, _ = value.decode().split("|")
    found = run_calls(
        client,
        [Call.lua(RESOLVE, [keys.outbox(visitor_id), keys.fence(visitor_id)], [token])],
    )[0]
    if isinstance(found, Exception):
        raise found
    if found:
        relay.relay([(orjson.loads(found), found)])
    else:
        run_calls(client, [Call.lua(RELEASE, [keys.customer_lease(user_id)], [value])])
    log.warning(
        "resolved a stale customer lease", extra={"user_id": user_id, "committed": bool(found)}
    )


def _failed(reply: Any) -> bool:
    return isinstance(reply, Exception)


def _number(value: float) -> str:
    """A counter increment as RELAY_MARKETING reads it: counts (ints) without a dot, values
    (floats) with one, so they go to HINCRBY and HINCRBYFLOAT."""
    return str(value) if isinstance(value, int) else repr(float(value))


def group_by_visitor(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records per visitor, in batch order, visitors in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["visitor_id"], []).append(record)
    return groups
