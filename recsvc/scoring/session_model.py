"""The session model: its configuration, its arrays, and one session scored and explained.

The same function scores a session for the service and for the evaluation
(:func:`score_session`; :func:`recommend_session` takes its top, :func:`dense_scores`
ranks every item for the next-item protocol). Fitting the arrays is the offline job's
(``training.sessions``); shipping them is :mod:`recsvc.scoring.artifact`'s.

A session ``s_1 … s_n`` (item rows, oldest first) is scored as a weighted sum of parts,
each a sparse row combination over its items with recency weights ``w_p = d^(n−p)`` (the
newest weighs 1; ``d`` is the part's ``history_decay``):

- ``transitions`` (sequential rules, Ludewig et al. 2019): ``T[i, j] = Σ 1 / gap^γ``
  over train pairs where ``j`` follows ``i`` within ``steps`` positions;
  ``score = Σ_p w_p T[s_p]``;
- ``walk``: ``hops`` steps of a random walk over the same kind of rules, ``P = T`` with
  each row scaled to a sum of 1: ``score = Σ_p w_p (P^hops)[s_p]``;
- ``item_knn``: cosine of session co-occurrence, ``S[i, j] = c_ij / sqrt(c_i c_j)``,
  each row pruned to its ``neighbours`` largest; ``score = Σ_p w_p S[s_p]``;
- ``session_knn`` (V-SKNN): similarity to past sessions ``sim(n) = Σ_p w_p [s_p ∈ n]``
  (over each item's ``sample`` most recent sessions, optionally divided by
  ``sqrt(|n|)``), the ``neighbours`` most similar kept, ``score(j) = Σ_n sim(n) [j ∈ n]``;
  with STAN's position decay (Garg et al. 2019) ``[j ∈ n]`` becomes
  ``exp(−|pos_n(j) − pos_n(a)| / λ3)``, ``a`` the newest session item that ``n`` holds;
  V-SKNN's idf weighting multiplies ``w_p`` by ``ι(s_p)^idf_power`` and ``score(j)`` by
  ``1 + idf_boost · ι(j)``, ``ι = log(N / df) / log(N)``;
- ``als``: implicit ALS on the session × item matrix, the session folded in with
  confidences ``alpha · w`` (:class:`recsvc.scoring.foldin.FoldIn`), ``score = x Yᵀ``;
- ``recent``: the session's own items, ``score(s_p) = w_p``: visitors come back to items.

Each part's scores are scaled to a sum (or a maximum) of absolute values of 1 before
weighting, a small popularity term breaks ties, and with ``exclude_current`` the item
being viewed (the newest) is never returned.

Scoring gathers the session's rows straight from the CSR arrays with numpy (a scipy
matrix per part cost about 0.1 ms each); every part's (item, value) entries are summed
in one pass over the catalog, and the top is chosen among the items scored and the most
popular others. :func:`explain_session` splits an item's score over the session's items
for the parts that are sums over them (rules, walk, item-kNN, the session's own items);
session-kNN's and ALS's shares are not split.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recsvc.scoring.foldin import FoldIn
from recsvc.scoring.sparse import ragged, row_entries
from recsvc.scoring.topk import top_indices

# The session cut of the published protocol (Hidasi & Czapp 2023): an hour of inactivity.
SESSION_GAP_SECONDS = 3600.0


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
    """Everything :func:`score_session` needs; numpy and scipy arrays only.

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
        Session ALS's (``als`` only).
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
    fit_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @cached_property
    def tiebreak_order(self) -> np.ndarray:
        """Item rows by descending popularity tiebreak, equal ones by row: how the items
        no part scores rank (:func:`recommend_session`)."""
        tiebreak = np.float32(self.config.popularity_tiebreak) * self.popularity
        return np.argsort(-tiebreak, kind="stable").astype(np.int32)

    @cached_property
    def walk_into(self) -> sp.csr_matrix | None:
        """The walk's rules by the item they lead to (``walk`` transposed: row ``t`` holds
        ``P[m, t]`` at column ``m``): the last hop of an explanation reads the ten
        recommended items' rules in, not every frontier item's rules out (at 100k items
        and 300k sessions: 170 us instead of 440, the same values; it holds as many bytes
        as the walk, 18 MB there, built before gunicorn forks)."""
        return None if self.walk is None else self.walk.T.tocsr()

    @cached_property
    def folder(self) -> FoldIn:
        """The ``als`` part's fold-in (``YᵀY`` and its inverse, once per model)."""
        params = self.config.als
        if params is None or self.item_factors is None:
            raise ValueError("this session model has no ALS part")
        return FoldIn(self.item_factors, params.regularization, params.alpha)


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


@dataclass
class SessionScores:
    """One session's scores from every part, before the popularity tiebreak.

    Attributes
    ----------
    items : ndarray, shape (h,), int64
        The session items scored (the newest ``max_history``), oldest first.
    rows : ndarray, shape (m,), int64
        Item rows some part scores, ascending.
    values : ndarray, shape (m,), float32
        Their weighted sum of parts.
    factors : dict of str to float
        Each part's ``weight / scale`` for this session (:func:`explain_session`).
    """

    items: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    factors: dict[str, float]


