"""Anonymous sessions: building them from a log, and next-item recommenders over them.

Building sessions and fitting and batch-scoring the models live here; one session is
scored for the service by :mod:`training.session_query` (the same formulas, held equal by
a test), evaluated by :mod:`training.session_eval` and shipped by
:mod:`training.session_artifact`.

Building (the protocol of Hidasi & Czapp 2023, ``hidasib/gru4rec_third_party_comparison``
``retailrocket_preproc.py``):

1. a visitor's events, sorted by (time, item), are cut into sessions wherever two
   consecutive events are more than ``gap`` (1 h) apart; all event types take part in
   the cut, as in the reference script, and only then are views kept;
2. an item repeated right after itself is kept once (``i, i, j`` → ``i, j``;
   ``i, j, i`` stays);
3. sessions shorter than 2 and items with fewer than 5 events are dropped, in turn,
   until neither drops anything;
4. sessions starting at or after the cutoff are test; events before it are train
   (a session running over the cutoff is cut there), and train sessions left shorter
   than 2 are dropped;
5. test items missing from train are removed, then test sessions shorter than 2.

Recommenders: one :class:`SessionModel` holds every precomputed structure, and a session
is scored as a weighted sum of parts, each a sparse row combination over the session's
items ``s_1 … s_n`` (oldest first) with recency weights ``w_p = d^(n−p)`` (the last item
weighs 1; ``d`` is the part's ``history_decay``):

- ``transitions`` (sequential rules, Ludewig et al. 2019): ``T[i, j] = Σ 1 / gap^γ``
  over train pairs where ``j`` follows ``i`` within ``steps`` positions;
  ``score = Σ_p w_p T[s_p]``;
- ``walk``: ``hops`` steps of a random walk over the same kind of rules, ``P = T`` with
  each row scaled to a sum of 1: ``score = Σ_p w_p (P^hops)[s_p]``; it reaches items that
  never follow the session's items directly (on RetailRocket it lifts one-item prefixes
  most);
- ``item_knn``: cosine of session co-occurrence, ``S[i, j] = c_ij / sqrt(c_i c_j)``,
  each row pruned to its ``neighbours`` largest; ``score = Σ_p w_p S[s_p]``;
- ``session_knn`` (V-SKNN): similarity to past sessions ``sim(n) = Σ_p w_p [s_p ∈ n]``
  (over each item's ``sample`` most recent sessions, optionally divided by
  ``sqrt(|n|)``), the ``neighbours`` most similar kept, ``score(j) = Σ_n sim(n) [j ∈ n]``;
  with STAN's position decay (Garg et al. 2019) ``[j ∈ n]`` becomes
  ``exp(−|pos_n(j) − pos_n(a)| / λ3)``, ``a`` the newest session item that ``n`` holds;
  V-SKNN's idf weighting multiplies ``w_p`` by ``ι(s_p)^idf_power`` and ``score(j)`` by
  ``1 + idf_boost · ι(j)``, ``ι = log(N / df) / log(N)`` (``df``: train sessions holding
  the item, ``N``: all train sessions), so rare shared items count more;
- ``als``: implicit ALS on the session × item matrix, the session folded in with
  confidences ``alpha · w`` (:func:`training.scorers.als_fold_in`), ``score = x Yᵀ``;
- ``recent``: the session's own items, ``score(s_p) = w_p``: visitors come back to items.

Each part's row is scaled to a sum (or a maximum) of 1 before weighting, a small
popularity term breaks ties, and
the item being viewed (the last one) is never returned: the protocol removed
consecutive repeats, and a shop does not recommend the page the visitor is on.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from training.interactions import Interactions
from training.scorers import als_fold_in
from training.threads import default_num_threads, single_threaded_blas

# The protocol's constants (Hidasi & Czapp 2023, RetailRocket).
SESSION_GAP_SECONDS = 3600.0
MIN_SESSION_LENGTH = 2
MIN_ITEM_SUPPORT = 5
SECONDS_PER_DAY = 86_400.0


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Sessions:
    """Sessions as one ragged array: session ``s`` is ``item[offsets[s]:offsets[s + 1]]``.

    Attributes
    ----------
    item : ndarray, shape (n_events,), int32
        Index into ``items``; within a session, oldest first.
    time : ndarray, shape (n_events,), float64
        Epoch seconds, UTC.
    offsets : ndarray, shape (n_sessions + 1,), int64
        Session boundaries; every session has at least one event.
    visitor : ndarray, shape (n_sessions,), int32
        The visitor (an index into the source log's ``users``) of each session.
    items : ndarray, shape (n_items,), str
        External item ids.
    """

    item: np.ndarray
    time: np.ndarray
    offsets: np.ndarray
    visitor: np.ndarray
    items: np.ndarray

    @classmethod
    def of(
        cls,
        lists: Sequence[Sequence[int]],
        n_items: int,
        *,
        start: float = 0.0,
        apart: float = 7200.0,
        step: float = 60.0,
    ) -> Sessions:
        """Sessions of item codes, one per list, starting ``apart`` seconds apart with
        ``step`` seconds between events, each its own visitor, items named ``i<code>``."""
        lengths = [len(s) for s in lists]
        return cls(
            item=np.concatenate([np.asarray(s, np.int32) for s in lists]),
            time=np.concatenate(
                [start + n * apart + step * np.arange(k) for n, k in enumerate(lengths)]
            ),
            offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
            visitor=np.arange(len(lists), dtype=np.int32),
            items=np.array([f"i{n}" for n in range(n_items)]),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.item)

    @property
    def lengths(self) -> np.ndarray:
        """Events per session: int64, shape (n_sessions,)."""
        return np.diff(self.offsets)

    @property
    def starts(self) -> np.ndarray:
        """Time of each session's first event: float64, shape (n_sessions,)."""
        return self.time[self.offsets[:-1]]

    def session_of_event(self) -> np.ndarray:
        """The session of each event: intp, shape (n_events,)."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def session(self, index: int) -> np.ndarray:
        """The items of one session, oldest first."""
        return self.item[self.offsets[index] : self.offsets[index + 1]]

    def select_events(self, keep: np.ndarray) -> Sessions:
        """Keep the events where ``keep`` (bool, shape (n_events,)); sessions left empty
        disappear, the rest keep their order."""
        counts = np.bincount(self.session_of_event()[keep], minlength=len(self))
        alive = counts > 0
        return Sessions(
            item=self.item[keep],
            time=self.time[keep],
            offsets=np.concatenate(([0], np.cumsum(counts[alive]))).astype(np.int64),
            visitor=self.visitor[alive],
            items=self.items,
        )

    def select_sessions(self, keep: np.ndarray) -> Sessions:
        """Keep the sessions where ``keep`` (bool, shape (n_sessions,)), in order."""
        return self.select_events(np.repeat(keep, self.lengths))

    def stats(self) -> dict[str, Any]:
        """Counts for reports: events, sessions, distinct items, length mean and max."""
        lengths = self.lengths
        return {
            "events": self.n_events,
            "sessions": len(self),
            "items": len(np.unique(self.item)),
            "mean_length": round(float(lengths.mean()), 3) if len(self) else 0.0,
            "max_length": int(lengths.max(initial=0)),
        }


def build_sessions(
    interactions: Interactions,
    *,
    gap_seconds: float = SESSION_GAP_SECONDS,
    event_types: tuple[str, ...] = ("product_view",),
) -> Sessions:
    """Cut each visitor's events into sessions and keep ``event_types``, repeats removed.

    Steps 1 and 2 of the module docstring. Events sort by (visitor, time, item), items by
    their numeric id when every id is a number (as the reference script sorts them);
    a gap of exactly ``gap_seconds`` does not cut, one millisecond more does.

    Parameters
    ----------
    interactions : Interactions
    gap_seconds : float
        Inactivity that ends a session; every event type counts as activity.
    event_types : tuple of str
        Event types that make up sessions.

    Returns
    -------
    Sessions
        Ordered by start time (ties by visitor); item codes as in ``interactions``.
    """
    item_rank = _numeric_rank(interactions.items)[interactions.item]
    order = np.lexsort((item_rank, interactions.time, interactions.user))
    user = interactions.user[order]
    # Whole milliseconds, so that "more than one hour" is exact.
    millis = np.round(interactions.time[order] * 1000.0).astype(np.int64)
    cut = np.ones(len(order), dtype=bool)
    cut[1:] = (user[1:] != user[:-1]) | (np.diff(millis) > round(gap_seconds * 1000.0))
    session = np.cumsum(cut) - 1
    wanted = interactions.event_mask(event_types)[order]
    kept, session = order[wanted], session[wanted]
    item = interactions.item[kept]
    repeat = np.zeros(len(kept), dtype=bool)
    repeat[1:] = (session[1:] == session[:-1]) & (item[1:] == item[:-1])
    kept, session = kept[~repeat], session[~repeat]
    return _from_sorted_events(interactions, kept, session)


def _numeric_rank(labels: np.ndarray) -> np.ndarray:
    """Rank of each label: by integer value when all are integers, else as text."""
    try:
        keys = labels.astype(np.int64)
    except ValueError:
        keys = labels
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.argsort(keys, kind="stable")] = np.arange(len(labels))
    return rank


def _from_sorted_events(
    interactions: Interactions, events: np.ndarray, session: np.ndarray
) -> Sessions:
    """Sessions from event indices grouped by non-decreasing session number."""
    starts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]]) if len(session) else []
    offsets = np.append(np.asarray(starts, dtype=np.int64), len(events))
    grouped = Sessions(
        item=interactions.item[events],
        time=interactions.time[events],
        offsets=offsets,
        visitor=interactions.user[events[offsets[:-1]]].astype(np.int32),
        items=interactions.items,
    )
    return _order_by_start(grouped)


def ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups ``g`` of ``counts[g]`` consecutive indices from ``starts[g]``: the group
    and the index of every element, groups in order."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return group, starts[group] + np.arange(counts.sum()) - first[group]


def row_entries(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every stored entry of ``matrix[rows]``: the position in ``rows`` it belongs to and
    its index into ``matrix.indices`` and ``matrix.data``."""
    starts = matrix.indptr[rows]
    return ragged(starts, matrix.indptr[rows + 1] - starts)


def _order_by_start(sessions: Sessions) -> Sessions:
    """The same sessions, ordered by start time (session-kNN samples the most recent)."""
    order = np.lexsort((sessions.visitor, sessions.starts))
    lengths = sessions.lengths[order]
    starts = sessions.offsets[:-1][order]
    _, events = ragged(starts, lengths)
    return Sessions(
        item=sessions.item[events],
        time=sessions.time[events],
        offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        visitor=sessions.visitor[order],
        items=sessions.items,
    )


def filter_sessions(
    sessions: Sessions,
    *,
    min_length: int = MIN_SESSION_LENGTH,
    min_item_support: int = MIN_ITEM_SUPPORT,
) -> tuple[Sessions, int]:
    """Drop short sessions, then rare items, in turn until neither drops anything.

    Dropping an item can shorten a session below ``min_length``, and dropping that
    session can take an item below ``min_item_support``, hence the loop. Repeats that
    become consecutive when an item between them goes are kept, as in the reference.

    Parameters
    ----------
    sessions : Sessions
    min_length : int
        Fewest events a session keeps.
    min_item_support : int
        Fewest events (over all sessions) an item keeps.

    Returns
    -------
    sessions : Sessions
    rounds : int
        Passes made, the last of which changed nothing.
    """
    rounds = 0
    while True:
        rounds += 1
        before = sessions.n_events
        sessions = sessions.select_sessions(sessions.lengths >= min_length)
        support = np.bincount(sessions.item, minlength=len(sessions.items))
        sessions = sessions.select_events(support[sessions.item] >= min_item_support)
        if sessions.n_events == before:
            return sessions, rounds


def split_sessions(
    sessions: Sessions, cutoff: float, *, min_length: int = MIN_SESSION_LENGTH
) -> tuple[Sessions, Sessions]:
    """Train: events before ``cutoff``; test: sessions starting at or after it.

    Step 4 of the module docstring. A session that starts before the cutoff and runs
    past it stays in train, cut at the cutoff (the reference keeps ``Time < tsplit``).

    Parameters
    ----------
    sessions : Sessions
    cutoff : float
        Epoch seconds, UTC.
    min_length : int
        Train sessions shorter than this after the cut are dropped.

    Returns
    -------
    train, test : Sessions
        Same item codes as ``sessions``.
    """
    test = sessions.select_sessions(sessions.starts >= cutoff)
    train = sessions.select_events(sessions.time < cutoff)
    train = train.select_sessions(train.lengths >= min_length)
    return train, test


def restrict_items(
    sessions: Sessions, vocabulary: np.ndarray, *, min_length: int = MIN_SESSION_LENGTH
) -> Sessions:
    """Recode ``sessions`` to rows of ``vocabulary``, dropping unknown items, then short
    sessions.

    Parameters
    ----------
    sessions : Sessions
    vocabulary : ndarray, shape (n_items,), int
        Item codes of ``sessions`` that become rows ``0 … n_items − 1``, in this order.
    min_length : int

    Returns
    -------
    Sessions
        ``items`` is ``sessions.items[vocabulary]``.
    """
    row_of = np.full(len(sessions.items), -1, dtype=np.int32)
    row_of[vocabulary] = np.arange(len(vocabulary), dtype=np.int32)
    known = row_of[sessions.item] >= 0
    kept = sessions.select_events(known)
    kept = replace(kept, item=row_of[kept.item], items=sessions.items[vocabulary])
    return kept.select_sessions(kept.lengths >= min_length)


@dataclass
class SessionSplit:
    """Train and test sessions over the train items (rows ``0 … n_items − 1``).

    Attributes
    ----------
    train, test : Sessions
    cutoff : float
        Epoch seconds, UTC: test sessions start at or after it.
    report : dict
        Counts at each step, for the report.
    """

    train: Sessions
    test: Sessions
    cutoff: float
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.train.items)


