"""The known-visitor blend: long-term taste, the current session, and the visitor's own items.

For a visitor the model was fit on, every candidate item ``i`` scores::

    score(i) = w_long · long(i) + w_session · session(i) + w_recent · recent(i)
               + w_cart · [i in the cart] + w_purchased · [i was bought]

- ``long``: the dot product of the visitor's long-term (ALS) vector with the item's;
- ``session``: the session model's score of the visitor's current session
  (:func:`recsvc.scoring.session_model.score_session`), as anonymous visitors' sessions
  are scored (scoring all their recent items instead measured the same on RetailRocket's
  validation weeks, NDCG@10 0.2256 against 0.2246, and costs more per request);
- ``recent``: the visitor's own recent items by recency and repetition,
  ``recent_decay^p · touches^touch_power`` for the item at position ``p`` (0: newest);

each divided by its largest value among the allowed candidates (so the weights compare
parts whose scores live on different scales: dot products, probabilities, recency). The
candidates are the long-term vector's ``candidates`` best items (the norm-pruned index),
the session's ``candidates`` best (more when a request asks for more rows), and the
visitor's own items. The long-term part always
weighs at least ``LONG_TERM_TIEBREAK``: where the tuned weight is 0 (on RetailRocket the
session and the own items carry it) the long-term vector still orders what the other
parts leave equal, and ranks alone for a known visitor the service has no profile of.

The weights are tuned by ``recsvc train`` on a validation split carved from the train
part, every weight combination scored through :func:`combine` on the parts
:func:`blend_parts` computes once per validation visitor, and shipped in the manifest
(:class:`recsvc.scoring.model.ServingParams`). The defaults are RetailRocket's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recsvc.scoring.session_model import SessionScores, explain_session, score_session
from recsvc.scoring.state import Evidence, VisitorState
from recsvc.scoring.topk import top_indices

if TYPE_CHECKING:  # the model holds its BlendParams
    from recsvc.scoring.model import ScoringModel

# The least weight of the long-term part (module docstring): far below any tuned weight.
LONG_TERM_TIEBREAK = 1e-3


@dataclass(frozen=True)
class BlendParams:
    """Weights and shapes of the known-visitor blend (module docstring)."""

    long_term: float = 0.25
    session: float = 2.0
    recent: float = 2.0
    cart: float = 1.0
    purchased: float = 0.25
    recent_decay: float = 0.8
    touch_power: float = 1.0
    # Candidates from each of the long-term and session parts (more when the request asks
    # for more rows). 50 rather than 200: the norm-pruned search for 200 costs 290 us at
    # 100k items against 75 us for 50 (it must scan past the first block to prove the
    # 200th), and RetailRocket's served NDCG@10 was the same (training/README.md).
    candidates: int = 50


@dataclass
class BlendParts:
    """Each part's values over the candidates, each scaled to a largest value of 1.

    Attributes
    ----------
    rows : ndarray, shape (m,), int64
        The allowed candidates, ascending.
    long_term, session, recent : ndarray, shape (m,), float64
    in_cart, purchased : ndarray, shape (m,), float64
        1 where the candidate is in the cart / was bought.
    session_scores : SessionScores or None
        What the session part was read from (for its evidence).
    """

    rows: np.ndarray
    long_term: np.ndarray
    session: np.ndarray
    recent: np.ndarray
    in_cart: np.ndarray
    purchased: np.ndarray
    session_scores: SessionScores | None = None

    def contributions(self, params: BlendParams) -> np.ndarray:
        """Each part's weighted value per candidate: shape (5, m), in the order long
        term, session, recent, cart, purchased."""
        weights = part_weights(params)
        values = np.stack([self.long_term, self.session, self.recent, self.in_cart, self.purchased])
        return weights[:, None] * values


PARTS = ("long_term", "session", "recent", "cart", "purchased")


def part_weights(params: BlendParams) -> np.ndarray:
    """The weight of each of :data:`PARTS` (the long-term part's at least
    ``LONG_TERM_TIEBREAK``): shape (5,), float64."""
    long_term = max(params.long_term, LONG_TERM_TIEBREAK)
    return np.array([long_term, params.session, params.recent, params.cart, params.purchased])


def combine(parts: BlendParts, params: BlendParams) -> np.ndarray:
    """The blend's score of every candidate: shape (m,), float64."""
    return parts.contributions(params).sum(axis=0)


