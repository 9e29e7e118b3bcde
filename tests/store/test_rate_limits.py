"""Token buckets on a real Redis: burst, refill, all-or-nothing, expiry."""

import time

import pytest

from recsvc.store.rate_limits import BatchedTakes, Bucket, RateLimiter, retry_after


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


# --- reads charged a few at a time --------------------------------------------------------
def slow(keys, name, burst=100):
    """A bucket that does not refill within a test: only its burst counts."""
    return bucket(keys, name, rate=0.001, burst=burst)


def served_before_refusal(batched: BatchedTakes, buckets, most: int = 1000) -> int:
    for n in range(most):
        if batched.take(buckets) > 0:
            return n
    raise AssertionError("never refused")


def tokens_left(redis_conn, key) -> float:
    return float(redis_conn.hget(key, "tokens"))


def test_takes_below_a_batch_stay_in_the_process(limiter, keys, redis_conn):
    batched = BatchedTakes(limiter, batch=8)
    address = slow(keys, "address")
    for _ in range(7):
        assert batched.take([address]) == 0.0
    assert not redis_conn.exists(address.key)
    assert batched.take([address]) == 0.0  # the eighth charges all eight
    assert tokens_left(redis_conn, address.key) == pytest.approx(92, abs=0.01)
    assert batched.owed == {}


def test_a_due_bucket_charges_every_bucket_of_the_request_what_it_owes(limiter, keys, redis_conn):
    batched = BatchedTakes(limiter, batch=8)
    address, visitor = slow(keys, "address"), slow(keys, "visitor")
    for _ in range(5):
        batched.take([address])
    for _ in range(3):
        batched.take([address, visitor])  # the last brings the address to 8
    assert tokens_left(redis_conn, address.key) == pytest.approx(92, abs=0.01)
    assert tokens_left(redis_conn, visitor.key) == pytest.approx(97, abs=0.01)


def test_a_flood_is_refused_within_a_batch_of_the_burst(limiter, keys):
    batched = BatchedTakes(limiter, batch=8)
    attacker = slow(keys, "attacker")
    served = served_before_refusal(batched, [attacker])
    assert 100 - 7 <= served <= 100 + 7
    # Refused takes owe nothing: every later one is refused too, and the debt stays
    # below a batch.
    assert all(batched.take([attacker]) > 0 for _ in range(50))
    assert batched.owed.get(attacker.key, 0) <= 7


def test_two_processes_let_through_at_most_a_batch_each_beyond_the_burst(limiter, keys):
    first, second = BatchedTakes(limiter, batch=8), BatchedTakes(limiter, batch=8)
    attacker = slow(keys, "attacker")
    served = 0
    for n in range(1000):
        if (first if n % 2 else second).take([attacker]) > 0:
            break
        served += 1
    assert served <= 100 + 2 * 7


@pytest.mark.parametrize("batch, burst", [(1, 100), (8, 5)])
def test_a_batch_of_one_or_a_small_burst_charges_every_take(limiter, keys, batch, burst):
    batched = BatchedTakes(limiter, batch=batch)
    assert served_before_refusal(batched, [slow(keys, "exact", burst=burst)]) == burst


def test_debts_are_kept_for_the_most_recent_buckets_only(limiter, keys):
    batched = BatchedTakes(limiter, batch=8, capacity=50)
    for n in range(500):
        batched.take([slow(keys, f"visitor-{n}")])
    assert len(batched.owed) == 50
    assert f"{keys.rate_bucket('key', 'visitor-499')}" in batched.owed


def test_a_batch_under_one_is_refused(limiter):
    with pytest.raises(ValueError, match="at least 1"):
        BatchedTakes(limiter, batch=0)
