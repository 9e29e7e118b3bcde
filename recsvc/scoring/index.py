"""Top-k inner-product search over one model version's item factors, one query at a time.

A worker builds an :class:`ItemIndex` once per model version (:meth:`ItemIndex.build`) and
asks it, per request, for the ``k`` items whose factors have the largest dot product with
the visitor's vector, optionally among allowed items only. Both implementations are exact:

- :class:`ExactIndex`: a float32 matrix-vector product over every item and
  ``argpartition``; the reference, and the index for small catalogs (``EXACT_MAX_ITEMS``).
- :class:`NormPrunedIndex`: items stored by decreasing norm and scored block by block;
  since ``u·y <= ‖u‖·‖y‖`` (Cauchy-Schwarz), the search stops as soon as the k-th best
  score so far beats ``‖u‖`` times the norm of the next unscored item. ALS item norms
  are heavy-tailed (popular items have long vectors, the long tail sits near zero), so a
  query scores a few thousand items, not the catalog; at worst it scores them all and
  costs what :class:`ExactIndex` does.

Why this is the default rather than an approximate index (an HNSW graph in faiss or
hnswlib, an inverted file), and the figures behind it, are in
``loadtests/bench_search.py``. Everything runs in the calling thread; pin BLAS to one
thread in the worker (gunicorn workers are the parallelism).

Every search returns ``(rows, scores)``: item rows, int32, best first (equal scores by
row), and their float32 scores; fewer than ``k`` where fewer items are allowed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Literal

import numpy as np

from recsvc.scoring.topk import empty_ranking, select_top

# Up to this many items the full scan is as fast as pruning (loadtests/bench_search.py
# measures the crossover) and simpler, so ``build(method="auto")`` keeps it exact.
EXACT_MAX_ITEMS = 20_000
# A mask allowing at most this many items is searched over those items alone: gathering
# them costs less than scanning blocks that are mostly filtered out.
SUBSET_MAX_ITEMS = 10_000
# Pruned search block sizes (tuned in loadtests/bench_search.py): most queries stop within
# a few thousand items; a query that needs the whole catalog then takes few Python steps.
FIRST_BLOCK = 4_096
MAX_BLOCK = 8_192
# float32 dot products may exceed the float32 product of norms by rounding; the bound is
# widened by this relative margin so that pruning never drops a true top-k item.
BOUND_SLACK = 1e-4
# scoring_at_least checks at most this many of the longest vectors (beyond, checking them
# would cost about what a search does).
HEAD = 256

Method = Literal["auto", "exact", "pruned"]


class ItemIndex(ABC):
    """Top-k maximum-inner-product search over the rows of ``item_factors``.

    Attributes
    ----------
    item_factors : ndarray, shape (n_items, f), float32, C-contiguous
    """

    item_factors: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    @staticmethod
    def build(
        item_factors: np.ndarray,
        method: Method = "auto",
    ) -> ItemIndex:
        """The index for one model version.

        Parameters
        ----------
        item_factors : ndarray, shape (n_items, f), float
            Converted to C-contiguous float32 (no copy when it already is).
        method : {"auto", "exact", "pruned"}
            ``auto``: :class:`ExactIndex` up to ``EXACT_MAX_ITEMS`` items, else
            :class:`NormPrunedIndex`.

        Returns
        -------
        ItemIndex
        """
        factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        if method == "exact" or (method == "auto" and len(factors) <= EXACT_MAX_ITEMS):
            return ExactIndex(factors)
        if method in ("auto", "pruned"):
            return NormPrunedIndex(factors)
        raise ValueError(f"unknown search method {method!r}")

    def search(
        self, user_vector: np.ndarray, k: int, allowed_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items with the largest ``item_factors[i] · user_vector``.

        Parameters
        ----------
        user_vector : ndarray, shape (f,), float32
        k : int
            More than ``n_items`` returns every allowed item.
        allowed_mask : ndarray, shape (n_items,), bool, optional
            Only items where it is True are returned; default all.

        Returns
        -------
        rows : ndarray, shape (<= k,), int32
            Best first; equal scores by row.
        scores : ndarray, shape (<= k,), float32
            Exact dot products (float32 accumulation).
        """
        query = np.asarray(user_vector, dtype=np.float32).reshape(-1)
        if k <= 0:
            return empty_ranking()
        if allowed_mask is None:
            return self._search(query, k, None)
        mask = np.asarray(allowed_mask, dtype=bool)
        if mask.shape != (self.n_items,):
            raise ValueError(f"allowed_mask has shape {mask.shape}, expected ({self.n_items},)")
        allowed = int(np.count_nonzero(mask))
        if allowed == 0:
            return empty_ranking()
        if allowed <= SUBSET_MAX_ITEMS:
            rows = np.flatnonzero(mask)
            return select_top(self.item_factors[rows] @ query, rows, k)
        return self._search(query, k, mask)

    @abstractmethod
    def _search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for ``k >= 1`` and a mask allowing many items, or none."""

    def memory_bytes(self) -> int:
        """Bytes this index holds beyond the ``item_factors`` it was given."""
        return 0

    @cached_property
    def _by_norm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows by decreasing norm, their norms negated (ascending, for searchsorted) in
        float64, and the ``HEAD`` longest vectors contiguous."""
        norms = np.linalg.norm(self.item_factors, axis=1).astype(np.float64)
        order = np.argsort(-norms, kind="stable").astype(np.int32)
        head = np.ascontiguousarray(self.item_factors[order[:HEAD]])
        return order, -norms[order], head

    def scoring_at_least(self, user_vector: np.ndarray, bound: float) -> np.ndarray | None:
        """Rows whose score with ``user_vector`` is ``bound`` (> 0) or more, in no
        particular order; None when more than the ``HEAD`` longest items are long enough
        to (the caller must search instead).

        By Cauchy-Schwarz an item scores at most the product of the norms, so only items
        of norm at least ``bound / ‖u‖`` can: a prefix of the items by decreasing norm,
        which for a high bound is a handful of items (ALS norms are heavy-tailed).
        """
        order, descending, head = self._by_norm
        length = float(np.linalg.norm(user_vector)) * (1.0 + BOUND_SLACK)
        if length == 0.0:
            return order[:0]
        count = int(np.searchsorted(descending, -bound / length, side="right"))
        if count > len(head):
            return None
        return order[:count][head[:count] @ user_vector >= bound]