def session_split(sessions: Sessions, cutoff: float) -> SessionSplit:
    """Steps 4 and 5: split at ``cutoff`` and recode both sides to the train items.

    Parameters
    ----------
    sessions : Sessions
        Filtered (:func:`filter_sessions`).
    cutoff : float
        Epoch seconds, UTC.

    Returns
    -------
    SessionSplit
    """
    train, test = split_sessions(sessions, cutoff)
    vocabulary = np.unique(train.item)
    train_rows = restrict_items(train, vocabulary)
    test_rows = restrict_items(test, vocabulary)
    report = {
        "cutoff": cutoff,
        "train": train_rows.stats(),
        "test_before_item_filter": test.stats(),
        "test": test_rows.stats(),
        "predictions": int(test_rows.n_events - len(test_rows)),
    }
    return SessionSplit(train_rows, test_rows, cutoff, report)


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class SessionBatch:
    """Sessions (or session prefixes) to score: row ``r`` is
    ``item[offsets[r]:offsets[r + 1]]``, oldest first, in model item rows.

    Attributes
    ----------
    item : ndarray, shape (total,), int32
    offsets : ndarray, shape (b + 1,), int64
    """

    item: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, sessions: Sequence[Sequence[int] | np.ndarray]) -> SessionBatch:
        """A batch from a list of item-row lists."""
        lengths = [len(s) for s in sessions]
        items = np.concatenate([np.asarray(s, np.int32) for s in sessions]) if sessions else []
        return cls(np.asarray(items, np.int32), np.concatenate(([0], np.cumsum(lengths))))

    def rows(self, start: int, stop: int) -> SessionBatch:
        """Rows ``start … stop − 1`` as their own batch."""
        lo, hi = self.offsets[start], self.offsets[stop]
        return SessionBatch(self.item[lo:hi], self.offsets[start : stop + 1] - lo)

    def last_items(self) -> np.ndarray:
        """The newest item of each row (rows must be non-empty): int32, shape (b,)."""
        return self.item[self.offsets[1:] - 1]

    def weights(self, decay: float, n_items: int) -> sp.csr_matrix:
        """Recency-weighted rows: ``Q[r, s_p] = Σ decay^(n − p)`` over the positions ``p``
        of item ``s_p`` in row ``r`` of length ``n`` (the newest weighs 1).

        Returns
        -------
        scipy.sparse.csr_matrix, shape (b, n_items), float32
            ``decay = 0`` keeps only the newest item.
        """
        lengths = np.diff(self.offsets)
        row = np.repeat(np.arange(len(self)), lengths)
        age = self.offsets[1:][row] - 1 - np.arange(len(self.item))
        data = np.power(np.float32(decay), age.astype(np.float32))
        matrix = sp.csr_matrix((data, (row, self.item)), shape=(len(self), n_items))
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return matrix


