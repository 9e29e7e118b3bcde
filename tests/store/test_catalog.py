"""The catalog store against the real Redis: merge-upserts, the version counter, get_many in
one round trip, iteration, and the transaction under a concurrent writer."""

import json

import pytest

from recsvc.store import catalog as catalog_module
from recsvc.store.catalog import CatalogStore, Upserted, merge

SHOE = {
    "item_id": "sku-1",
    "category": "shoes",
    "price": 59.9,
    "in_stock": True,
    "title": "Trail shoe",
    "url": "https://shop.example.com/p/sku-1",
    "image_url": "https://cdn.example.com/sku-1.jpg",
}


@pytest.fixture
def store(redis_conn, keys):
    return CatalogStore(redis_conn, keys)


def test_a_new_item_is_stored_and_read_back(store):
    assert store.get("sku-1") is None
    assert store.upsert([SHOE]) == Upserted(changed=1, version=1)
    assert store.get("sku-1") == SHOE
    assert store.count() == 1


def test_upsert_merges_into_the_stored_item(store):
    store.upsert([SHOE])
    assert store.upsert([{"item_id": "sku-1", "in_stock": False}]) == Upserted(1, 2)
    assert store.get("sku-1") == {**SHOE, "in_stock": False}


def test_null_removes_a_field(store):
    store.upsert([SHOE])
    store.upsert([{"item_id": "sku-1", "image_url": None, "category": None}])
    expected = {k: v for k, v in SHOE.items() if k not in {"image_url", "category"}}
    assert store.get("sku-1") == expected


def test_an_item_with_only_its_id_exists(store):
    assert store.upsert([{"item_id": "bare"}]).changed == 1
    assert store.get("bare") == {"item_id": "bare"}


def test_later_entries_of_one_id_win_and_count_once(store):
    result = store.upsert(
        [{"item_id": "a", "price": 1.0, "title": "A"}, {"item_id": "a", "price": 2.0}]
    )
    assert result == Upserted(1, 1)
    assert store.get("a") == {"item_id": "a", "price": 2.0, "title": "A"}


def test_the_version_moves_only_on_change(store):
    assert store.version() == 0
    store.upsert([SHOE, {"item_id": "sku-2", "price": 3.0}])
    assert store.version() == 1
    # The same fields again (a periodic full sync): nothing changed, the counter stays.
    assert store.upsert([SHOE]) == Upserted(0, 1)
    assert store.upsert([{"item_id": "sku-1", "price": 59.9}]) == Upserted(0, 1)
    # Removing a field that is not there changes nothing either.
    assert store.upsert([{"item_id": "sku-2", "title": None}]) == Upserted(0, 1)
    # Reads never move it.
    store.get("sku-1")
    store.get_many(["sku-1", "sku-2", "nope"])
    list(store.all_items())
    store.snapshot()
    store.count()
    assert store.version() == 1
    # One change among unchanged items: one bump.
    assert store.upsert([SHOE, {"item_id": "sku-2", "price": 4.0}]) == Upserted(1, 2)


def test_delete(store):
    store.upsert([SHOE])
    assert store.delete("sku-1") is True
    assert store.get("sku-1") is None
    assert store.version() == 2
    assert store.delete("sku-1") is False
    assert store.version() == 2  # nothing deleted, nothing moved


def test_get_many_is_one_hmget_and_returns_only_known_items(store, redis_conn, monkeypatch):
    store.upsert([SHOE, {"item_id": "sku-2", "price": 3.0}])
    sent = []
    execute = redis_conn.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return execute(*args, **kwargs)

    monkeypatch.setattr(redis_conn, "execute_command", counting)
    found = store.get_many(["sku-2", "nope", "sku-1", "sku-2"])
    assert sent == ["HMGET"]
    assert found == {"sku-2": {"item_id": "sku-2", "price": 3.0}, "sku-1": SHOE}
    assert list(found) == ["sku-2", "sku-1"]  # in the order asked
    sent.clear()
    assert store.get_many([]) == {}
    assert sent == []  # nothing to ask Redis


def test_all_items_iterates_every_item_once(store):
    items = [{"item_id": f"i{n}", "price": float(n)} for n in range(2500)]
    for start in range(0, len(items), 1000):
        store.upsert(items[start : start + 1000])
    seen = list(store.all_items())
    assert len(seen) == 2500
    assert sorted(seen, key=lambda i: int(i["item_id"][1:])) == items
    version, snapshot = store.snapshot()
    assert version == 3
    assert len(snapshot) == 2500


def test_an_empty_catalog(store):
    assert list(store.all_items()) == []
    assert store.snapshot() == (0, [])
    assert store.upsert([]) == Upserted(0, 0)


def test_layout_is_one_hash_and_a_counter_in_one_slot(store, redis_conn, keys, settings):
    store.upsert([SHOE])
    assert keys.catalog_items() == f"{settings.namespace}:{{catalog}}:items"
    assert keys.catalog_version() == f"{settings.namespace}:{{catalog}}:version"
    assert redis_conn.type(keys.catalog_items()) == b"hash"
    stored = json.loads(redis_conn.hget(keys.catalog_items(), "sku-1"))
    assert "item_id" not in stored  # the field name is the id
    assert list(stored) == ["category", "price", "in_stock", "title", "url", "image_url"]
    assert sorted(redis_conn.scan_iter(match=f"{settings.namespace}:*")) == sorted(
        [keys.catalog_items().encode(), keys.catalog_version().encode()]
    )


def test_a_concurrent_write_makes_the_upsert_retry_on_fresh_state(
    store, redis_conn, keys, monkeypatch
):
    store.upsert([SHOE])
    other = CatalogStore(redis_conn, keys)
    interfered = []

    def merge_with_a_rival(stored, patch):
        if not interfered:
            interfered.append(True)
            other.upsert([{"item_id": "sku-1", "title": "Renamed"}])
        return merge(stored, patch)

    monkeypatch.setattr(catalog_module, "merge", merge_with_a_rival)
    assert store.upsert([{"item_id": "sku-1", "price": 10.0}]) == Upserted(1, 3)
    # Both changes landed: the retry merged into the rival's version, not the stale one.
    assert store.get("sku-1") == {**SHOE, "title": "Renamed", "price": 10.0}


def test_endless_contention_gives_up_without_writing(store, redis_conn, keys, monkeypatch):
    from recsvc.store.events import TooMuchContention

    other = CatalogStore(redis_conn, keys)
    monkeypatch.setattr(catalog_module, "BACKOFF_SECONDS", 0)
    attempts = []

    def always_a_rival(stored, patch):
        attempts.append(1)
        redis_conn.hset(keys.catalog_items(), f"rival-{len(attempts)}", "{}")
        return merge(stored, patch)

    monkeypatch.setattr(catalog_module, "merge", always_a_rival)
    with pytest.raises(TooMuchContention):
        store.upsert([SHOE])
    assert len(attempts) == catalog_module.MAX_ATTEMPTS
    assert other.get("sku-1") is None
    assert other.version() == 0


def test_merge_keeps_the_field_order():
    assert list(merge({"title": "t"}, {"item_id": "x", "price": 1.0, "category": "c"})) == [
        "category",
        "price",
        "title",
    ]
