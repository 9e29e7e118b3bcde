"""Tuning the known-visitor blend's weights on a validation split.

Every validation visitor's blend parts are computed once by the strategy's own
:func:`recsvc.scoring.blend.blend_parts`, the ``recent`` part again per shape (recency
decay, touch power) by :func:`recsvc.scoring.blend.recent_part`;
weight combinations are then scored on all visitors at once (the parts padded into one
array) with the strategy's ranking rule (score, then row), and chosen by coordinate
ascent from the defaults: each weight in turn over its grid, twice round. The objective
is NDCG@10 with every validation target counted, items the model lacks included.

A few hundred validation visitors make a noisy objective: on RetailRocket the six shapes
of the ``recent`` part scored within 0.004 of each other. So another shape replaces the
default one only when its best beats the default shape's best by more than one standard
error of their paired per-visitor difference (the one-standard-error rule).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recsvc.scoring.blend import PARTS, BlendParams, blend_parts, part_weights, recent_part
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.state import VisitorState, Want

WEIGHTS = {
    "long_term": (0.0, 0.1, 0.25, 0.5, 1.0),
    "session": (0.0, 0.5, 1.0, 2.0, 4.0),
    "recent": (0.0, 0.5, 1.0, 2.0, 4.0),
    "cart": (0.0, 0.5, 1.0, 2.0),
    "purchased": (0.0, 0.25, 0.5, 1.0),
}
DECAYS = (0.7, 0.8, 0.9)
TOUCH_POWERS = (0.0, 1.0)
ROUNDS = 2
CUTOFF = 10


@dataclass
class Tuning:
    """The chosen parameters, the validation figure behind them and every shape tried."""

    params: BlendParams
    ndcg: float
    default_ndcg: float
    visitors: int
    trials: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": asdict(self.params),
            f"ndcg@{CUTOFF}": round(self.ndcg, 6),
            f"default_ndcg@{CUTOFF}": round(self.default_ndcg, 6),
            "visitors": self.visitors,
            "trials": self.trials,
        }


class _Stacked:
    """Validation visitors' parts for one shape, padded: ``values`` (u, 5, m) with the
    candidates' rows (u, m) (padding: -1) and which are targets (u, m)."""

    def __init__(self, parts: list, targets: Sequence[set[int]]) -> None:
        width = max((len(p.rows) for p in parts), default=0) or 1
        self.values = np.zeros((len(parts), len(PARTS), width))
        self.valid = np.zeros((len(parts), width), bool)
        self.hit = np.zeros((len(parts), width), bool)
        for n, (p, wanted) in enumerate(zip(parts, targets, strict=True)):
            m = len(p.rows)
            self.values[n, :, :m] = np.stack(
                [p.long_term, p.session, p.recent, p.in_cart, p.purchased]
            )
            self.valid[n, :m] = True
            self.hit[n, :m] = np.isin(p.rows, list(wanted))

    def ndcg(self, params: BlendParams, relevant: np.ndarray) -> float:
        return float(self.per_visitor(params, relevant).mean())

    def per_visitor(self, params: BlendParams, relevant: np.ndarray) -> np.ndarray:
        """NDCG@10 of each visitor under ``params``."""
        scores = np.einsum("w,uwm->um", part_weights(params), self.values)
        scores[~self.valid] = -np.inf
        # Candidates are in ascending row order: ties go to the lower position, as the
        # strategy breaks them by row.
        top = top_per_row(scores, CUTOFF)
        hits = np.take_along_axis(self.hit & self.valid, top, axis=1)
        discounts = 1.0 / np.log2(np.arange(2, CUTOFF + 2))
        ideal = np.concatenate(([1.0], np.cumsum(discounts)))[np.minimum(relevant, CUTOFF)]
        return (hits * discounts[: hits.shape[1]]).sum(axis=1) / ideal