def next_item_cases(sessions: Sessions, max_history: int) -> tuple[SessionBatch, np.ndarray]:
    """Every next-item prediction in ``sessions``: each prefix and the item after it.

    A session ``s_1 … s_n`` gives ``n − 1`` cases, ``(s_1 … s_t) → s_{t+1}``; prefixes
    keep their newest ``max_history`` items.

    Returns
    -------
    prefixes : SessionBatch
        ``Σ (n − 1)`` rows.
    targets : ndarray, shape (Σ (n − 1),), int32
    """
    first = np.zeros(sessions.n_events, dtype=bool)
    first[sessions.offsets[:-1]] = True
    target_at = np.flatnonzero(~first)
    session_start = sessions.offsets[:-1][sessions.session_of_event()[target_at]]
    start = np.maximum(session_start, target_at - max_history)
    lengths = target_at - start
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    _, index = ragged(start, lengths)
    return SessionBatch(sessions.item[index], offsets), sessions.item[target_at]


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TransitionParams:
    """Sequential rules: ``T[i, j] = Σ r · gap^(−gap_power)`` over pairs ``i → j`` at
    most ``steps`` positions apart in a train session (Ludewig et al.'s SR: 10 steps,
    1/gap), plus ``backward`` times the same for ``j → i`` (1 makes them symmetric
    association rules). ``r = 2^(−age / half_life_days)`` with ``age`` the days from the
    pair's later event to the end of train (0: no decay; catalogues change).
    ``history_decay`` 0 scores from the last item only."""

    weight: float = 1.0
    steps: int = 10
    gap_power: float = 1.0
    history_decay: float = 0.0
    backward: float = 0.0
    half_life_days: float = 0.0


