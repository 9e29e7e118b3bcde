"""Token buckets in Redis: how much a caller may still send.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; taking
``cost`` tokens succeeds when the bucket holds that many. One Lua script takes from all of
a request's buckets (its API key's and its visitors') at once, on the server's clock
(``TIME``), so workers never disagree and a request is charged to every bucket or to none.
A bucket is a HASH (``tokens``, ``at``) under ``KeySpace.rate_bucket`` that expires once
it would be full again: an idle caller costs no memory, and the keys alive are at most
the callers of the last ``burst / rate`` seconds.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import redis

# KEYS: the buckets. ARGV: per bucket, rate (tokens a second), burst, cost. Returns "0"
# when every bucket had its cost (taken from each), else the seconds until every bucket
# would have it (nothing taken), as a string (Lua numbers come back as integers).
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local levels, wait = {}, 0
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = burst
  if state[1] then
    tokens = math.min(burst, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
  end
  levels[i] = tokens
  if tokens < cost then wait = math.max(wait, (cost - tokens) / rate) end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  redis.call('HSET', key, 'tokens', tostring(levels[i] - cost), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return '0'
"""


@dataclass(frozen=True)
class Bucket:
    """One bucket to take ``cost`` tokens from: ``key`` (``KeySpace.rate_bucket``), refilled
    at ``rate`` tokens a second up to ``burst``. ``cost`` is at most ``burst`` (more could
    never be taken: the settings make bursts at least a full batch)."""

    key: str
    rate: float
    burst: int
    cost: int


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(_TAKE)

    def take(self, buckets: Sequence[Bucket]) -> float:
        """Take from every bucket, or from none: 0.0 when taken, else the seconds until
        all of them would hold their cost. Raises redis errors (the caller decides whether
        to fail open)."""
        if not buckets:
            return 0.0
        args: list[float | int] = []
        for bucket in buckets:
            if bucket.cost > bucket.burst:
                raise ValueError(f"a cost of {bucket.cost} never fits a burst of {bucket.burst}")
            args += [bucket.rate, bucket.burst, bucket.cost]
        return float(self._take(keys=[bucket.key for bucket in buckets], args=args))


class BatchedTakes:
    """Tokens taken in this process and charged to Redis a few at a time (for reads).

    Charging every read costs a Redis round trip: a quarter of a similar-items request's
    CPU with the public key (``loadtests.bench_serving --auth public``). Instead each
    process counts what it let through per bucket and charges the count once it reaches
    the bucket's batch, ``min(batch, burst // 10)`` (at least 1: small bursts stay exact);
    a request that brings any of its buckets to its batch charges every one of its
    buckets all they are owed, or is refused and owes nothing more. So each process lets
    through at most ``batch - 1`` tokens a bucket that Redis has not counted yet: a bucket
    refuses at most ``processes x (batch - 1)`` reads late (a tenth of its burst per
    process at most), and its steady rate is the configured one, since what was let
    through is charged later. What a process owes is kept for its ``capacity`` most
    recent buckets; older debts are forgiven (at most ``batch - 1`` tokens each), so the
    memory never grows with the callers.
    """

    def __init__(self, limiter: RateLimiter, batch: int, capacity: int = 10_000) -> None:
        if batch < 1:
            raise ValueError(f"a batch of {batch}: at least 1 (1 charges every take)")
        self.limiter = limiter
        self.batch = batch
        self.capacity = capacity
        self.owed: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()  # gthread workers take from several threads

    def take(self, buckets: Sequence[Bucket]) -> float:
        """As :meth:`RateLimiter.take`; Redis is asked only when a bucket's batch is due."""
        with self._lock:
            if all(self.owed.get(b.key, 0) + b.cost < self.batch_of(b) for b in buckets):
                for bucket in buckets:
                    self._owe(bucket.key, bucket.cost)
                return 0.0
            due = [replace(b, cost=self.owed.get(b.key, 0) + b.cost) for b in buckets]
        wait = self.limiter.take(due)
        if wait == 0:
            with self._lock:
                for bucket in buckets:
                    self.owed.pop(bucket.key, None)
        return wait

    def batch_of(self, bucket: Bucket) -> int:
        return max(1, min(self.batch, bucket.burst // 10))

    def _owe(self, key: str, cost: int) -> None:
        self.owed[key] = self.owed.get(key, 0) + cost
        self.owed.move_to_end(key)
        if len(self.owed) > self.capacity:
            self.owed.popitem(last=False)


def retry_after(wait_seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header: at least 1."""
    return max(1, math.ceil(wait_seconds))
