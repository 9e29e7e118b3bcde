"""Cart add-ons remembered per worker, for the model they were computed with.

A visitor with an abandoned cart is shown the onsite nudge, with three add-ons, on every
page until they buy or change the cart; computing those add-ons (a fold-in solve and a
search of the whole catalog) costs more than the rest of the request. The answer depends
only on the cart (its items, in order), the items left out (cart and purchases), how many
are asked for and the model with its catalog (stock), so it is kept here under the first
three, for the ``LoadedModel`` it came from: a new version or catalog is a new
``LoadedModel``, and the first lookup with it empties the cache.

Entries are the add-on items without catalog fields (the caller adds those, from the
catalog of the moment), kept as one JSON blob each: a lookup decodes a fresh copy, which
the caller may change. One blob rather than the answer's fifty-odd small objects: after
20,000 random carts a worker's anonymous memory was 23 MB instead of 49.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from recsvc.serving.holder import LoadedModel

# Carts remembered per worker (an entry is about a kilobyte).
SIZE = 4096

Key = tuple[tuple[str, ...], frozenset[str], int]
Answer = tuple[str, list[dict[str, Any]]]  # strategy, items
Stored = tuple[str, bytes]  # strategy, the items as JSON


class AddonCache:
    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._model: weakref.ref[LoadedModel] | None = None
        self._entries: OrderedDict[Key, Stored] = OrderedDict()
        self._lock = threading.Lock()  # a gthread worker's threads share it

    @staticmethod
    def key(item_ids: Iterable[str], leave_out: Iterable[str], n: int) -> Key:
        return tuple(item_ids), frozenset(leave_out), n

    def get(self, model: LoadedModel, key: Key, compute: Callable[[], Answer]) -> Answer:
        """The answer for ``key`` under ``model``, computed (outside the lock) on a miss."""
        with self._lock:
            if self._model is None or self._model() is not model:
                self._model, self._entries = weakref.ref(model), OrderedDict()
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if found is None:
            strategy, items = compute()
            found = strategy, orjson.dumps(items)
            with self._lock:
                if self._model() is model:
                    self._entries[key] = found
                    if len(self._entries) > self.size:
                        self._entries.popitem(last=False)
        return found[0], orjson.loads(found[1])