@dataclass(frozen=True)
class WalkParams(TransitionParams):
    """``hops`` steps of a random walk over sequential rules: ``P`` is ``T`` built with
    these :class:`TransitionParams` fields, each row scaled to a sum of 1, and a session
    scores ``Σ_p w_p (P^hops)[s_p]``, computed as ``hops`` sparse products at scoring
    time (``P²`` itself is too dense to keep). ``history_decay`` 0 walks from the last
    item only. ``max_rules`` (0: all) keeps each item's largest rules before scaling: it
    bounds the second hop, whose entries a hub item otherwise multiplies into the
    hundred thousands (one session's p99 on RetailRocket test: 5.2 ms whole, 1.8 ms cut
    to 200, for Recall@20 0.5205 and 0.5201)."""

    hops: int = 2
    max_rules: int = 0


@dataclass(frozen=True)
class ItemKNNParams:
    """Cosine of session co-occurrence, ``neighbours`` kept per item."""

    weight: float = 1.0
    neighbours: int = 200
    history_decay: float = 0.5


@dataclass(frozen=True)
class SessionKNNParams:
    """V-SKNN: ``neighbours`` past sessions among each item's ``sample`` most recent;
    ``normalize`` divides a neighbour's similarity by ``sqrt(its length)``, and
    ``half_life_days`` (0: off) multiplies it by ``2^(−age / half_life_days)``, ``age``
    the days from the neighbour's start to the end of train (STAN's session recency).

    ``position_decay`` (STAN's λ3; 0: off) weighs an item ``j`` of neighbour ``n`` by
    ``exp(−|pos_n(j) − pos_n(a)| / position_decay)``, ``a`` the newest item of the
    current session that ``n`` holds (positions of each item's last occurrence in ``n``);
    items before ``a`` are further multiplied by ``backward``. ``history_decay`` is
    STAN's λ1 (``d = exp(−1/λ1)``) and ``half_life_days`` its λ2.

    ``idf_power`` (0: off) multiplies the weight of session item ``s_p`` in the
    similarity by ``ι(s_p)^idf_power`` and ``idf_boost`` (0: off) multiplies the score of
    candidate ``j`` by ``1 + idf_boost · ι(j)``, with ``ι = log(N / df) / log(N)``, ``df``
    the train sessions holding the item and ``N`` all train sessions (V-SKNN's idf
    weighting, Ludewig et al. 2019, scaled to ``[0, 1]``)."""

    weight: float = 1.0
    neighbours: int = 100
    sample: int = 500
    history_decay: float = 0.7
    normalize: bool = True
    half_life_days: float = 0.0
    position_decay: float = 0.0
    backward: float = 1.0
    idf_power: float = 0.0
    idf_boost: float = 0.0


