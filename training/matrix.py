"""Interactions to the user × item confidence matrix, with the id maps both ways."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from training.interactions import Interactions
from training.weights import WeightConfig, event_weights, load_weights


@dataclass(frozen=True)
class IdMap:
    """External ids to matrix rows (or columns) and back.

    Attributes
    ----------
    labels : ndarray, shape (n,), str
        ``labels[row]`` is the external id of ``row``.
    """

    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @cached_property
    def _sorter(self) -> np.ndarray:
        return np.argsort(self.labels, kind="stable")

    def rows(self, ids: Iterable[str] | np.ndarray) -> np.ndarray:
        """Rows of ``ids``: int32, shape (len(ids),), -1 for ids not in the map."""
        query = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=str)
        if len(query) == 0 or len(self.labels) == 0:
            return np.full(len(query), -1, dtype=np.int32)
        at = np.searchsorted(self.labels, query, sorter=self._sorter)
        at = np.minimum(at, len(self.labels) - 1)
        rows = self._sorter[at]
        return np.where(self.labels[rows] == query, rows, -1).astype(np.int32)

    def ids(self, rows: np.ndarray) -> np.ndarray:
        """External ids of ``rows`` (int, any shape); same shape, str."""
        return self.labels[rows]


@dataclass
class MatrixReport:
    """What building the matrix kept and dropped (counts of events unless named)."""

    events_in: int = 0
    zero_weight: int = 0
    below_min_counts: int = 0
    events_kept: int = 0
    users: int = 0
    items: int = 0
    nonzeros: int = 0
    filter_rounds: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class InteractionMatrix:
    """The training matrix and everything needed to read it.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, shape (n_users, n_items), float32
        Summed (and transformed) confidence per cell; no explicit zeros.
    users, items : IdMap
        Row and column ids.
    interactions : Interactions
        The events behind ``matrix``, with ``user``/``item`` codes equal to its rows
        and columns (time-aware scorers such as trending read them).
    reference_time : float
        Epoch seconds the decay counted back from; also "now" for trending.
    config : WeightConfig
    report : MatrixReport
    """

    matrix: sp.csr_matrix
    users: IdMap
    items: IdMap
    interactions: Interactions
    reference_time: float
    config: WeightConfig
    report: MatrixReport = field(default_factory=MatrixReport)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def history(
        self, item_ids: Iterable[str], weights: Iterable[float] | None = None
    ) -> sp.csr_matrix:
        """One visitor's items as a (1, n_items) float32 row, for fold-in.

        Unknown item ids are skipped; repeated ids add up. ``weights`` default to 1.
        """
        rows = self.items.rows(list(item_ids))
        values = (
            np.ones(len(rows), np.float32)
            if weights is None
            else np.asarray(list(weights), np.float32)
        )
        known = rows >= 0
        return histories_matrix([rows[known]], self.shape[1], [values[known]])


def histories_matrix(
    item_rows: list[np.ndarray],
    n_items: int,
    weights: list[np.ndarray] | None = None,
) -> sp.csr_matrix:
    """Stack item lists into a CSR matrix, one row per list (repeats add up).

    Parameters
    ----------
    item_rows : list of ndarray of int
        Column indices per row; every index in ``[0, n_items)``.
    n_items : int
    weights : list of ndarray of float, optional
        Same shapes as ``item_rows``; default 1.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (len(item_rows), n_items), float32
    """
    lengths = np.array([len(r) for r in item_rows], dtype=np.int64)
    columns = (
        np.concatenate(item_rows).astype(np.int32) if len(item_rows) else np.zeros(0, np.int32)
    )
    data = (
        np.ones(len(columns), np.float32)
        if weights is None
        else np.concatenate(weights).astype(np.float32)
    )
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    matrix = sp.csr_matrix((data, columns, indptr), shape=(len(item_rows), n_items))
    matrix.sum_duplicates()
    return matrix


def build_matrix(
    interactions: Interactions,
    config: WeightConfig | None = None,
    *,
    reference_time: float | None = None,
) -> InteractionMatrix:
    """Weight events into a user × item CSR matrix.

    Each event contributes :func:`training.weights.event_weights`; events of weight 0
    are dropped; users and items under the config's minimum distinct counterparts are
    dropped repeatedly until none is (a k-core); cells are summed, then transformed.
    Rows and columns are the kept users and items, in the order of ``interactions``'
    vocabularies.

    Parameters
    ----------
    interactions : Interactions
    config : WeightConfig, optional
        Default: :func:`training.weights.load_weights` ().
    reference_time : float, optional
        Epoch seconds for decay; default the last event's time.

    Returns
    -------
    InteractionMatrix
    """
    config = config or load_weights()
    if reference_time is None:
        span = interactions.time_range()
        reference_time = span[1] if span else 0.0
    report = MatrixReport(events_in=len(interactions))
    weights = event_weights(interactions, config, reference_time)
    positive = weights > 0
    report.zero_weight = int(len(weights) - np.count_nonzero(positive))
    core, report.filter_rounds = _k_core(
        interactions.user[positive],
        interactions.item[positive],
        config.min_user_interactions,
        config.min_item_interactions,
    )
    keep = np.flatnonzero(positive)[core]
    report.below_min_counts = int(np.count_nonzero(positive) - len(keep))
    kept = interactions.subset(keep)
    user_codes, user_labels = _compact(kept.user, interactions.users)
    item_codes, item_labels = _compact(kept.item, interactions.items)
    kept = Interactions(
        user_codes, item_codes, kept.time, kept.event, kept.value, user_labels, item_labels
    )
    matrix = _sum_cells(kept, weights[keep], config)
    report.events_kept = len(kept)
    report.users, report.items = matrix.shape
    report.nonzeros = int(matrix.nnz)
    return InteractionMatrix(
        matrix=matrix,
        users=IdMap(user_labels),
        items=IdMap(item_labels),
        interactions=kept,
        reference_time=float(reference_time),
        config=config,
        report=report,
    )


def _k_core(
    users: np.ndarray, items: np.ndarray, min_user: int, min_item: int
) -> tuple[np.ndarray, int]:
    """Bool mask over events whose user and item both pass the bars, and the rounds taken.

    Counts are of distinct (user, item) pairs, so fifty views of one item are one.
    """
    keep = np.ones(len(users), dtype=bool)
    if min_user <= 1 and min_item <= 1:
        return keep, 0
    pair_of_event, pair_user, pair_item = _pairs(users, items)
    alive = np.ones(len(pair_user), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        user_counts = np.bincount(pair_user[alive], minlength=int(users.max(initial=-1)) + 1)
        item_counts = np.bincount(pair_item[alive], minlength=int(items.max(initial=-1)) + 1)
        still = alive & (user_counts[pair_user] >= min_user) & (item_counts[pair_item] >= min_item)
        if np.count_nonzero(still) == np.count_nonzero(alive):
            break
        alive = still
    return alive[pair_of_event], rounds


def _pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs: each event's pair index, and each pair's user and item."""
    width = np.int64(items.max(initial=0)) + 1
    keys, pair_of_event = np.unique(users.astype(np.int64) * width + items, return_inverse=True)
    return (
        pair_of_event.reshape(-1),
        (keys // width).astype(np.int64),
        (keys % width).astype(np.int64),
    )


def _compact(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber ``codes`` to 0..k-1 over the codes in use, keeping the labels' order."""
    used = np.zeros(len(labels), dtype=bool)
    used[codes] = True
    renumber = np.cumsum(used, dtype=np.int64) - 1
    return renumber[codes].astype(np.int32), labels[used]


def _sum_cells(
    interactions: Interactions, weights: np.ndarray, config: WeightConfig
) -> sp.csr_matrix:
    shape = (len(interactions.users), len(interactions.items))
    matrix = sp.coo_matrix((weights, (interactions.user, interactions.item)), shape=shape).tocsr()
    matrix.sum_duplicates()
    if config.transform == "log1p":
        matrix.data = np.log1p(matrix.data)
    matrix.data = matrix.data.astype(np.float32)
    matrix.eliminate_zeros()
    return matrix
