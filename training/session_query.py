"""One session scored and explained: the service's path through a :class:`SessionModel`.

:func:`recommend_session` computes what :func:`training.sessions.score_sessions` computes
for a batch of one (the formulas of :mod:`training.sessions`; a test holds them equal),
but gathers the session's rows straight from the CSR arrays with numpy: the batch path
builds a dozen scipy matrices per part, whose fixed cost (about 0.1 ms each) made one
session take 5 ms on RetailRocket. Each sparse part becomes a list of (item, value)
entries, summed in one pass over the catalog; the top is then chosen among the items
scored and the most popular others (every other item scores only its popularity
tiebreak), not over the whole catalog.

:func:`explain_session` splits a recommended item's score over the session's items for
the parts that are sums over them (rules, walk, item-kNN, the session's own items), as
the service's ``evidence`` shows; session-kNN's share is not split (it scores through the
neighbour sessions all the session's items select together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from training.scorers import top_k
from training.sessions import (
    SessionBatch,
    SessionKNNParams,
    SessionModel,
    row_entries,
    score_sessions,
)

Entries = tuple[np.ndarray, np.ndarray]  # (item or session rows int64, values float32)


@dataclass
class SessionRecommendation:
    """:func:`recommend_session`'s answer.

    Attributes
    ----------
    ids : ndarray, shape (k,), int32
        Item rows, best first; ``-1`` past the last item that may be returned.
    scores : ndarray, shape (k,), float32
        ``-inf`` where ``ids`` is ``-1``.
    factors : dict of str to float
        Each part's ``weight / scale`` for this session (:func:`explain_session`).
    """

    ids: np.ndarray
    scores: np.ndarray
    factors: dict[str, float] = field(default_factory=dict)


def recommend_session(
    model: SessionModel,
    items: Sequence[int] | np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> SessionRecommendation:
    """Top ``k`` item rows for one session.

    Parameters
    ----------
    model : SessionModel
    items : sequence of int
        The session's item rows, oldest first (unknown items already dropped); only the
        newest ``config.max_history`` are used.
    k : int
    allowed : ndarray, shape (n_items,), bool, optional
        Only items where it is True are returned (the service's filters); default all.

    Returns
    -------
    SessionRecommendation
        An empty session gets the most popular allowed items.
    """
    config = model.config
    items = np.asarray(items, dtype=np.int64)[-config.max_history :]
    allowed = np.ones(model.n_items, bool) if allowed is None else allowed.copy()
    if len(items) and config.exclude_current:
        allowed[items[-1]] = False
    if len(items) and config.als is not None and config.als.weight:  # dense: the batch path
        scores = score_sessions(model, SessionBatch(items, np.array([0, len(items)])))
        scores[0, ~allowed] = -np.inf
        ids, values = top_k(scores, k)
        return SessionRecommendation(ids[0], values[0])
    factors: dict[str, float] = {}
    all_cols, all_values = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    if len(items):
        for name, (cols, values) in _part_entries(model, items):
            factors[name] = _factor(model, cols, values, getattr(config, name).weight)
            all_cols.append(cols)
            all_values.append(values * np.float32(factors[name]))
    # One pass over the catalog for all parts together; then only the items scored.
    summed = np.bincount(np.concatenate(all_cols), np.concatenate(all_values), model.n_items)
    rows = np.flatnonzero(summed != 0)  # on bools: 6x faster than on the float64 sums
    tiebreak = np.float32(config.popularity_tiebreak) * model.popularity[rows]
    values = tiebreak + summed[rows].astype(np.float32)
    return _best_of(model, rows, values, k, allowed, factors)


def _best_of(
    model: SessionModel,
    rows: np.ndarray,
    values: np.ndarray,
    k: int,
    allowed: np.ndarray,
    factors: dict[str, float],
) -> SessionRecommendation:
    """The best ``k`` allowed items among ``rows`` (scored ``values``) and all the others,
    which score only their popularity tiebreak, so only the first ``k`` allowed of them in
    tiebreak order can rank; equal scores by item row, as :func:`top_k` lists them."""
    keep = allowed[rows]
    rows, values = rows[keep], values[keep]
    scored = np.zeros(model.n_items, bool)
    scored[rows] = True
    order = model.tiebreak_order
    for head in (order[: 4 * k + len(rows) + 16], order):  # look further only if needed
        others = head[allowed[head] & ~scored[head]][:k]
        if len(others) == k or len(head) == len(order):
            break
    tiebreak = np.float32(model.config.popularity_tiebreak) * model.popularity[others]
    rows = np.concatenate([rows, others])
    values = np.concatenate([values, tiebreak.astype(np.float32)])
    best = np.lexsort((rows, -values))[:k]
    ids = np.full(k, -1, np.int32)
    scores = np.full(k, -np.inf, np.float32)
    ids[: len(best)], scores[: len(best)] = rows[best], values[best]
    return SessionRecommendation(ids, scores, factors)


def _factor(model: SessionModel, cols: np.ndarray, values: np.ndarray, weight: float) -> float:
    """``weight / scale`` of one part (:class:`~training.sessions.SessionConfig`'s
    ``scaling``); every sparse part's entries are non-negative."""
    if not len(values):
        return float(weight)
    if model.config.scaling == "sum":
        scale = float(values.sum(dtype=np.float32))
    else:
        scale = float(np.bincount(cols, values, minlength=model.n_items).max())
    return float(weight) / scale if scale > 0 else float(weight)


def _part_entries(model: SessionModel, items: np.ndarray):
    """Each sparse part in use, with its (item, value) entries for the session."""
    config = model.config
    session = _Session(items)
    scorers = {
        "transitions": lambda p: _gather(model.transitions, *session.weights(p.history_decay)),
        "walk": lambda p: _walk(model.walk, session.weights(p.history_decay), p.hops),
        "item_knn": lambda p: _gather(model.item_similarity, *session.weights(p.history_decay)),
        "session_knn": lambda p: _session_knn(model, session, p),
        "recent": lambda p: session.weights(p.history_decay),
    }
    for name, score in scorers.items():
        params = getattr(config, name)
        if params is not None and params.weight:
            yield name, score(params)


class _Session:
    """A session's items, their distinct rows found once and their recency weights per
    decay (parts with the same decay share them)."""

    def __init__(self, items: np.ndarray) -> None:
        self.items = items
        self.rows, self._inverse = np.unique(items, return_inverse=True)
        self._age = (len(items) - 1 - np.arange(len(items))).astype(np.float32)
        self._weights: dict[float, Entries] = {}

    def weights(self, decay: float) -> Entries:
        """The distinct items and their weights ``Σ decay^(n − p)`` (as
        :meth:`SessionBatch.weights`), zero weights dropped."""
        if decay not in self._weights:
            weights = np.power(np.float32(decay), self._age)
            summed = np.bincount(self._inverse, weights, minlength=len(self.rows))
            summed = summed.astype(np.float32)
            keep = summed != 0
            self._weights[decay] = self.rows[keep], summed[keep]
        return self._weights[decay]


def _gather(matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> Entries:
    """``Σ_r weights[r] · matrix[rows[r]]`` as unsummed (column, value) entries."""
    owner, index = row_entries(matrix, rows)
    return matrix.indices[index].astype(np.int64), matrix.data[index] * weights[owner]


def _summed(entries: Entries) -> Entries:
    cols, inverse = np.unique(entries[0], return_inverse=True)
    return cols, np.bincount(inverse, entries[1], minlength=len(cols)).astype(np.float32)


def _walk(walk: sp.csr_matrix, start: Entries, hops: int) -> Entries:
    entries = start
    for hop in range(hops):
        entries = _gather(walk, *(_summed(entries) if hop else entries))
    return entries


def _session_knn(model: SessionModel, session: _Session, params: SessionKNNParams) -> Entries:
    """Session-kNN (with STAN's position decay and idf when set) as entries."""
    rows, weights = session.weights(params.history_decay)
    if params.idf_power:
        weights = weights * model.item_idf[rows] ** np.float32(params.idf_power)
    sessions, similarity = _summed(_gather(model.item_sessions, rows, weights))
    # The most similar neighbours; equal similarity: the lower session row, as
    # keep_top_per_row keeps them.
    best = np.lexsort((sessions, -similarity))[: params.neighbours]
    sessions, similarity = sessions[best], similarity[best]
    if params.position_decay:
        cols, values = _positional(model, session.items, sessions, similarity, params)
    else:
        cols, values = _gather(model.session_items, sessions, similarity)
    if params.idf_boost:
        values = values * (1.0 + np.float32(params.idf_boost) * model.item_idf[cols])
    return cols, values


def _positional(
    model: SessionModel,
    items: np.ndarray,
    sessions: np.ndarray,
    similarity: np.ndarray,
    params: SessionKNNParams,
) -> Entries:
    """STAN's λ3 over the neighbours' items: ``sim(n) exp(−|pos_n(j) − pos_n(a)| / λ3)``,
    ``a`` the newest session item that neighbour ``n`` holds."""
    positions = model.session_positions
    owner, index = row_entries(positions, sessions)
    cols = positions.indices[index].astype(np.int64)
    position = positions.data[index].astype(np.float32)
    # Each neighbour's anchor: its entry whose item came latest in the session.
    latest = _latest_position(items, cols)
    held = np.flatnonzero(latest >= 0)
    order = held[np.lexsort((latest[held], owner[held]))]
    last_of_owner = (
        order[np.r_[owner[order][1:] != owner[order][:-1], True]] if len(order) else order
    )
    anchor = np.zeros(len(sessions), np.float32)
    anchor[owner[last_of_owner]] = position[last_of_owner]
    distance = position - anchor[owner]
    weight = np.exp(-np.abs(distance) / np.float32(params.position_decay))
    weight = np.where(distance < 0, weight * np.float32(params.backward), weight)
    weight = np.where(anchor[owner] > 0, weight, 1.0).astype(np.float32)
    return cols, weight * similarity[owner]


def _latest_position(items: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For each of ``cols``, the last index in ``items`` holding it, ``-1`` for none."""
    reversed_items = items[::-1]
    distinct, first = np.unique(reversed_items, return_index=True)
    at = np.minimum(np.searchsorted(distinct, cols), len(distinct) - 1)
    found = distinct[at] == cols
    return np.where(found, len(items) - 1 - first[at], -1)


def explain_session(
    model: SessionModel,
    items: Sequence[int] | np.ndarray,
    recommended: np.ndarray,
    factors: dict[str, float],
    top: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The session items that contribute most to each recommended item's score.

    Parameters
    ----------
    model : SessionModel
    items : sequence of int
        The session, as given to :func:`recommend_session`.
    recommended : ndarray, shape (k,), int
        Item rows to explain (``-1`` ones get no evidence).
    factors : dict of str to float
        :attr:`SessionRecommendation.factors` of the session's recommendation.
    top : int
        Contributors kept per item.

    Returns
    -------
    rows : ndarray, shape (k, top), int32
        Session item rows, largest contribution first; ``-1`` where none.
    shares : ndarray, shape (k, top), float32
        Each one's share of the item's score from the decomposable parts (module
        docstring); the shares of all the session's items sum to 1.
    """
    items = np.asarray(items, dtype=np.int64)[-model.config.max_history :]
    targets = np.asarray(recommended, dtype=np.int64)
    session = _Session(items)
    distinct = session.rows
    contribution = np.zeros((len(distinct), len(targets)), np.float64)
    for name, factor in factors.items():
        params = getattr(model.config, name)
        if name == "session_knn":
            continue
        rows, weights = session.weights(params.history_decay)
        matrix = _explained_values(model, name, rows, targets, getattr(params, "hops", 1))
        contribution[np.searchsorted(distinct, rows)] += factor * weights[:, None] * matrix
    return _top_shares(distinct, contribution, top)


def _explained_values(
    model: SessionModel, name: str, rows: np.ndarray, targets: np.ndarray, hops: int
) -> np.ndarray:
    """``M[rows, targets]`` (shape (len(rows), len(targets))) for a part's matrix ``M``:
    the rules, item similarity, the identity for ``recent``, ``P^hops`` for the walk."""
    if name == "recent":
        return (rows[:, None] == targets[None, :]).astype(np.float64)
    if name != "walk":
        matrix = model.transitions if name == "transitions" else model.item_similarity
        return _values_at(matrix, rows, targets)
    # P^hops = P^(hops-1) P: walk all but the last hop from each row, keeping each row's
    # frontier apart, then read the last hop's values at the targets.
    owner = np.arange(len(rows))
    frontier, mass = rows, np.ones(len(rows), np.float32)
    for _ in range(hops - 1):
        step_owner, index = row_entries(model.walk, frontier)
        keys = owner[step_owner] * model.n_items + model.walk.indices[index]
        keys, inverse = np.unique(keys, return_inverse=True)
        mass = np.bincount(inverse, mass[step_owner] * model.walk.data[index], len(keys))
        owner, frontier = keys // model.n_items, keys % model.n_items
    out = np.zeros((len(rows), len(targets)), np.float64)
    np.add.at(out, owner, mass[:, None] * _values_at(model.walk, frontier, targets))
    return out


def _values_at(matrix: sp.csr_matrix, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``matrix[rows][:, targets]`` as a dense float64 array, without scipy indexing."""
    owner, index = row_entries(matrix, rows)
    cols = matrix.indices[index]
    order = np.argsort(targets)
    ranked = targets[order]
    at = np.minimum(np.searchsorted(ranked, cols), max(len(ranked) - 1, 0))
    hit = ranked[at] == cols if len(ranked) else np.zeros(len(cols), bool)
    out = np.zeros((len(rows), len(targets)), np.float64)
    out[owner[hit], order[at[hit]]] = matrix.data[index[hit]]
    return out


def _top_shares(
    distinct: np.ndarray, contribution: np.ndarray, top: int
) -> tuple[np.ndarray, np.ndarray]:
    total = contribution.sum(axis=0)
    shares = np.divide(contribution, total, out=np.zeros_like(contribution), where=total > 0)
    width = min(top, len(distinct))
    order = np.argsort(-shares, axis=0, kind="stable")[:width].T  # (k, width)
    rows = np.full((contribution.shape[1], top), -1, np.int32)
    values = np.zeros((contribution.shape[1], top), np.float32)
    picked = np.take_along_axis(shares.T, order, axis=1)
    rows[:, :width] = np.where(picked > 0, distinct[order], -1)
    values[:, :width] = np.where(picked > 0, picked, 0.0)
    return rows, values