@dataclass(frozen=True)
class ALSParams:
    """implicit ALS on session × item (binary), folded in with confidences ``alpha · w``."""

    weight: float = 1.0
    factors: int = 64
    regularization: float = 1.0
    alpha: float = 20.0
    iterations: int = 15
    history_decay: float = 0.7
    random_state: int = 42


@dataclass(frozen=True)
class RecentParams:
    """The session's own earlier items, newest first."""

    weight: float = 1.0
    history_decay: float = 0.5


@dataclass(frozen=True)
class SessionConfig:
    """Which parts a session model blends, with their parameters (``None``: not used).

    Attributes
    ----------
    transitions, walk, item_knn, session_knn, als, recent : params or None
    scaling : {"sum", "max"}
        Each part's row is divided by its sum of absolute values (a distribution over
        items) or by its maximum before weighting. ``sum`` keeps a part whose mass is
        spread over many candidates from being outweighed by one that puts it all on the
        session's own items (session-kNN does); it measured better on the validation week.
    popularity_tiebreak : float
        Weight of train popularity (scaled to a maximum of 1), so that items no part
        scores are ranked by popularity rather than arbitrarily.
    exclude_current : bool
        Never return the session's newest item.
    max_history : int
        Newest items of a session that are scored; older ones weigh ``≤ d^max_history``.
    """

    transitions: TransitionParams | None = field(default_factory=TransitionParams)
    walk: WalkParams | None = None
    item_knn: ItemKNNParams | None = None
    session_knn: SessionKNNParams | None = None
    als: ALSParams | None = None
    recent: RecentParams | None = None
    scaling: Literal["sum", "max"] = "sum"
    popularity_tiebreak: float = 1e-3
    exclude_current: bool = True
    max_history: int = 50

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, unused parts left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}


PART_PARAMS: dict[str, type] = {
    "transitions": TransitionParams,
    "walk": WalkParams,
    "item_knn": ItemKNNParams,
    "session_knn": SessionKNNParams,
    "als": ALSParams,
    "recent": RecentParams,
}


def tuned_blend() -> SessionConfig:
    """The blend the service serves: rules, a two-step walk, item-kNN, STAN-weighted
    session-kNN with idf, and the session's own items, tuned on RetailRocket's validation
    week (the sweeps are in :func:`training.protocols.retailrocket_session_configs`)."""
    return SessionConfig(
        transitions=TransitionParams(weight=0.6, history_decay=0.6, backward=0.5, gap_power=0.5),
        walk=WalkParams(weight=2.0, history_decay=0.0, backward=0.5, gap_power=0.5, max_rules=200),
        item_knn=ItemKNNParams(weight=0.3, neighbours=500, history_decay=0.7),
        session_knn=SessionKNNParams(
            neighbours=300,
            sample=500,
            history_decay=0.6,
            normalize=True,
            half_life_days=90.0,
            position_decay=8.0,
            idf_power=4.0,
            idf_boost=4.0,
        ),
        recent=RecentParams(history_decay=0.7),
    )


@dataclass
class SessionModel:
    """Everything :func:`score_sessions` needs; numpy and scipy arrays only.

    Attributes
    ----------
    config : SessionConfig
    items : ndarray, shape (n_items,), str
        External id of each item row.
    popularity : ndarray, shape (n_items,), float32
        Train events per item over the most, in ``[0, 1]``.
    transitions : scipy.sparse.csr_matrix, shape (n_items, n_items), float32, or None
    walk : scipy.sparse.csr_matrix, shape (n_items, n_items), float32, or None
        Row-stochastic rules ``P`` (:class:`WalkParams`).
    item_similarity : scipy.sparse.csr_matrix, shape (n_items, n_items), float32, or None
    session_items : scipy.sparse.csr_matrix, shape (n_sessions, n_items), float32, or None
        Binary, a row per train session.
    item_sessions : scipy.sparse.csr_matrix, shape (n_items, n_sessions), float32, or None
        Each item's ``sample`` most recent sessions, valued ``1 / sqrt(length)`` when
        normalising, else 1.
    session_positions : scipy.sparse.csr_matrix, shape (n_sessions, n_items), int32, or None
        1 + the position of each item's last occurrence in each train session (session-kNN
        with ``position_decay`` only).
    item_idf : ndarray, shape (n_items,), float32, or None
        ``ι = log(N / df) / log(N)`` (session-kNN with ``idf_power`` or ``idf_boost`` only).
    item_factors : ndarray, shape (n_items, f), float32, or None
    gram : ndarray, shape (f, f), float64, or None
        ``YᵀY``.
    fit_seconds : dict of str to float
        Per part.
    """

    config: SessionConfig
    items: np.ndarray
    popularity: np.ndarray
    transitions: sp.csr_matrix | None = None
    walk: sp.csr_matrix | None = None
    item_similarity: sp.csr_matrix | None = None
    session_items: sp.csr_matrix | None = None
    item_sessions: sp.csr_matrix | None = None
    session_positions: sp.csr_matrix | None = None
    item_idf: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    gram: np.ndarray | None = None
    fit_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @cached_property
    def tiebreak_order(self) -> np.ndarray:
        """Item rows by descending popularity tiebreak, equal ones by row: how the items
        no part scores rank (``training.session_query``)."""
        tiebreak = np.float32(self.config.popularity_tiebreak) * self.popularity
        return np.argsort(-tiebreak, kind="stable").astype(np.int32)


