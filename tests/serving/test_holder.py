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
