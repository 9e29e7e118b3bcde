import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from recsvc.core.events import format_timestamp, new_event_id
from recsvc.store.events import EventWriter, StreamFull, TooMuchContention
from recsvc.store.profiles import ProfileStore
from recsvc.store.stream import read_records, total_length

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rec(kind, visitor, minutes=0, **fields):
    return {
        "id": new_event_id(),
        "type": kind,
        "visitor_id": visitor,
        "timestamp": format_timestamp(T0 + timedelta(minutes=minutes)),
        **fields,
    }


@pytest.fixture
def writer(redis_conn, keys, settings):
    return EventWriter(redis_conn, keys, settings)


@pytest.fixture
def profiles(redis_conn, keys):
    return ProfileStore(redis_conn, keys)


def stream_length(redis_conn, keys, settings):
    return total_length(redis_conn, keys, settings.stream_shards)


def by_id(records):
    return sorted(records, key=lambda record: record["id"])


def test_batch_lands_in_stream_profile_and_funnel(writer, profiles, redis_conn, keys, settings):
    batch = [
        rec("page_view", "v1", source="email"),
        rec("product_view", "v1", 1, item_id="a"),
        rec("add_to_cart", "v2", 2, item_id="b", price=3.0),
    ]
    assert writer.write(batch) == 3
    assert read_records(redis_conn, keys, settings.stream_shards) == by_id(batch)
    visitor, _shared = profiles.load("v1")
    assert visitor["counts"] == {"page_view": 1, "product_view": 1}
    assert profiles.load("v2")[1]["cart"]["items"]["b"]["quantity"] == 1
    landing = keys.funnel_counter("2026-03-02", "landing", "email", "new")
    assert redis_conn.pfcount(landing) == 1
    assert profiles.load("nobody") is None


def test_profiles_expire_after_the_configured_idle_time(writer, redis_conn, keys, settings):
    writer.write([rec("page_view", "v1")])
    ttl = redis_conn.ttl(keys.visitor_profile("v1"))
    assert settings.profile_ttl_days * 86400 - 5 < ttl <= settings.profile_ttl_days * 86400


def test_full_stream_rejects_the_whole_batch(redis_conn, keys, settings):
    small = EventWriter(redis_conn, keys, settings.replace(stream_max_len=3))
    small.write([rec("page_view", "v1"), rec("page_view", "v1", 1)])
    with pytest.raises(StreamFull):
        small.write([rec("page_view", "v2"), rec("page_view", "v3")])
    assert stream_length(redis_conn, keys, settings) == 2
    assert redis_conn.get(keys.visitor_profile("v2")) is None
    assert redis_conn.get(keys.visitor_profile("v3")) is None


def test_user_stitching_shares_cart_and_purchases(writer, profiles):
    # An anonymous phone visitor fills a cart, then logs in.
    writer.write([rec("add_to_cart", "phone", 0, item_id="a", price=5.0)])
    writer.write([rec("page_view", "phone", 1, user_id="u1")])
    # The same customer on a laptop sees that cart, and buys from it.
    writer.write([rec("page_view", "laptop", 2, user_id="u1")])
    _, shared = profiles.load("laptop")
    assert set(shared["cart"]["items"]) == {"a"}
    writer.write([rec("purchase", "laptop", 3, item_id="a", price=5.0)])
    phone, phone_shared = profiles.load("phone")
    assert phone["user_id"] == "u1"
    assert phone_shared["purchases"]["orders"] == 1
    assert phone_shared["cart"]["items"] == {}
    assert phone_shared["visitor_ids"] == ["phone", "laptop"]


def test_stitched_visitor_without_user_id_on_later_events(writer, profiles):
    writer.write([rec("page_view", "v1", 0, user_id="u9")])
    writer.write([rec("add_to_cart", "v1", 1, item_id="x")])  # no user_id sent
    _, shared = profiles.load("v1")
    assert shared["user_id"] == "u9" and set(shared["cart"]["items"]) == {"x"}


def test_concurrent_writers_lose_no_update(redis_conn, keys, settings, profiles):
    """The commit's check of the document as read makes racing writers to one visitor
    retry on fresh state, not overwrite."""
    per_thread, threads = 25, 4

    def send(worker: int):
        own = EventWriter(redis_conn, keys, settings)
        for n in range(per_thread):
            event = rec("product_view", "hot", n, item_id=f"w{worker}-{n}")
            # As a client does on the 503 this becomes: try again. Nothing was written.
            while True:
                try:
                    own.write([event])
                    break
                except TooMuchContention:
                    continue

    pool = [threading.Thread(target=send, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    visitor, _ = profiles.load("hot")
    assert visitor["counts"]["product_view"] == per_thread * threads
    assert stream_length(redis_conn, keys, settings) == per_thread * threads


def test_documents_are_compact_json(writer, redis_conn, keys):
    writer.write([rec("page_view", "v1")])
    raw = redis_conn.get(keys.visitor_profile("v1"))
    assert b", " not in raw and json.loads(raw)["visitor_id"] == "v1"
