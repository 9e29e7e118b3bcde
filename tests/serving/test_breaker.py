import pytest
import redis

from recsvc.clock import ManualClock
from recsvc.serving.breaker import CircuitBreaker


def test_opens_after_consecutive_failures_and_recovers_after_a_good_trial():
    clock = ManualClock(0.0)
    breaker = CircuitBreaker(failures=3, reset_seconds=5.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(5.0)
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # nobody else while it runs
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_trial_opens_it_again():
    clock = ManualClock(0.0)
    breaker = CircuitBreaker(failures=1, reset_seconds=2.0, clock=clock)
    breaker.failure()
    clock.advance(2.0)
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    clock.advance(1.0)
    assert not breaker.allow()


def test_a_success_resets_the_count():
    breaker = CircuitBreaker(failures=2)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def test_a_watched_block_counts_redis_failures_and_answers_as_successes():
    clock = ManualClock(0.0)
    breaker = CircuitBreaker(failures=2, reset_seconds=5.0, clock=clock)
    for _ in range(2):
        with pytest.raises(redis.ConnectionError), breaker.watching():
            raise redis.ConnectionError("down")
    assert breaker.state == "open" and not breaker.allow()
    clock.advance(5.0)
    assert breaker.allow()  # the half-open trial
    # Redis answered, even if the answer was an error of the caller's: closed again.
    with pytest.raises(ValueError), breaker.watching():
        raise ValueError("a 422, say")
    assert breaker.state == "closed"


def test_a_read_that_fails_for_another_reason_still_ends_the_trial():
    clock = ManualClock(0.0)
    breaker = CircuitBreaker(failures=1, reset_seconds=5.0, clock=clock)
    breaker.call(lambda: (_ for _ in ()).throw(redis.ConnectionError("down")), None)
    clock.advance(5.0)

    def bad_reply():
        raise ValueError("Redis answered, the caller could not use it")

    with pytest.raises(ValueError):
        breaker.call(bad_reply, None)  # the half-open trial
    assert breaker.state == "closed" and breaker.allow()