class ExactIndex(ItemIndex):
    """Every item scored: ``Y u`` then ``argpartition``. The reference for recall."""

    def __init__(self, item_factors: np.ndarray) -> None:
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)

    def _search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.item_factors @ query
        if mask is not None:
            np.putmask(scores, ~mask, -np.inf)
        return select_top(scores, None, k)


class NormPrunedIndex(ItemIndex):
    """Exact search that stops early by the norm bound (see the module docstring).

    Attributes
    ----------
    order : ndarray, shape (n_items,), int32
        Item rows by decreasing norm.
    sorted_factors : ndarray, shape (n_items, f), float32
        ``item_factors[order]``, so that each block is a contiguous slice.
    sorted_norms : ndarray, shape (n_items,), float32
        ``‖item_factors[order]‖``, non-increasing.
    """

    def __init__(self, item_factors: np.ndarray) -> None:
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        norms = np.linalg.norm(self.item_factors, axis=1)
        self.order = np.argsort(-norms, kind="stable").astype(np.int32)
        self.sorted_factors = self.item_factors[self.order]
        self.sorted_norms = norms[self.order].astype(np.float32)

    def memory_bytes(self) -> int:
        return self.order.nbytes + self.sorted_factors.nbytes + self.sorted_norms.nbytes

    def _search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scale = float(np.linalg.norm(query)) * (1.0 + BOUND_SLACK)
        kept_scores = np.zeros(0, np.float32)
        kept_rows = np.zeros(0, np.int32)
        start, block = 0, FIRST_BLOCK
        while start < self.n_items:
            stop = min(start + block, self.n_items)
            scores = np.concatenate((kept_scores, self.sorted_factors[start:stop] @ query))
            rows = np.concatenate((kept_rows, self.order[start:stop]))
            if mask is not None:
                keep = np.concatenate((np.ones(len(kept_rows), bool), mask[rows[len(kept_rows) :]]))
                scores, rows = scores[keep], rows[keep]
            # Keep the k best so far, unsorted: select_top sorts once at the end.
            if len(scores) > k:
                best = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
                scores, rows = scores[best], rows[best]
            kept_scores, kept_rows = scores, rows
            start, block = stop, min(2 * block, MAX_BLOCK)
            # No unscored item can score above ‖u‖·‖y_next‖: with k items strictly above
            # it, the rest cannot enter the top k, ties included.
            if (
                len(kept_scores) == k
                and start < self.n_items
                and kept_scores.min() > scale * self.sorted_norms[start]
            ):
                break
        return select_top(kept_scores, kept_rows, k)
