"""Funnel counters: a range query counts unions, and every counter expires with its day's
retention (before: no TTL at all, and a day taken from the client's clock, so one request
of backdated events made 2,000 keys back to 1970 that stayed forever)."""

from datetime import UTC, date, datetime, timedelta

from recsvc.core.events import format_timestamp, new_event_id
from recsvc.core.funnel import FUNNEL_STEPS
from recsvc.store.events import EventWriter
from recsvc.store.funnel import FunnelStore, day_expiry, retention_ttl

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


NOW = T0 + timedelta(days=2)  # the service's clock when the batches arrive


def rec(kind, visitor, at, **fields):
    return {
        "id": new_event_id(),
        "type": kind,
        "visitor_id": visitor,
        "timestamp": format_timestamp(at),
        "received_at": format_timestamp(NOW),
        **fields,
    }


def test_day_expiry_is_the_end_of_the_day_plus_the_retention():
    end_of_day = datetime(2026, 3, 3, tzinfo=UTC)
    assert day_expiry("2026-03-02", 0) == end_of_day.timestamp()
    assert day_expiry("2026-03-02", 400) == (end_of_day + timedelta(days=400)).timestamp()
    assert retention_ttl("2026-03-02", 400, end_of_day.timestamp()) == 400 * 86400


def test_every_counter_expires_with_its_days_retention(redis_conn, keys, settings):
    writer = EventWriter(redis_conn, keys, settings.replace(analytics_retention_days=30))
    days = [T0, T0 + timedelta(days=1), T0 - timedelta(days=20)]
    writer.write([rec("page_view", f"v{n}", at, source="email") for n, at in enumerate(days)])
    counters = list(redis_conn.scan_iter(match=keys.funnel_counter("*", "*", "*", "*")))
    assert len(counters) == 3
    for key in counters:
        day = key.decode().split(":")[2]
        # A relative TTL from the batch's received_at (the service's clock), give or take
        # the second the test takes.
        assert 0 <= retention_ttl(day, 30, NOW.timestamp()) - redis_conn.ttl(key) <= 2


def test_a_day_past_its_retention_leaves_no_counter(redis_conn, keys, settings):
    """A server key's import of a day already past the retention: the profile takes it, the
    counter it would make is gone at once (its expiry lies in the past)."""
    writer = EventWriter(redis_conn, keys, settings.replace(analytics_retention_days=30))
    writer.write([rec("page_view", "v1", T0 - timedelta(days=40))])
    assert not list(redis_conn.scan_iter(match=keys.funnel_counter("*", "*", "*", "*")))
    assert redis_conn.exists(keys.visitor_profile("v1"))


def test_counts_union_days_and_filters(redis_conn, keys, settings):
    writer = EventWriter(redis_conn, keys, settings)
    writer.write(
        [
            rec("page_view", "v1", T0, source="email"),
            rec("page_view", "v1", T0 + timedelta(days=1), source="email"),
            rec("page_view", "v2", T0, source="social"),
        ]
    )
    store = FunnelStore(redis_conn, keys)
    landing = FUNNEL_STEPS.index("landing")
    two_days = store.counts(date(2026, 3, 2), date(2026, 3, 3))
    assert two_days[landing] == 2  # v1 once over both days, and v2
    assert store.counts(date(2026, 3, 2), date(2026, 3, 3), source="email")[landing] == 1
