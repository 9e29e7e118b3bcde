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

Fitting: :func:`fit_session_model` precomputes every part a
:class:`~recsvc.scoring.session_model.SessionConfig` uses (the formulas and the scoring are in
:mod:`recsvc.scoring.session_model`, the one place the service and the evaluation score a
session); :func:`fit_served_sessions` fits the model a version ships.
"""

from __future__ import annotations

import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsvc.scoring.session_model import (
    SESSION_GAP_SECONDS,
    ALSParams,
    SessionConfig,
    SessionKNNParams,
    SessionModel,
    TransitionParams,
    WalkParams,
)
from recsvc.scoring.sparse import ragged
from training.interactions import Interactions
from training.matrix import IdMap
from training.threads import default_num_threads, single_threaded_blas

# The protocol's constants (Hidasi & Czapp 2023, RetailRocket); the session gap is the
# served one too (recsvc.scoring.session_model).
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


def fit_served_sessions(
    interactions: Interactions,
    item_ids: np.ndarray,
    config: SessionConfig,
    *,
    gap_seconds: float = SESSION_GAP_SECONDS,
    show_progress: bool = False,
) -> tuple[SessionModel | None, dict[str, Any]]:
    """The session model a version ships, over ``item_ids`` (its item rows, in order).

    Sessions are cut as the published protocol cuts them (:func:`build_sessions`: views,
    ``gap_seconds`` of inactivity, consecutive repeats removed); items the version does
    not have are dropped, then sessions left shorter than 2, which teach no transition.

    Returns
    -------
    model : SessionModel or None
        None when no session of 2 known items is left.
    report : dict
        Session counts and fit seconds, for the manifest.
    """
    sessions = build_sessions(interactions, gap_seconds=gap_seconds)
    codes = IdMap(interactions.items).rows(np.asarray(item_ids).astype(str))
    train = restrict_items(sessions, codes)
    report: dict[str, Any] = {"sessions": train.stats()}
    if len(train) == 0:
        return None, report
    model = fit_session_model(train, config, show_progress=show_progress)
    report["fit_seconds"] = model.fit_seconds
    return model, report
