"""The worker's in-memory model pieces."""

from __future__ import annotations

from recsvc.serving.holder import CatalogView, PackedTiles


def test_packed_tiles_give_back_each_row() -> None:
    values = [b'{"title":"a"}', b"{}", b"", '{"title":"é"}'.encode()]
    tiles = PackedTiles.pack(values)
    assert [tiles[row] for row in range(len(values))] == values
    assert len(tiles) == 4 and tiles
    assert not PackedTiles.pack([])


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
