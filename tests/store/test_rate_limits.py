"""Token buckets on a real Redis: burst, refill, all-or-nothing, expiry."""

import time

import pytest

from recsvc.store.rate_limits import Bucket, RateLimiter, retry_after


@pytest.fixture
def limiter(redis_conn):
    return RateLimiter(redis_conn)


def bucket(keys, name, rate=10.0, burst=5, cost=1):
    return Bucket(keys.rate_bucket("key", name), rate, burst, cost)


def test_a_full_bucket_gives_its_burst_then_says_how_long_to_wait(limiter, keys):
    for _ in range(5):
        assert limiter.take([bucket(keys, "k")]) == 0.0
    wait = limiter.take([bucket(keys, "k")])
    assert 0.0 < wait <= 0.1  # one token at 10 a second


def test_it_refills_at_its_rate(limiter, keys):
    assert limiter.take([bucket(keys, "k", rate=20.0, burst=4, cost=4)]) == 0.0
    assert limiter.take([bucket(keys, "k", rate=20.0, burst=4, cost=2)]) > 0
    time.sleep(0.15)  # three tokens back
    assert limiter.take([bucket(keys, "k", rate=20.0, burst=4, cost=2)]) == 0.0


def test_a_request_is_charged_to_every_bucket_or_to_none(limiter, keys, redis_conn):
    empty = bucket(keys, "empty", burst=2, cost=2)
    assert limiter.take([empty]) == 0.0
    fresh = bucket(keys, "fresh", burst=10, cost=3)
    assert limiter.take([fresh, bucket(keys, "empty", burst=2, cost=1)]) > 0
    assert not redis_conn.exists(fresh.key)  # nothing was taken from the full one


def test_a_cost_above_the_burst_is_a_programming_error(limiter, keys):
    """It could never be taken; charging it as the burst would let a big batch through
    for less than it costs (the settings keep bursts at least a full batch)."""
    with pytest.raises(ValueError):
        limiter.take([bucket(keys, "k", burst=5, cost=6)])


def test_a_bucket_expires_once_it_would_be_full_again(limiter, keys, redis_conn):
    limiter.take([bucket(keys, "k", rate=10.0, burst=50)])  # 5 s to refill
    ttl_ms = redis_conn.pttl(keys.rate_bucket("key", "k"))
    assert 5000 < ttl_ms <= 6000


def test_retry_after_is_whole_seconds_at_least_one():
    assert retry_after(0.01) == 1 and retry_after(1.0) == 1 and retry_after(1.2) == 2
