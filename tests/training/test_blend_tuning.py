"""Blend tuning: the vectorised NDCG equals the strategy's ranking, and the default shape
stays unless another is better by more than one standard error."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recsvc.scoring.blend import BlendParams, BlendParts
from training.blend_tuning import _one_standard_error, _Stacked


def parts(rows, long_term=None, session=None, recent=None) -> BlendParts:
    m = len(rows)
    zero = np.zeros(m)
    return BlendParts(
        rows=np.asarray(rows, np.int64),
        long_term=np.asarray(long_term if long_term is not None else zero, float),
        session=np.asarray(session if session is not None else zero, float),
        recent=np.asarray(recent if recent is not None else zero, float),
        in_cart=zero,
        purchased=zero,
    )


def test_ndcg_ranks_by_score_then_row_and_counts_unreachable_targets():
    # Visitor 0: rows 5, 7, 9 with long-term 0.2, 1.0, 1.0 -> 7, 9 (tie: lower row), 5.
    # Target 9 at rank 2; two targets in all (one the model lacks): IDCG of 2.
    # Visitor 1: its only target is ranked first.
    stacked = _Stacked(
        [parts([5, 7, 9], long_term=[0.2, 1.0, 1.0]), parts([1, 2], recent=[0.5, 1.0])],
        [{9}, {2}],
    )
    params = BlendParams(long_term=1.0, session=0.0, recent=1.0, cart=0.0, purchased=0.0)
    got = stacked.per_visitor(params, np.array([2, 1]))
    first = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert got.tolist() == pytest.approx([first, 1.0])


def test_another_shape_wins_only_beyond_one_standard_error():
    start = BlendParams()
    other = replace(start, recent_decay=0.9, touch_power=0.0)
    rng = np.random.default_rng(0)
    base = rng.random(400)
    noisy = base + rng.normal(0, 0.05, 400) + 0.001  # better on average, within noise
    clear = base + 0.05
    kept, _ = _one_standard_error([(start, base), (other, noisy)], start)
    assert kept is start
    chosen, values = _one_standard_error([(start, base), (other, clear)], start)
    assert chosen is other and values is clear


def test_top_per_row_is_the_stable_descending_sort_s_head():
    """The ascent's ranking rule: equal scores to the lower position (the lower row), as
    the strategy ranks them; -inf (padding) last."""
    from training.blend_tuning import top_per_row

    rng = np.random.default_rng(8)
    for _ in range(200):
        u, m, k = int(rng.integers(1, 8)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
        scores = rng.integers(0, 4, (u, m)).astype(np.float64)  # many ties
        scores[rng.random((u, m)) < 0.2] = -np.inf
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert top_per_row(scores, k).tolist() == expected.tolist()
