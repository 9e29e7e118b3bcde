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
from collections.abc import Sequence
from dataclasses import dataclass

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


def retry_after(wait_seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header: at least 1."""
    return max(1, math.ceil(wait_seconds))
