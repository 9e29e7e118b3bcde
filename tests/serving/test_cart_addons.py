"""Cart add-ons as computed now (the per-model fold-in, the skipped search, the worker's
cache of answers) against the add-ons as first written: the same items, reasons and
evidence, scores equal to float32 rounding."""

import numpy as np
import pytest

from recsvc.core.foldin import fold_in
from recsvc.serving import similar
from recsvc.serving.addon_cache import AddonCache
from recsvc.serving.cart_model import CartModel
from recsvc.serving.holder import LoadedModel
from recsvc.serving.recommend import RecommendQuery, allowed_mask
from recsvc.store.models import ItemSide

ITEMS = 600


def make_model(seed: int = 0, factors: int = 16, version: str = "t1") -> LoadedModel:
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
    side = ItemSide(
        version=version,
        manifest={
            "params": {"regularization": 0.05, "alpha": 10.0},
            "weights": {"events": {"add_to_cart": 4.0}},
            "user_buckets": 1,
        },
        item_ids=[f"i{n}" for n in range(ITEMS)],
        item_factors=factors_,
        similar_items=listed,
        similar_scores=np.take_along_axis(cosine, listed, 1).astype(np.float32),
        lists={},
    )
    return LoadedModel.build(side)


def reference_addons(model: LoadedModel, cart_rows: np.ndarray, n: int, mask: np.ndarray):
    """The add-ons as first written: both sources' candidates, always searched."""
    listed = model.similar_items[cart_rows]
    scores = np.maximum(model.similar_scores[cart_rows], 0.0)
    valid = listed >= 0
    valid[valid] = mask[listed[valid]]
    cart_of = np.broadcast_to(np.arange(len(cart_rows))[:, None], listed.shape)
    rows, inverse = np.unique(listed[valid], return_inverse=True)
    sources = np.zeros((len(rows), len(cart_rows)), np.float32)
    np.add.at(sources, (inverse, cart_of[valid]), scores[valid])
    sums = sources.sum(axis=1)
    weights = np.full(len(cart_rows), 4.0, np.float32)
    vector = fold_in(
        model.item_factors, model.gram, cart_rows, weights, model.regularization, model.alpha
    )
    fold_rows, _ = model.index.search(vector, n * similar.WIDEN, mask)
    candidates = np.union1d(rows, fold_rows).astype(np.int32)
    part = np.zeros(len(candidates))
    part[np.searchsorted(candidates, rows)] = np.clip(sums / len(cart_rows), 0.0, 1.0)
    blended = 0.5 * part + 0.5 * np.clip(model.item_factors[candidates] @ vector, 0.0, 1.0)
    answer = []
    for row in candidates[np.lexsort((candidates, -blended))[:n]]:
        evidence = []
        at = np.searchsorted(rows, row)
        if at < len(rows) and rows[at] == row and sums[at] > 0:
            parts = sources[at] / sums[at]
            for source in np.argsort(-parts, kind="stable"):
                if parts[source] > 0:
                    share = round(float(parts[source]), 3)
                    evidence.append((model.item_ids[cart_rows[source]], share))
        answer.append((model.item_ids[row], float(blended[candidates == row][0]), evidence))
    return answer


def carts(model: LoadedModel, count: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        size = int(rng.choice([1, 1, 1, 2, 3, 5]))
        cart = [f"i{row}" for row in rng.choice(ITEMS, size, replace=False)]
        owned = [f"i{row}" for row in rng.choice(ITEMS, int(rng.choice([0, 0, 4])))]
        mask = allowed_mask(model, RecommendQuery(n=3), cart + owned)
        yield similar.cart_rows_of(model, cart), mask


def test_add_ons_are_those_of_the_full_search(monkeypatch):
    model = make_model()
    searches = []
    search = model.index.search
    monkeypatch.setattr(model.index, "search", lambda *a: searches.append(1) or search(*a))
    searched = 0
    for cart_rows, mask in carts(model, 400):
        expected = reference_addons(model, cart_rows, 3, mask)
        before = len(searches)
        got = similar.cart_addons(model, cart_rows, 3, mask)
        searched += len(searches) > before
        assert [shown(item) for item in got] == [(i, e) for i, _s, e in expected]
        assert [item["score"] for item in got] == pytest.approx(
            [score for _i, score, _e in expected], abs=2e-6
        )
    # Both ways were taken: the lists alone, and a search where an item outside them (a
    # long vector) could reach the top.
    assert 0 < searched < 400


def shown(item: dict) -> tuple:
    return item["item_id"], [(e["item_id"], e["share"]) for e in item["evidence"]]


def test_the_cart_model_folds_in_as_the_full_solve():
    model = make_model()
    folds = model.cart
    rng = np.random.default_rng(2)
    for size in (1, 1, 2, 3, 8):
        rows = np.unique(rng.choice(ITEMS, size, replace=False)).astype(np.int32)
        for weight in (4.0, 1.0, 0.3):
            expected = fold_in(
                model.item_factors,
                model.gram,
                rows,
                np.full(len(rows), weight, np.float32),
                model.regularization,
                model.alpha,
            )
            np.testing.assert_allclose(folds.fold_in(model, rows, weight), expected, rtol=1e-5)


def test_the_items_scoring_a_bound_are_found_among_the_longest():
    model = make_model()
    norms = CartModel(model)
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(200):
        vector = (rng.normal(size=model.factors) * rng.uniform(0.01, 2)).astype(np.float32)
        scores = model.item_factors @ vector
        bound = float(np.quantile(scores, rng.uniform(0.95, 0.999)))
        rows = norms.scoring_at_least(vector, bound)
        if rows is not None:  # None: more than HEAD items are long enough
            # Equal but for scores within float32 rounding of the bound (another BLAS call).
            near = 1e-5 * abs(bound)
            above, reached = np.flatnonzero(scores >= bound + near), set(rows.tolist())
            assert set(above) <= reached <= set(np.flatnonzero(scores >= bound - near))
            found += 1
    assert found > 100
    assert norms.scoring_at_least(np.zeros(model.factors, np.float32), 0.5).size == 0
    assert norms.scoring_at_least(np.ones(model.factors, np.float32), 1e-9) is None


def test_the_cart_model_is_built_once_per_model():
    first, second = make_model(), make_model(version="t2")
    assert first.cart is first.cart
    assert second.cart is not first.cart


def test_the_cache_hands_out_copies_and_forgets_with_the_model():
    cache, calls = AddonCache(size=2), []

    def compute(name):
        def answer():
            calls.append(name)
            return "cart", [{"item_id": name, "score": 1.0}]

        return answer

    model = make_model()
    key = cache.key(["i1"], ["i1"], 3)
    first = cache.get(model, key, compute("a"))
    first[1][0]["title"] = "a tile added by the caller"
    again = cache.get(model, key, compute("b"))
    assert calls == ["a"] and again == ("cart", [{"item_id": "a", "score": 1.0}])
    cache.get(model, cache.key(["i2"], [], 3), compute("c"))
    cache.get(model, cache.key(["i3"], [], 3), compute("d"))
    cache.get(model, key, compute("e"))  # the oldest was let go
    assert calls == ["a", "c", "d", "e"]
    cache.get(make_model(version="t2"), key, compute("f"))  # another model: nothing held
    assert calls[-1] == "f"