def fit_session_model(
    train: Sessions, config: SessionConfig, *, show_progress: bool = False
) -> SessionModel:
    """Precompute every part ``config`` uses from train sessions (item rows as model rows).

    Parameters
    ----------
    train : Sessions
        Item codes ``0 … len(train.items) − 1``.
    config : SessionConfig
    show_progress : bool
        ALS's progress bar.

    Returns
    -------
    SessionModel
    """
    n_items = len(train.items)
    counts = np.bincount(train.item, minlength=n_items).astype(np.float32)
    model = SessionModel(config, train.items, counts / max(counts.max(initial=0), 1.0))
    binary = _session_item_matrix(train, n_items)
    steps = {
        "transitions": lambda p: setattr(model, "transitions", fit_transitions(train, n_items, p)),
        "walk": lambda p: setattr(
            model, "walk", fit_walk(train, n_items, p, _same_rules(model, p))
        ),
        "item_knn": lambda p: setattr(
            model, "item_similarity", fit_item_cosine(binary, p.neighbours)
        ),
        "session_knn": lambda p: _fit_session_index(model, binary, train, p),
        "als": lambda p: _fit_als(model, binary, p, show_progress),
    }
    for name, fit in steps.items():
        params = getattr(config, name)
        if params is not None and params.weight:
            started = clock.perf_counter()
            fit(params)
            model.fit_seconds[name] = round(clock.perf_counter() - started, 3)
    return model


def _same_rules(model: SessionModel, walk: WalkParams) -> sp.csr_matrix | None:
    """The transitions part's rules when the walk's are built the same way (the tuned
    blend's are): no second pass over the sessions."""
    rules = model.config.transitions
    fields_ = ("steps", "gap_power", "backward", "half_life_days")
    if model.transitions is None or rules is None:
        return None
    same = all(getattr(rules, name) == getattr(walk, name) for name in fields_)
    return model.transitions if same else None


def _session_item_matrix(sessions: Sessions, n_items: int) -> sp.csr_matrix:
    """Binary session × item: 1 where the item is in the session (repeats count once)."""
    rows = sessions.session_of_event()
    matrix = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, sessions.item)), shape=(len(sessions), n_items)
    )
    matrix.data[:] = 1.0
    return matrix


def fit_transitions(sessions: Sessions, n_items: int, params: TransitionParams) -> sp.csr_matrix:
    """Sequential rules (:class:`TransitionParams`): ``T[i, j]`` sums the weights of the
    train pairs where ``j`` comes ``gap ≤ steps`` positions after ``i`` in one session.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_items, n_items), float32
    """
    session = sessions.session_of_event()
    recency = _recency(sessions.time, params.half_life_days)
    rows, cols, vals = [], [], []
    for gap in range(1, params.steps + 1):
        same = np.flatnonzero(session[gap:] == session[:-gap])
        weight = recency[same + gap] * np.float32(gap ** (-params.gap_power))
        rows.append(sessions.item[same])
        cols.append(sessions.item[same + gap])
        vals.append(weight)
        if params.backward:
            rows.append(sessions.item[same + gap])
            cols.append(sessions.item[same])
            vals.append(weight * np.float32(params.backward))
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )
    matrix.sum_duplicates()
    return matrix