def score_session(model: SessionModel, items: Sequence[int] | np.ndarray) -> SessionScores:
    """Every part's scores of one session, weighted and summed (module docstring).

    Parameters
    ----------
    model : SessionModel
    items : sequence of int
        The session's item rows, oldest first (unknown items already dropped); only the
        newest ``config.max_history`` are used.

    Returns
    -------
    SessionScores
    """
    config = model.config
    items = np.asarray(items, dtype=np.int64)[-config.max_history :]
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
    return SessionScores(items, rows, summed[rows].astype(np.float32), factors)


def dense_scores(model: SessionModel, items: Sequence[int] | np.ndarray) -> np.ndarray:
    """:func:`score_session` over the whole catalog, tiebreak added: float32, shape
    (n_items,); the newest item ``-inf`` with ``exclude_current``. What the next-item
    evaluation ranks (every item, ties counted against the target)."""
    scored = score_session(model, items)
    out = np.float32(model.config.popularity_tiebreak) * model.popularity.astype(np.float32)
    out[scored.rows] += scored.values
    if len(scored.items) and model.config.exclude_current:
        out[scored.items[-1]] = -np.inf
    return out


def recommend_session(
    model: SessionModel,
    items: Sequence[int] | np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> SessionRecommendation:
    """Top ``k`` item rows for one session: the best of :func:`dense_scores`, found
    among the items scored and the most popular others only.

    Parameters
    ----------
    model : SessionModel
    items : sequence of int
        As :func:`score_session` takes them.
    k : int
    allowed : ndarray, shape (n_items,), bool, optional
        Only items where it is True are returned (the service's filters); default all.

    Returns
    -------
    SessionRecommendation
        An empty session gets the most popular allowed items.
    """
    scored = score_session(model, items)
    allowed = np.ones(model.n_items, bool) if allowed is None else allowed.copy()
    if len(scored.items) and model.config.exclude_current:
        allowed[scored.items[-1]] = False
    tiebreak = np.float32(model.config.popularity_tiebreak) * model.popularity[scored.rows]
    values = tiebreak + scored.values
    return _best_of(model, scored.rows, values, k, allowed, scored.factors)


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
    tiebreak order can rank; equal scores by item row, as every ranking lists them."""
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
    """``weight / scale`` of one part (:class:`SessionConfig`'s ``scaling``) over the
    absolute values of its entries (ALS's may be negative)."""
    if not len(values):
        return float(weight)
    magnitude = np.abs(values)
    if model.config.scaling == "sum":
        scale = float(magnitude.sum(dtype=np.float32))
    else:
        scale = float(np.bincount(cols, magnitude, minlength=model.n_items).max())
    return float(weight) / scale if scale > 0 else float(weight)


def _part_entries(model: SessionModel, items: np.ndarray) -> Iterator[tuple[str, Entries]]:
    """Each part in use, with its (item, value) entries for the session (ALS's dense:
    every item)."""
    config = model.config
    session = _Session(items)
    scorers = {
        "transitions": lambda p: _gather(model.transitions, *session.weights(p.history_decay)),
        "walk": lambda p: _walk(model.walk, session.weights(p.history_decay), p.hops),
        "item_knn": lambda p: _gather(model.item_similarity, *session.weights(p.history_decay)),
        "session_knn": lambda p: _session_knn(model, session, p),
        "als": lambda p: _als(model, session, p),
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
        over the positions ``p`` of each), zero weights dropped."""
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


def _als(model: SessionModel, session: _Session, params: ALSParams) -> Entries:
    """The session folded in with confidences ``alpha · w``, scored against every item."""
    rows, weights = session.weights(params.history_decay)
    scores = model.item_factors @ model.folder.vector(rows, weights)
    return np.arange(model.n_items, dtype=np.int64), scores.astype(np.float32)


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
    # The most similar first, equal similarity to the lower session row (``sessions``
    # ascending), as ``keep_top_per_row`` keeps them.
    best = top_indices(similarity, params.neighbours)
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
        if name in ("session_knn", "als"):
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
    return _last_hop(model.walk_into, owner, frontier, mass, len(rows), targets)


def _last_hop(
    into: sp.csr_matrix,
    owner: np.ndarray,
    frontier: np.ndarray,
    mass: np.ndarray,
    n_rows: int,
    targets: np.ndarray,
) -> np.ndarray:
    """``out[r, t] = Σ mass · P[frontier, targets[t]]`` over the frontier entries of each
    row ``r`` (``owner``): the targets' rules in (``into``, the transposed walk) joined
    with the frontier on the item they come from. Shape (n_rows, len(targets))."""
    column = np.flatnonzero(targets >= 0)  # -1: no item, no evidence
    target, index = row_entries(into, targets[column])
    source, value = into.indices[index], into.data[index]
    order = np.argsort(source, kind="stable")
    source, target, value = source[order], column[target[order]], value[order]
    low = np.searchsorted(source, frontier, "left")
    entry, match = ragged(low, np.searchsorted(source, frontier, "right") - low)
    cells = owner[entry] * len(targets) + target[match]
    summed = np.bincount(cells, mass[entry] * value[match], n_rows * len(targets))
    return summed.reshape(n_rows, len(targets))


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
