"""The world model: catalog and population drawn from a seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from synth_support import Store

from recsvc.synth.world import WorldParams, build_world, n_categories_for


@pytest.fixture(scope="module")
def world():
    return build_world(5000, 800, np.random.default_rng(3))


def test_same_generator_state_same_world() -> None:
    first = build_world(300, 100, np.random.default_rng(9))
    second = build_world(300, 100, np.random.default_rng(9))
    assert first.catalog.item_ids == second.catalog.item_ids
    assert np.array_equal(first.catalog.price, second.catalog.price)
    assert np.array_equal(first.population.taste_weights, second.population.taste_weights)
    assert first.population.user_ids == second.population.user_ids


def test_catalog_tables(world) -> None:
    catalog = world.catalog
    assert catalog.n_categories == n_categories_for(800) == 14
    sizes = [len(items) for items in catalog.category_items]
    assert min(sizes) >= 1 and sum(sizes) == catalog.n_items
    for c, items in enumerate(catalog.category_items):
        assert set(catalog.item_category[items].tolist()) == {c}
        for tier in range(3):
            cumulative = catalog.tier_cumweights[tier][c]
            assert len(cumulative) == len(items) and np.all(np.diff(cumulative) > 0)
    assert np.isclose(catalog.category_share.sum(), 1.0)
    assert np.all(np.round(catalog.price % 1, 2) == 0.99)
    assert len(set(catalog.banner_ids)) == len(catalog.banner_category) == 6


def test_price_tiers_prefer_their_prices(world) -> None:
    """A high-tier visitor's draws in a category cost more than a low-tier visitor's."""
    catalog = world.catalog
    biggest = int(np.argmax([len(items) for items in catalog.category_items]))
    prices = catalog.price[catalog.category_items[biggest]]
    expected = []
    for tier in (0, 2):
        weights = np.diff(catalog.tier_cumweights[tier][biggest], prepend=0.0)
        expected.append(float(np.dot(weights, prices) / weights.sum()))
    assert expected[1] > 1.5 * expected[0]


def test_tastes_are_concentrated(world) -> None:
    weights = world.population.taste_weights
    assert np.allclose(weights.sum(axis=1), 1.0)
    liked = Counter((weights > 0).sum(axis=1).tolist())
    assert set(liked) == {1, 2, 3}
    shares = np.array([liked[k] for k in (1, 2, 3)]) / len(weights)
    assert np.allclose(shares, WorldParams().taste_size_shares, atol=0.03)


def test_second_devices_share_their_users_taste(world) -> None:
    population = world.population
    second = np.flatnonzero(population.device_of >= 0)
    assert len(second) == round(5000 * WorldParams().second_device_share)
    primary = population.device_of[second]
    assert np.all(population.device_of[primary] == -1)
    assert np.array_equal(population.taste_weights[second], population.taste_weights[primary])
    assert np.array_equal(population.tier[second], population.tier[primary])
    for device, user in zip(second.tolist(), primary.tolist(), strict=True):
        assert population.user_ids[device] == population.user_ids[user] is not None
    assert population.app[second].all()


def test_registered_share_and_unique_ids(world) -> None:
    population = world.population
    users = [u for u in population.user_ids if u is not None]
    assert 0.25 < len(users) / population.n_visitors < 0.36
    assert len(set(population.visitor_ids)) == population.n_visitors


def test_item_popularity_is_zipf_like(store: Store) -> None:
    """In the generated logs, the most viewed tenth of a category's items gets a large share
    of its views: a long tail, not uniform noise."""
    category = {i["item_id"]: i["category"] for i in store.items}
    views = Counter(r["item_id"] for r in store.records if r["type"] == "product_view")
    per_category: dict[str, list[int]] = {}
    for item, n in views.items():
        per_category.setdefault(category[item], []).append(n)
    for counts in per_category.values():
        if len(counts) >= 20:
            counts.sort(reverse=True)
            assert sum(counts[: len(counts) // 10]) > 0.3 * sum(counts)


def test_n_categories_for() -> None:
    assert n_categories_for(1) == 1
    assert n_categories_for(10) == 2
    assert n_categories_for(1000) == 16
    assert n_categories_for(10**6) == 40
