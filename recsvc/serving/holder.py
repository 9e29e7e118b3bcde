"""The model a worker serves from, kept in memory and swapped when the pointer moves.

Every gunicorn worker holds the current version's item side as the strategies score from
it (:class:`recsvc.scoring.model.ScoringModel`: factors, search index, fold-in, similar
items, popular and trending lists, the session model, the serving parameters) and arrays
derived from the catalog (category, stock and tile per item row). A daemon thread,
started lazily in each process (so after gunicorn's fork), polls the current-version
pointer and the catalog version every ``model_poll_seconds``; when one moves it builds
the new ``LoadedModel`` aside and swaps one reference, so a request sees either the old
model or the new one, whole. When Redis is unreachable the last model stays: reads
degrade, they do not fail.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from recsvc.redis_client import UNAVAILABLE_ERRORS
from recsvc.scoring.model import ScoringModel
from recsvc.store.catalog import TILE_FIELDS, CatalogStore
from recsvc.store.models import ItemSide, ModelStore

log = logging.getLogger(__name__)


# Rows a gather copies at once: its index arrays are 16 bytes a tile byte.
GATHER_ROWS = 8192


class PackedTiles:
    """Byte strings by row, packed in one buffer: ``tiles[row]`` is a fresh copy.

    Not a list of ``bytes``: reading one of 100k objects made in the gunicorn master
    writes its reference count, copying its page into the worker; over a day of requests
    every worker ends up with its own copy of every such page.
    """

    def __init__(self, blob: bytes, offsets: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets

    @classmethod
    def pack(cls, values: list[bytes]) -> PackedTiles:
        offsets = np.zeros(len(values) + 1, np.int64)
        np.cumsum([len(v) for v in values], out=offsets[1:])
        return cls(b"".join(values), offsets)

    def __getitem__(self, row: int) -> bytes:
        return self._blob[int(self._offsets[row]) : int(self._offsets[row + 1])]

    def gathered(self, rows: np.ndarray, others: list[bytes]) -> PackedTiles:
        """Row ``r`` of the result is ``self[rows[r]]``, and the ``k``-th row whose
        ``rows`` entry is -1 is ``others[k]``: the bytes moved by numpy, a chunk of rows
        at a time, not copied row by row in Python (0.17 s for 100k tiles, all of it
        holding the GIL that a worker's request threads wait on)."""
        extra = PackedTiles.pack(others)
        source = np.frombuffer(self._blob + extra._blob, np.uint8)
        known = rows >= 0
        starts = np.empty(len(rows), np.int64)
        starts[known] = self._offsets[rows[known]]
        starts[~known] = len(self._blob) + extra._offsets[:-1]
        lengths = np.empty(len(rows), np.int64)
        lengths[known] = np.diff(self._offsets)[rows[known]]
        lengths[~known] = np.diff(extra._offsets)
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.empty(int(offsets[-1]), np.uint8)
        for first in range(0, len(rows), GATHER_ROWS):
            last = min(first + GATHER_ROWS, len(rows))
            size = int(offsets[last] - offsets[first])
            # Each byte's source: its row's start plus its place within the row.
            shift = np.repeat(starts[first:last] - offsets[first:last], lengths[first:last])
            blob[offsets[first] : offsets[last]] = source[
                shift + np.arange(offsets[first], offsets[first] + size)
            ]
        return PackedTiles(blob.tobytes(), offsets)

    def __len__(self) -> int:
        return len(self._offsets) - 1


@dataclass
class CatalogView:
    """Catalog fields aligned to a model's item rows."""

    version: int
    categories: np.ndarray  # (n_items,) int32, -1 where unknown
    category_names: list[str]
    in_stock: np.ndarray  # (n_items,) bool, True where the catalog does not say
    knows_stock: bool
    # Per item row, its tile fields (TILE_FIELDS) as JSON, b"{}" where the catalog has
    # none: answers carry tiles without a catalog read per request (about 150 bytes a row).
    tiles: PackedTiles = field(default_factory=lambda: PackedTiles.pack([]))

    @classmethod
    def build(
        cls, version: int, items: list[dict[str, Any]], row_of: dict[str, int]
    ) -> CatalogView:
        n_items = len(row_of)
        view = cls(version, np.full(n_items, -1, np.int32), [], np.ones(n_items, bool), False)
        tiles = [b"{}"] * n_items
        names: dict[str, int] = {}
        for item in items:
            row = row_of.get(item["item_id"])
            if row is not None:
                view._take(item, row, tiles, names)
        view.tiles = PackedTiles.pack(tiles)
        return view

    def realigned(
        self,
        old_row_of: dict[str, int],
        row_of: dict[str, int],
        fetch: Callable[[list[str]], dict[str, dict[str, Any]]],
    ) -> CatalogView:
        """This view (of the same catalog version) over another model's rows, without
        reading the whole catalog again: items the old rows had keep their fields, only
        the others are read (``fetch``: ids to items). What :meth:`build` gives from a
        fresh scan, at a fraction of a new version's load time (a 100k-item scan was 2.5
        of the 3.2 s each worker spent on a new version)."""
        new_ids = list(row_of)  # in row order: row_of is built by enumerating the ids
        # dict.get mapped in C: a generator of 100k lookups held the GIL for 0.07-0.2 s.
        old = np.array(list(map(old_row_of.get, new_ids, repeat(-1))), np.int64)
        known = old >= 0
        categories = np.full(len(new_ids), -1, np.int32)
        categories[known] = self.categories[old[known]]
        in_stock = np.ones(len(new_ids), bool)
        in_stock[known] = self.in_stock[old[known]]
        view = CatalogView(
            self.version, categories, list(self.category_names), in_stock, self.knows_stock
        )
        missing_rows = np.flatnonzero(~known)
        tiles = {row: b"{}" for row in missing_rows.tolist()}
        names = {name: code for code, name in enumerate(view.category_names)}
        for item_id, item in fetch([new_ids[row] for row in tiles]).items():
            view._take(item, row_of[item_id], tiles, names)
        view.tiles = self.tiles.gathered(old, [tiles[row] for row in missing_rows.tolist()])
        return view

    def _take(
        self,
        item: dict[str, Any],
        row: int,
        tiles: list[bytes] | dict[int, bytes],
        names: dict[str, int],
    ) -> None:
        """One catalog item's fields into ``row`` (``names``: category name to code, grown
        as new names come, ``category_names`` with it)."""
        tiles[row] = orjson.dumps({k: item[k] for k in TILE_FIELDS if k in item})
        if item.get("category"):
            if item["category"] not in names:
                names[item["category"]] = len(self.category_names)
                self.category_names.append(item["category"])
            self.categories[row] = names[item["category"]]
        if "in_stock" in item:
            self.in_stock[row] = bool(item["in_stock"])
            self.knows_stock = True

    def category_code(self, name: str) -> int | None:
        try:
            return self.category_names.index(name)
        except ValueError:
            return None


@dataclass
class LoadedModel(ScoringModel):
    """One version, ready to serve: what the strategies score from
    (:class:`~recsvc.scoring.model.ScoringModel`) and the catalog aligned to its rows."""

    catalog: CatalogView = field(default_factory=lambda: CatalogView.build(0, [], {}))
    loaded_at: float = field(default_factory=time.time)

    @property
    def user_buckets(self) -> int:
        return int(self.manifest["user_buckets"])

    @classmethod
    def from_side(
        cls,
        side: ItemSide,
        catalog: CatalogView | None = None,
        answer_cache_size: int = 0,
        row_of: dict[str, int] | None = None,
    ) -> LoadedModel:
        """From the arrays a worker reads from Redis, all derived arrays computed now (in
        gunicorn's master, before it forks, so workers share them); ``answer_cache_size``
        session answers are kept per process; ``row_of``, the side's id-to-row map when
        the caller has it already."""
        scoring = ScoringModel.build(
            side.version,
            side.manifest,
            side.item_ids,
            side.item_factors,
            side.similar_items,
            side.similar_scores,
            side.lists,
            side.session,
            row_of,
        )
        fields_ = {name.name: getattr(scoring, name.name) for name in fields(ScoringModel)}
        fields_["answer_cache_size"] = answer_cache_size
        model = cls(**fields_, catalog=catalog or CatalogView.build(0, [], scoring.row_of))
        model.warm()
        return model

    def with_catalog(self, catalog: CatalogView) -> LoadedModel:
        """The same version with another catalog (derived arrays shared, not recomputed)."""
        model = copy.copy(self)
        model.catalog = catalog
        return model


class ModelHolder:
    """The current ``LoadedModel`` of this process, refreshed in the background."""

    def __init__(
        self,
        models: ModelStore,
        catalog: CatalogStore,
        poll_seconds: float,
        answer_cache_size: int = 0,
    ) -> None:
        self.models = models
        self.catalog = catalog
        self.poll_seconds = poll_seconds
        self.answer_cache_size = answer_cache_size
        self._model: LoadedModel | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def current(self) -> LoadedModel | None:
        """The model to serve now (None before any version was ever loaded)."""
        if self._pid != os.getpid():
            self._start()
        return self._model

    def refresh(self) -> bool:
        """Poll once: load a new current version or catalog if either moved. Returns True
        when the served model changed. Redis errors keep the model as it was."""
        try:
            version = self.models.current_version()
            catalog_version = self.catalog.version()
        except UNAVAILABLE_ERRORS:
            return False
        held = self._model
        if version is None:
            return False
        try:
            if held is None or held.version != version:
                started = time.perf_counter()
                self._model = self._load(version, held, catalog_version)
                took = round(time.perf_counter() - started, 3)
                log.info("model loaded", extra={"version": version, "load_seconds": took})
                return True
            if held.catalog.version != catalog_version:
                self._model = held.with_catalog(self._catalog_view(held.row_of))
                return True
        except UNAVAILABLE_ERRORS:
            log.warning("model refresh failed; serving the model held", exc_info=True)
        return False

    def _load(self, version: str, held: LoadedModel | None, catalog_version: int) -> LoadedModel:
        side = self.models.load_item_side(version)
        same_catalog = held is not None and held.catalog.version == catalog_version
        if held is not None and side.item_ids == held.item_ids:
            # A retrain over the same items (training orders them deterministically):
            # the held id map, and for an unchanged catalog its view, fit the new rows.
            row_of = held.row_of
            catalog = held.catalog if same_catalog else self._catalog_view(row_of)
        else:
            row_of = dict(zip(side.item_ids, range(len(side.item_ids)), strict=True))
            if same_catalog:
                catalog = held.catalog.realigned(held.row_of, row_of, self.catalog.get_many)
            else:
                catalog = self._catalog_view(row_of)
        return LoadedModel.from_side(side, catalog, self.answer_cache_size, row_of)

    def _catalog_view(self, row_of: dict[str, int]) -> CatalogView:
        version, items = self.catalog.snapshot()
        return CatalogView.build(version, items, row_of)

    def _start(self) -> None:
        """Load now (so the first request has a model), then poll in a daemon thread.
        Runs once per process: a forked worker starts its own thread. The process is
        marked as started only after the load, under the lock, so a gthread worker's
        other threads wait for the model instead of answering without one."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self.refresh()
            thread = threading.Thread(target=self._poll, name="model-poll", daemon=True)
            thread.start()
            self._pid = os.getpid()

    def preload(self) -> None:
        """Load the current version in this process without starting a thread: gunicorn's
        master calls it before each fork, so a new (or recycled) worker starts with the
        model in pages it shares with the master instead of loading it in a request."""
        self.refresh()

    def _poll(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            try:
                self.refresh()
            except Exception:  # the poller must outlive any surprise; log and go on
                log.exception("model poll failed")