def blend_parts(
    model: ScoringModel,
    state: VisitorState,
    mask: np.ndarray,
    params: BlendParams,
    width: int = 0,
) -> BlendParts:
    """The candidates ``mask`` allows and each part's scaled values (module docstring):
    ``max(params.candidates, width)`` from each of the long-term and session parts."""
    _, own_rows = _recent_values(state, params)
    sources = [own_rows[mask[own_rows]], state.cart, state.purchased]
    count = max(params.candidates, width)
    long_rows = np.zeros(0, np.int64)
    if state.vector is not None:
        long_rows, _ = model.index.search(state.vector, count, mask)
    scored = _session_scores(model, state, params)
    if scored is not None:
        allowed = mask[scored.rows]
        best = top_indices(scored.values[allowed], count)
        sources.append(scored.rows[allowed][best])
    rows = np.unique(np.concatenate([long_rows.astype(np.int64), *sources]))
    rows = rows[mask[rows]]
    long_term = np.zeros(len(rows))
    if len(long_rows):
        long_term = _scaled(model.item_factors[rows] @ state.vector)
    session = np.zeros(len(rows))
    if scored is not None:
        session = _scaled(_values_at(scored.rows, scored.values, rows))
    return BlendParts(
        rows=rows,
        long_term=long_term,
        session=session,
        recent=recent_part(state, rows, params),
        in_cart=np.isin(rows, state.cart).astype(np.float64),
        purchased=np.isin(rows, state.purchased).astype(np.float64),
        session_scores=scored,
    )


def recent_part(state: VisitorState, rows: np.ndarray, params: BlendParams) -> np.ndarray:
    """The ``recent`` part at candidate ``rows`` (ascending): scaled to a largest of 1."""
    own, own_rows = _recent_values(state, params)
    return _scaled(_values_at(own_rows, own, rows))


def _recent_values(state: VisitorState, params: BlendParams) -> tuple[np.ndarray, np.ndarray]:
    """``recent_decay^p · touches^touch_power`` of each recent item, with its rows sorted."""
    positions = np.arange(len(state.recent))
    values = params.recent_decay**positions * state.recent_touches.astype(np.float64) ** (
        params.touch_power
    )
    order = np.argsort(state.recent, kind="stable")
    return values[order], state.recent[order]


def _session_scores(
    model: ScoringModel, state: VisitorState, params: BlendParams
) -> SessionScores | None:
    if model.session is None or not params.session or not len(state.recent):
        return None
    items = state.current_session(model.serving.session_gap_seconds)
    session = model.session
    # The scores depend on the session's items only (recsvc.scoring.answer_cache).
    key = ("session_scores", items.tobytes())
    scored = model.answers.get_or_compute(key, lambda: score_session(session, items))
    return scored if len(scored.rows) else None


def _values_at(rows: np.ndarray, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``values`` of sorted ``rows`` read at ``targets`` (0 where absent)."""
    out = np.zeros(len(targets))
    if not len(rows):
        return out
    at = np.minimum(np.searchsorted(rows, targets), len(rows) - 1)
    hit = rows[at] == targets
    out[hit] = values[at[hit]]
    return out


def _scaled(values: np.ndarray) -> np.ndarray:
    """``values`` over their largest absolute value (all zeros stay zeros)."""
    values = np.asarray(values, np.float64)
    top = float(np.abs(values).max(initial=0.0))
    return values / top if top > 0 else values


def blend_evidence(
    model: ScoringModel, parts: BlendParts, params: BlendParams, picked: np.ndarray
) -> list[list[Evidence]]:
    """For candidates ``picked`` (indices into ``parts.rows``): each part's share of the
    score, the session part split over the session items that drove it
    (:func:`recsvc.scoring.session_model.explain_session`), the own-item parts naming the item
    itself. Shares sum to 1 per row (empty for a score of 0)."""
    contributions = parts.contributions(params)[:, picked]
    totals = contributions.sum(axis=0)
    rows = parts.rows[picked]
    session_split = _session_split(model, parts.session_scores, rows)
    out: list[list[Evidence]] = []
    for column, row in enumerate(rows.tolist()):
        total = totals[column]
        if total == 0:
            out.append([])
            continue
        entries: list[Evidence] = []
        for name, value in zip(PARTS, contributions[:, column].tolist(), strict=True):
            if value == 0:
                continue
            share = value / total
            if name == "session" and session_split is not None:
                entries += _split(name, session_split, column, share)
            else:
                entries.append(Evidence(name, -1 if name == "long_term" else row, share))
        out.append(sorted(entries, key=lambda e: -e.share))
    return out


def _session_split(
    model: ScoringModel, scored: SessionScores | None, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    if scored is None or model.session is None:
        return None
    width = len(np.unique(scored.items))
    return explain_session(model.session, scored.items, rows, scored.factors, top=width)


def _split(
    name: str, split: tuple[np.ndarray, np.ndarray], column: int, share: float
) -> list[Evidence]:
    """The part's ``share`` spread over the items its explanation names (the whole share
    on no item when none explains it: session-kNN's share is not split)."""
    items, shares = split[0][column], split[1][column]
    named = [(int(r), float(s)) for r, s in zip(items, shares, strict=True) if r >= 0 and s]
    if not named:
        return [Evidence(name, -1, share)]
    return [Evidence(name, row, share * s) for row, s in named]
