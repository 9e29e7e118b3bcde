"""The worker's in-memory model pieces."""

from __future__ import annotations

from recsvc.serving.holder import CatalogView, PackedTiles


def test_packed_tiles_give_back_each_row() -> None:
    values = [b'{"title":"a"}', b"{}", b"", '{"title":"é"}'.encode()]
    tiles = PackedTiles.pack(values)
    assert [tiles[row] for row in range(len(values))] == values
    assert len(tiles) == 4 and tiles
    assert not PackedTiles.pack([])


def test_gathered_tiles_take_each_row_from_its_source(monkeypatch) -> None:
    import numpy as np

    from recsvc.serving import holder

    monkeypatch.setattr(holder, "GATHER_ROWS", 3)  # several chunks, one cut mid-row set
    values = [f'{{"title":"{"x" * n}"}}'.encode() for n in range(10)] + [b"", b"{}"]
    tiles = PackedTiles.pack(values)
    rows = np.array([11, -1, 3, 3, 0, -1, 10, 9, -1], np.int64)
    others = [b'{"new":1}', b"", "é".encode()]
    got = tiles.gathered(rows, others)
    expected, extra = [], iter(others)
    for row in rows.tolist():
        expected.append(values[row] if row >= 0 else next(extra))
    assert [got[r] for r in range(len(rows))] == expected
    assert len(PackedTiles.pack([]).gathered(np.zeros(0, np.int64), [])) == 0


def test_catalog_view_tiles_follow_the_model_rows() -> None:
    items = [
        {"item_id": "b", "category": "shoes", "title": "B", "in_stock": False},
        {"item_id": "zz", "title": "not in the model"},
    ]
    view = CatalogView.build(1, items, {"a": 0, "b": 1})
    assert view.tiles[0] == b"{}"
    assert b'"title":"B"' in view.tiles[1] and len(view.tiles) == 2
    assert view.in_stock.tolist() == [True, False] and view.knows_stock


def test_a_view_realigned_to_new_rows_is_the_view_a_fresh_scan_builds(redis_conn, keys) -> None:
    from recsvc.store.catalog import CatalogStore

    catalog = CatalogStore(redis_conn, keys)
    items = [
        {"item_id": f"i{n}", "category": f"c{n % 3}", "title": f"T{n}", "in_stock": n % 4 != 0}
        for n in range(30)
    ]
    items[7]["category"] = "only-in-the-new-model"
    catalog.upsert(items)
    version, snapshot = catalog.snapshot()
    # The old model has i0 … i19 but i7; the new one a few of those and others.
    old_rows = {f"i{n}": row for row, n in enumerate(n for n in range(20) if n != 7)}
    new_rows = {f"i{n}": row for row, n in enumerate([25, 3, 12, 28, 7, 0, 29, 99])}
    old = CatalogView.build(version, snapshot, old_rows)
    fetched: list[list[str]] = []

    def fetch(ids: list[str]) -> dict:
        fetched.append(ids)
        return catalog.get_many(ids)

    got = old.realigned(old_rows, new_rows, fetch)
    want = CatalogView.build(version, snapshot, new_rows)
    # Only the items the old rows lacked were read: i25, i28, i7, i29 and the unknown i99.
    assert sorted(fetched[0]) == ["i25", "i28", "i29", "i7", "i99"]
    names = lambda view: [  # noqa: E731 - category names row by row, codes may differ
        view.category_names[c] if c >= 0 else None for c in view.categories.tolist()
    ]
    assert names(got) == names(want)
    assert got.in_stock.tolist() == want.in_stock.tolist() and got.knows_stock
    assert [got.tiles[r] for r in range(8)] == [want.tiles[r] for r in range(8)]
    assert got.category_code("only-in-the-new-model") is not None
    assert old.category_code("only-in-the-new-model") is None  # the old view is untouched


def test_a_new_version_over_the_same_items_keeps_the_held_id_map_and_catalog_view(
    redis_conn, keys, make_artifact
) -> None:
    import numpy as np

    from recsvc.serving.holder import ModelHolder
    from recsvc.store.catalog import CatalogStore
    from recsvc.store.models import ModelStore

    catalog = CatalogStore(redis_conn, keys)
    catalog.upsert([{"item_id": f"i{n}", "title": f"T{n}"} for n in range(30)])
    models = ModelStore(redis_conn, keys)
    models.publish(make_artifact("v1", seed=1))
    holder = ModelHolder(models, catalog, poll_seconds=60)
    assert holder.refresh()
    first = holder._model
    models.publish(make_artifact("v2", seed=2))
    assert holder.refresh()
    second = holder._model
    assert second.version == "v2" and second.row_of is first.row_of
    assert second.catalog is first.catalog and second.catalog.tiles[3] == first.catalog.tiles[3]
    assert not np.array_equal(second.item_factors, first.item_factors)
    # Other items: a new id map, the view realigned to it.
    models.publish(make_artifact("v3", items=20, seed=3))
    assert holder.refresh()
    third = holder._model
    assert third.row_of is not first.row_of and len(third.catalog.tiles) == 20
    assert b'"title":"T5"' in third.catalog.tiles[third.row_of["i5"]]