def top_per_row(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` largest positions, largest first, equal scores by position:
    ``np.argsort(-scores, axis=1, kind="stable")[:, :k]`` without sorting whole rows (the
    ascent asks this of every validation visitor's candidates a few hundred times)."""
    u, m = scores.shape
    if m <= k:
        return np.argsort(-scores, axis=1, kind="stable")
    cut = np.partition(scores, m - k, axis=1)[:, m - k : m - k + 1]
    above = scores > cut
    tied = scores == cut
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= room))  # exactly k a row
    _, cols = np.nonzero(keep)  # row-major: each row's positions ascending
    picked = cols.reshape(u, k)
    order = np.lexsort((picked, -np.take_along_axis(scores, picked, axis=1)), axis=1)
    return np.take_along_axis(picked, order, axis=1)


def tune_blend(
    model: ScoringModel,
    states: Sequence[VisitorState],
    targets: Sequence[set[int]],
    relevant: np.ndarray,
    *,
    start: BlendParams | None = None,
    show_progress: bool = False,
) -> Tuning:
    """The blend parameters with the best validation NDCG@10.

    Parameters
    ----------
    model : ScoringModel
        Fit on the validation split's train part.
    states : sequence of VisitorState
        The validation visitors, as of the validation cutoff (with their vectors).
    targets : sequence of set of int
        Each one's target item rows in ``model``.
    relevant : ndarray, shape (u,), int
        Each one's number of targets, items the model lacks included.
    start : BlendParams, optional
        Where the ascent starts (default :class:`BlendParams`' defaults).
    """
    start = start or BlendParams()
    relevant = np.asarray(relevant, np.int64)
    trials: list[dict[str, Any]] = []
    results: list[tuple[BlendParams, np.ndarray]] = []
    default_ndcg = float("nan")
    mask = Want().mask(model.n_items, VisitorState())
    computed = [
        blend_parts(model, state, mask, start)
        for state in tqdm(states, desc="blend parts", disable=not show_progress)
    ]
    for decay, touch in itertools.product(DECAYS, TOUCH_POWERS):
        shape = replace(start, recent_decay=decay, touch_power=touch)
        parts = [
            replace(p, recent=recent_part(state, p.rows, shape))
            for p, state in zip(computed, states, strict=True)
        ]
        stacked = _Stacked(parts, targets)
        params, score = _ascend(stacked, relevant, shape)
        if shape == start:
            default_ndcg = stacked.ndcg(start, relevant)
        trials.append({"shape": [decay, touch], f"ndcg@{CUTOFF}": round(score, 6)})
        results.append((params, stacked.per_visitor(params, relevant)))
    params, values = _one_standard_error(results, start)
    return Tuning(params, float(values.mean()), default_ndcg, len(states), trials)


def _one_standard_error(
    results: list[tuple[BlendParams, np.ndarray]], start: BlendParams
) -> tuple[BlendParams, np.ndarray]:
    """The default shape's result, unless the best beats it by more than one standard
    error of the paired per-visitor difference (module docstring)."""
    same_shape = [
        r
        for r in results
        if (r[0].recent_decay, r[0].touch_power) == (start.recent_decay, start.touch_power)
    ]
    default = same_shape[0] if same_shape else results[0]
    best = max(results, key=lambda r: r[1].mean())
    difference = best[1] - default[1]
    error = difference.std() / np.sqrt(max(len(difference), 1))
    return best if difference.mean() > error else default


def _ascend(
    stacked: _Stacked, relevant: np.ndarray, params: BlendParams
) -> tuple[BlendParams, float]:
    """Coordinate ascent over :data:`WEIGHTS`, ``ROUNDS`` times round."""
    score = stacked.ndcg(params, relevant)
    for _ in range(ROUNDS):
        moved = False
        for name, grid in WEIGHTS.items():
            for value in grid:
                if value == getattr(params, name):
                    continue  # the score in hand
                candidate = replace(params, **{name: value})
                if not any(getattr(candidate, w) for w in ("long_term", "session", "recent")):
                    continue  # a blend of nothing but flags ranks nothing
                found = stacked.ndcg(candidate, relevant)
                if found > score:
                    params, score, moved = candidate, found, True
        if not moved:
            break  # a round that changed nothing: the next would change nothing either
    return params, score
