"""Ingestion across slots on real Redis (single server, and the cluster with
``--redis-cluster``): a writer that dies between its commit and its relay loses nothing and
counts nothing twice; stale customer leases are settled; the exporter reads every shard."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from recsvc.core.events import format_timestamp, new_event_id
from recsvc.eventlog.exporter import Exporter, ExportOptions, exporter_client
from recsvc.eventlog.reader import iter_records
from recsvc.store.events import EventWriter
from recsvc.store.outbox import Relay
from recsvc.store.profiles import ProfileStore
from recsvc.store.stream import read_records, shard_of, total_length

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rec(kind, visitor, minutes=0, **fields):
    return {
        "id": new_event_id(),
        "type": kind,
        "visitor_id": visitor,
        "timestamp": format_timestamp(T0 + timedelta(minutes=minutes)),
        **fields,
    }


class DiesAfterCommit(EventWriter):
    """A writer whose process dies right after its commits: nothing is relayed."""

    def __init__(self, *args):
        super().__init__(*args)
        self.relay = NoRelay(self.client, self.keys, self.settings)


class NoRelay(Relay):
    def relay(self, entries):
        self.left = entries
        return 0


@pytest.fixture
def writer(redis_conn, keys, settings):
    return EventWriter(redis_conn, keys, settings)


def stats(redis_conn, keys):
    return {k.decode(): v.decode() for k, v in redis_conn.hgetall(keys.nudge_stats()).items()}


def test_a_writer_dead_after_its_commit_is_relayed_by_the_sweep_once(redis_conn, keys, settings):
    dying = DiesAfterCommit(redis_conn, keys, settings)
    batch = [
        rec("add_to_cart", "v1", 0, item_id="a", price=5.0, user_id="u1"),
        rec("nudge_sent", "v1", 1, properties={"channel": "email"}),
        rec("page_view", "v2", 2, source="email"),
    ]
    dying.write(batch)
    # Accepted: the visitors' documents hold it; the other slots do not yet.
    assert ProfileStore(redis_conn, keys).load("v1")[0]["events"] == 2
    assert total_length(redis_conn, keys, settings.stream_shards) == 0
    assert redis_conn.get(keys.customer("u1")) is None  # leased, not written yet

    relay = Relay(redis_conn, keys, settings)
    assert relay.sweep(older_than=0) == 2
    assert relay.sweep(older_than=0) == 0  # nothing left
    # Relaying the same entries again (a second sweeper racing) changes nothing.
    relay.relay(dying.relay.left)

    records = read_records(redis_conn, keys, settings.stream_shards)
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in batch)
    _, shared = ProfileStore(redis_conn, keys).load("v1")
    assert shared["cart"]["items"]["a"]["quantity"] == 1
    assert stats(redis_conn, keys) == {"2026-03-02|email|sent": "1"}
    landing = keys.funnel_counter("2026-03-02", "landing", "email", "new")
    assert redis_conn.pfcount(landing) == 1
    assert redis_conn.exists(keys.customer_lease("u1")) == 0
    assert redis_conn.llen(keys.outbox("v1")) == 0
    for shard in range(settings.stream_shards):
        assert redis_conn.zcard(keys.events_pending(shard)) == 0


def test_the_next_writer_of_a_customer_settles_a_dead_writers_lease(redis_conn, keys, settings):
    settings = settings.replace(customer_lease_stale_seconds=0.0)
    dying = DiesAfterCommit(redis_conn, keys, settings)
    dying.write([rec("add_to_cart", "phone", 0, item_id="a", user_id="u1")])
    # Another device of the same customer: its batch waits for the lease, finds it stale,
    # relays the dead writer's committed batch, then writes its own on top.
    EventWriter(redis_conn, keys, settings).write(
        [rec("add_to_cart", "laptop", 1, item_id="b", user_id="u1")]
    )
    _, shared = ProfileStore(redis_conn, keys).load("laptop")
    assert set(shared["cart"]["items"]) == {"a", "b"}
    assert shared["visitor_ids"] == ["phone", "laptop"]


def test_a_stale_lease_of_a_batch_that_never_committed_is_fenced_off(redis_conn, keys, settings):
    # A lease left by a writer that died before its commit (its token never reached the
    # outbox): the next writer fences that token off and goes on.
    redis_conn.set(keys.customer_lease("u1"), "deadbeef|ghost|1")
    EventWriter(redis_conn, keys, settings).write(
        [rec("add_to_cart", "laptop", 1, item_id="b", user_id="u1")]
    )
    assert redis_conn.get(keys.fence("ghost")) == b"deadbeef"
    _, shared = ProfileStore(redis_conn, keys).load("laptop")
    assert set(shared["cart"]["items"]) == {"b"}


def test_a_live_lease_makes_the_other_batch_wait_then_answer_busy(redis_conn, keys, settings):
    fresh = f"feedface|ghost|{int(time.time() * 1000)}"
    redis_conn.set(keys.customer_lease("u1"), fresh)
    quick = EventWriter(redis_conn, keys, settings.replace(ingest_contention_seconds=0.05))
    from recsvc.store.events import TooMuchContention

    with pytest.raises(TooMuchContention) as raised:
        quick.write(
            [
                rec("page_view", "other", 0),
                rec("add_to_cart", "laptop", 1, item_id="b", user_id="u1"),
            ]
        )
    assert raised.value.committed == 1  # the other visitor's event was accepted
    assert ProfileStore(redis_conn, keys).load("laptop") is None


def test_events_spread_over_the_shards_and_the_exporter_reads_them_all(
    writer, redis_conn, keys, settings, tmp_path
):
    visitors = [f"v{n}" for n in range(40)]
    assert len({shard_of(v, settings.stream_shards) for v in visitors}) == settings.stream_shards
    batch = [rec("page_view", v, n % 7) for n, v in enumerate(visitors)]
    writer.write(batch)
    opts = ExportOptions(out=tmp_path, shards=settings.stream_shards)
    exporter = Exporter(exporter_client(settings, opts), keys, opts, settings)
    exporter.run_once()
    assert sorted(r["id"] for r in iter_records(tmp_path)) == sorted(r["id"] for r in batch)
    assert exporter.stats.events == len(batch)
    assert total_length(redis_conn, keys, settings.stream_shards) == 0


def test_with_wait_replicas_a_batch_waits_and_warns_when_none_acknowledge(
    redis_conn, keys, settings, caplog
):
    from recsvc.redis_client import is_cluster

    if is_cluster(redis_conn):
        pytest.skip("WAIT is for a single master (Sentinel); a cluster's are per shard")
    waiting = EventWriter(
        redis_conn, keys, settings.replace(redis_wait_replicas=1, redis_wait_timeout_ms=20)
    )
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="recsvc.store.events"):
        waiting.write([rec("page_view", "v1")])
    assert time.monotonic() - started >= 0.02  # it did wait for the (absent) replica
    assert "reached 0 of 1 replicas" in caplog.text
    assert total_length(redis_conn, keys, settings.stream_shards) == 1


def test_two_devices_of_one_customer_in_one_batch_are_written_one_after_the_other(
    writer, redis_conn, keys
):
    writer.write(
        [
            rec("add_to_cart", "phone", 0, item_id="a", user_id="u1"),
            rec("add_to_cart", "laptop", 1, item_id="b", user_id="u1"),
            rec("add_to_cart", "phone", 2, item_id="c"),
        ]
    )
    _, shared = ProfileStore(redis_conn, keys).load("laptop")
    assert set(shared["cart"]["items"]) == {"a", "b", "c"}
    assert sorted(shared["visitor_ids"]) == ["laptop", "phone"]
    assert redis_conn.exists(keys.customer_lease("u1")) == 0