def fit_walk(
    sessions: Sessions, n_items: int, params: WalkParams, rules: sp.csr_matrix | None = None
) -> sp.csr_matrix:
    """``P``: the rules of :func:`fit_transitions` (``rules`` when already built with the
    same parameters), each row cut to ``max_rules`` and the non-empty ones scaled to a sum
    of 1.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_items, n_items), float32
    """
    if rules is None:
        rules = fit_transitions(sessions, n_items, params)
    if params.max_rules:
        rules = keep_top_per_row(rules, params.max_rules)
    sums = np.asarray(rules.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return sp.csr_matrix(sp.diags(inverse.astype(np.float32)) @ rules, dtype=np.float32)


def item_idf(session_items: sp.csr_matrix) -> np.ndarray:
    """``log(N / df) / log(N)`` per item: ``df`` sessions (rows) hold it (at least 1),
    ``N`` rows in all; 1 for an item in one session, 0 for one in all. float32."""
    n_sessions = session_items.shape[0]
    df = np.maximum(np.diff(session_items.tocsc().indptr), 1).astype(np.float64)
    scale = np.log(n_sessions) if n_sessions > 1 else 1.0
    return (np.log(n_sessions / df) / scale).astype(np.float32)


def _recency(times: np.ndarray, half_life_days: float) -> np.ndarray:
    """``2^(−(T − t) / half_life)`` with ``T`` the latest of ``times``; 1 when the
    half-life is 0. float32, same shape."""
    if not half_life_days or len(times) == 0:
        return np.ones(len(times), dtype=np.float32)
    age_days = (times.max() - times) / SECONDS_PER_DAY
    return np.exp2(-age_days / half_life_days).astype(np.float32)


def fit_item_cosine(session_items: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """``S[i, j] = c_ij / sqrt(c_i c_j)`` for ``i ≠ j``, where ``c_ij`` counts the
    sessions holding both and ``c_i`` those holding ``i``; each row keeps its
    ``neighbours`` largest.

    Parameters
    ----------
    session_items : scipy.sparse.csr_matrix, shape (n_sessions, n_items)
        Binary.
    neighbours : int

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_items, n_items), float32
    """
    by_item = session_items.T.tocsr()
    cooc = (by_item @ session_items).tocsr()
    cooc.setdiag(0)
    cooc.eliminate_zeros()
    norm = 1.0 / np.sqrt(np.maximum(by_item.getnnz(axis=1), 1)).astype(np.float32)
    cosine = sp.diags(norm) @ cooc @ sp.diags(norm)
    return keep_top_per_row(sp.csr_matrix(cosine, dtype=np.float32), neighbours)


def _session_positions(sessions: Sessions, n_items: int) -> sp.csr_matrix:
    """Session × item: 1 + the position of the item's last occurrence in the session."""
    rows = sessions.session_of_event()
    position = np.arange(sessions.n_events) - sessions.offsets[rows]
    order = np.lexsort((position, sessions.item, rows))
    row, item = rows[order], sessions.item[order]
    last = np.r_[(row[1:] != row[:-1]) | (item[1:] != item[:-1]), True]
    return sp.csr_matrix(
        ((position[order][last] + 1).astype(np.int32), (row[last], item[last])),
        shape=(len(sessions), n_items),
    )


def _fit_session_index(
    model: SessionModel, session_items: sp.csr_matrix, train: Sessions, params: SessionKNNParams
) -> None:
    starts = train.starts
    model.session_items = session_items
    if params.position_decay:
        model.session_positions = _session_positions(train, session_items.shape[1])
    if params.idf_power or params.idf_boost:
        model.item_idf = item_idf(session_items)
    index = session_items.T.tocsr()
    index.sort_indices()
    # Sessions are ordered by start, so a row's last entries are its newest sessions.
    row = np.repeat(np.arange(index.shape[0]), np.diff(index.indptr))
    from_end = index.indptr[row + 1] - np.arange(index.nnz)
    keep = from_end <= params.sample
    index = sp.csr_matrix((index.data[keep], (row[keep], index.indices[keep])), shape=index.shape)
    weight = _recency(starts, params.half_life_days)
    if params.normalize:
        lengths = np.diff(session_items.indptr).astype(np.float32)
        weight /= np.sqrt(np.maximum(lengths, 1.0))
    model.item_sessions = sp.csr_matrix(index @ sp.diags(weight), dtype=np.float32)


def _fit_als(
    model: SessionModel, session_items: sp.csr_matrix, params: ALSParams, show_progress: bool
) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    # implicit checks the BLAS thread count when a model is made: pin it first.
    with single_threaded_blas():
        als = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=params.random_state,
            num_threads=default_num_threads(),
        )
        als.fit(session_items, show_progress=show_progress)
    model.item_factors = np.asarray(als.item_factors, dtype=np.float32)
    model.gram = model.item_factors.T.astype(np.float64) @ model.item_factors


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The ``k`` largest entries of each row (ties: the lower column), the rest dropped.

    Only rows longer than ``k`` are looked at, each with a partition rather than a sort
    (a global sort of every entry took half of ``recsvc train``'s session fit).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix, shape (m, n)
    k : int

    Returns
    -------
    scipy.sparse.csr_matrix, shape (m, n), same dtype, indices sorted
    """
    matrix = sp.csr_matrix(matrix)
    counts = np.diff(matrix.indptr)
    keep = np.full(matrix.nnz, k > 0)
    for row in np.flatnonzero(counts > max(k, 0)) if k > 0 else []:
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        keep[lo:hi] = _largest(matrix.data[lo:hi], matrix.indices[lo:hi], k)
    kept = np.bincount(np.repeat(np.arange(matrix.shape[0]), counts)[keep], minlength=len(counts))
    indptr = np.concatenate(([0], np.cumsum(kept))).astype(matrix.indptr.dtype)
    out = sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)
    out.sort_indices()
    return out


def _largest(values: np.ndarray, columns: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` largest ``values`` (``k < len(values)``), ties to lower columns."""
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    keep = values > threshold
    ties = np.flatnonzero(values == threshold)
    keep[ties[np.argsort(columns[ties], kind="stable")][: k - int(keep.sum())]] = True
    return keep


# --------------------------------------------------------------------------- scoring


def score_sessions(model: SessionModel, batch: SessionBatch) -> np.ndarray:
    """Scores of every item for each session in ``batch`` (module docstring formulas).

    Parameters
    ----------
    model : SessionModel
    batch : SessionBatch
        Non-empty rows of item rows, oldest first; at most ``config.max_history`` of
        each row's newest items are used by the caller's choice (``recommend_session``
        and :func:`next_item_cases` cut them).

    Returns
    -------
    ndarray, shape (b, n_items), float32
        Higher is better; the newest item of each row is ``-inf`` when
        ``config.exclude_current``.
    """
    config = model.config
    total = np.repeat(
        config.popularity_tiebreak * model.popularity[None, :], len(batch), axis=0
    ).astype(np.float32)
    for _name, scores, factor in _weighted_parts(model, batch):
        dense = scores.toarray() if sp.issparse(scores) else scores
        total += dense * factor
    if config.exclude_current:
        total[np.arange(len(batch)), batch.last_items()] = -np.inf
    return total


def _weighted_parts(
    model: SessionModel, batch: SessionBatch
) -> Iterator[tuple[str, sp.csr_matrix | np.ndarray, np.ndarray]]:
    """Each part in use: its name, its raw scores (sparse, or dense for ALS) and the
    factor, shape (b, 1), that scales each row to the part's weight (``weight / scale``)."""
    config = model.config
    for name, part in _PARTS.items():
        params = getattr(config, name)
        if params is None or not params.weight:
            continue
        scores = part(model, batch, params)
        magnitude = abs(scores)
        if config.scaling == "sum":
            scale = np.asarray(magnitude.sum(axis=1), dtype=np.float32).reshape(-1, 1)
        elif sp.issparse(magnitude):
            scale = magnitude.max(axis=1).toarray().astype(np.float32)
        else:
            scale = magnitude.max(axis=1, keepdims=True)
        yield name, scores, np.float32(params.weight) / np.where(scale > 0, scale, 1.0)


def _transition_scores(
    model: SessionModel, batch: SessionBatch, params: TransitionParams
) -> sp.csr_matrix:
    query = batch.weights(params.history_decay, model.n_items)
    return sp.csr_matrix(query @ model.transitions)


def _walk_scores(model: SessionModel, batch: SessionBatch, params: WalkParams) -> sp.csr_matrix:
    scores = batch.weights(params.history_decay, model.n_items)
    for _ in range(params.hops):
        scores = scores @ model.walk
    return sp.csr_matrix(scores)


def _item_knn_scores(
    model: SessionModel, batch: SessionBatch, params: ItemKNNParams
) -> sp.csr_matrix:
    query = batch.weights(params.history_decay, model.n_items)
    return sp.csr_matrix(query @ model.item_similarity)


def _session_knn_scores(
    model: SessionModel, batch: SessionBatch, params: SessionKNNParams
) -> sp.csr_matrix:
    query = batch.weights(params.history_decay, model.n_items)
    if params.idf_power:  # row entries scaled in place: no pass over the catalog
        query.data *= model.item_idf[query.indices] ** np.float32(params.idf_power)
    similarity = keep_top_per_row((query @ model.item_sessions).tocsr(), params.neighbours)
    if not params.position_decay:
        scores = sp.csr_matrix(similarity @ model.session_items)
    else:
        scores = _positional_scores(model, batch, similarity.tocoo(), params)
    if params.idf_boost:
        scores.data *= 1.0 + np.float32(params.idf_boost) * model.item_idf[scores.indices]
    return scores


def _positional_scores(
    model: SessionModel, batch: SessionBatch, similarity: sp.coo_matrix, params: SessionKNNParams
) -> sp.csr_matrix:
    """STAN's λ3: ``score(j) = Σ_n sim(n) exp(−|pos_n(j) − pos_n(a)| / λ3)``, ``a`` the
    newest item of the row that neighbour ``n`` holds."""
    positions = model.session_positions
    row, neighbour, sim = similarity.row, similarity.col, similarity.data
    # Anchor: every (pair, query item) looked up; the newest hit of each pair.
    pair, event = ragged(batch.offsets[row], np.diff(batch.offsets)[row])
    found = np.asarray(positions[neighbour[pair], batch.item[event]]).ravel()
    hit = np.flatnonzero(found)
    newest = hit[np.r_[pair[hit][1:] != pair[hit][:-1], True]]
    anchor = np.zeros(len(row), dtype=np.float32)
    anchor[pair[newest]] = found[newest]
    # Expand each pair over its neighbour's items.
    owner, entry = row_entries(positions, neighbour)
    distance = positions.data[entry].astype(np.float32) - anchor[owner]
    weight = np.exp(-np.abs(distance) / np.float32(params.position_decay))
    weight = np.where(distance < 0, weight * np.float32(params.backward), weight)
    weight = np.where(anchor[owner] > 0, weight, 1.0).astype(np.float32) * sim[owner]
    scores = sp.csr_matrix(
        (weight, (row[owner], positions.indices[entry])), shape=(len(batch), model.n_items)
    )
    scores.sum_duplicates()
    return scores


def _als_scores(model: SessionModel, batch: SessionBatch, params: ALSParams) -> np.ndarray:
    query = batch.weights(params.history_decay, model.n_items)
    vectors = als_fold_in(
        model.item_factors, model.gram, query, params.regularization, params.alpha
    )
    return vectors @ model.item_factors.T


def _recent_scores(model: SessionModel, batch: SessionBatch, params: RecentParams) -> sp.csr_matrix:
    return batch.weights(params.history_decay, model.n_items)


_PARTS = {
    "transitions": _transition_scores,
    "walk": _walk_scores,
    "item_knn": _item_knn_scores,
    "session_knn": _session_knn_scores,
    "als": _als_scores,
    "recent": _recent_scores,
}
