"""Cart add-ons (recsvc.scoring.cart) against the add-ons written out in full: both
sources' candidates always searched, the fold-in as the direct solve over the catalog.
The same items, scores equal to float32 rounding, evidence that sums to 1; the search
skipped only where it cannot change the answer."""

import numpy as np
import pytest

from recsvc.scoring import cart
from recsvc.scoring.model import ScoringModel

ITEMS = 600


def make_model(seed: int = 0, factors: int = 16, version: str = "t1") -> ScoringModel:
    """Clustered item directions with heavy-tailed norms (as ALS factors have: popular
    items are long vectors) and similar-items lists by cosine."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, factors))
    directions = centres[rng.integers(0, 12, ITEMS)] + 0.7 * rng.normal(size=(ITEMS, factors))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    factors_ = (directions * (rng.pareto(1.5, ITEMS) + 0.01)[:, None]).astype(np.float32)
    cosine = directions @ directions.T
    np.fill_diagonal(cosine, -np.inf)
    listed = np.argsort(-cosine, axis=1)[:, :20].astype(np.int32)
    return ScoringModel.build(
        version,
        {
            "params": {"regularization": 0.05, "alpha": 10.0},
            "weights": {"events": {"add_to_cart": 4.0}},
        },
        [f"i{n}" for n in range(ITEMS)],
        factors_,
        listed,
        np.take_along_axis(cosine, listed, 1).astype(np.float32),
        {},
    )


def direct_fold_in(model: ScoringModel, rows: np.ndarray, weight: float) -> np.ndarray:
    """(Yᵀ C Y + λI)⁻¹ Yᵀ C p over the whole catalog, implicit's confidence α·w."""
    y = model.item_factors.astype(np.float64)
    c = np.ones(len(y))
    c[rows] = model.alpha * weight
    p = np.zeros(len(y))
    p[rows] = 1.0
    a = (y * c[:, None]).T @ y + model.regularization * np.eye(y.shape[1])
    return np.linalg.solve(a, y.T @ (c * p))


def reference_addons(model: ScoringModel, cart_rows: np.ndarray, n: int, mask: np.ndarray):
    """The add-ons written out: both sources' candidates, always searched."""
    listed = model.similar_items[cart_rows]
    scores = np.maximum(model.similar_scores[cart_rows], 0.0)
    valid = listed >= 0
    valid[valid] = mask[listed[valid]]
    cart_of = np.broadcast_to(np.arange(len(cart_rows))[:, None], listed.shape)
    rows, inverse = np.unique(listed[valid], return_inverse=True)
    sources = np.zeros((len(rows), len(cart_rows)), np.float32)
    np.add.at(sources, (inverse, cart_of[valid]), scores[valid])
    sums = sources.sum(axis=1)
    vector = direct_fold_in(model, cart_rows, 4.0).astype(np.float32)
    fold_rows, _ = model.index.search(vector, n * cart.WIDEN, mask)
    candidates = np.union1d(rows, fold_rows).astype(np.int32)
    part = np.zeros(len(candidates))
    part[np.searchsorted(candidates, rows)] = np.clip(sums / len(cart_rows), 0.0, 1.0)
    blended = 0.5 * part + 0.5 * np.clip(model.item_factors[candidates] @ vector, 0.0, 1.0)
    order = np.lexsort((candidates, -blended))[:n]
    return candidates[order], blended[order]


def carts(count: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        size = int(rng.choice([1, 1, 1, 2, 3, 5]))
        rows = rng.choice(ITEMS, size, replace=False)
        owned = rng.choice(ITEMS, int(rng.choice([0, 0, 4])))
        mask = np.ones(ITEMS, bool)
        mask[rows] = False
        mask[owned] = False
        yield rows.astype(np.int64), mask


def test_add_ons_are_those_of_the_full_search(monkeypatch):
    model = make_model()
    searches = []
    search = model.index.search
    monkeypatch.setattr(model.index, "search", lambda *a: searches.append(1) or search(*a))
    searched = 0
    for cart_rows, mask in carts(400):
        want_rows, want_scores = reference_addons(model, cart_rows, 3, mask)
        before = len(searches)
        rows, scores, evidence = cart.cart_addons(model, cart_rows, 3, mask)
        searched += len(searches) > before
        assert rows.tolist() == want_rows.tolist()
        assert scores.tolist() == pytest.approx(want_scores.tolist(), abs=2e-6)
        for entries, score in zip(evidence, scores, strict=True):
            if score > 0:
                assert sum(e.share for e in entries) == pytest.approx(1.0)
                assert all(e.row in cart_rows for e in entries if e.part == "lists")
    # Both ways were taken: the lists alone, and a search where an item outside them (a
    # long vector) could reach the top.
    assert 0 < searched < 400


def test_the_items_scoring_a_bound_are_found_among_the_longest():
    model = make_model()
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(200):
        vector = (rng.normal(size=model.factors) * rng.uniform(0.01, 2)).astype(np.float32)
        scores = model.item_factors @ vector
        bound = float(np.quantile(scores, rng.uniform(0.95, 0.999)))
        rows = model.index.scoring_at_least(vector, bound)
        if rows is not None:  # None: more than HEAD items are long enough
            # Equal but for scores within float32 rounding of the bound (another BLAS call).
            near = 1e-5 * abs(bound)
            above, reached = np.flatnonzero(scores >= bound + near), set(rows.tolist())
            assert set(above) <= reached <= set(np.flatnonzero(scores >= bound - near))
            found += 1
    assert found > 100
    assert model.index.scoring_at_least(np.zeros(model.factors, np.float32), 0.5).size == 0
    assert model.index.scoring_at_least(np.ones(model.factors, np.float32), 1e-9) is None
