"""Visitor states rebuilt from a log through the service's own profile code."""

from __future__ import annotations

import numpy as np

from recsvc.settings import Settings
from training.visitor_states import replay_profiles, states_from_log

T0 = 1_700_000_000.0


def test_the_replayed_profile_is_the_one_ingestion_builds(make_log):
    log = make_log(
        [
            ("v", "a", T0, "product_view"),
            ("v", "b", T0 + 60, "product_view"),
            ("v", "a", T0 + 120, "product_view"),
            ("v", "c", T0 + 180, "add_to_cart"),
            ("v", "d", T0 + 240, "add_to_cart"),
            ("v", "d", T0 + 300, "purchase"),
            ("w", "b", T0, "product_view"),
        ]
    )
    users = np.array([list(log.users).index("v")])
    [(visitor, shared)] = list(replay_profiles(log, users, Settings()))
    recent = [(item, kind, touches) for item, kind, _at, touches in visitor["recent_items"]]
    # Newest first, each item once at its latest touch, its events counted.
    assert recent == [
        ("d", "purchase", 2),
        ("c", "add_to_cart", 1),
        ("a", "product_view", 2),
        ("b", "product_view", 1),
    ]
    assert list(shared["cart"]["items"]) == ["c"]  # d was bought
    assert [line[0] for line in shared["purchases"]["items"]] == ["d"]


def test_a_cart_beyond_its_cap_is_left_out_as_the_service_refuses_it(make_log):
    rows = [("v", f"i{n}", T0 + n, "add_to_cart") for n in range(5)]
    [(_visitor, shared)] = list(
        replay_profiles(make_log(rows), np.array([0]), Settings(cart_max_lines=3))
    )
    assert list(shared["cart"]["items"]) == ["i0", "i1", "i2"]


def test_states_are_model_rows_with_the_visitor_s_vector(make_log):
    log = make_log([("v", "a", T0, "product_view"), ("v", "z", T0 + 60, "add_to_cart")])
    vectors = np.ones((1, 4), np.float32)
    [state] = states_from_log(log, np.array([0]), {"a": 0, "b": 1}, vectors, Settings())
    # z is not in the model: left out of the recent items and the cart.
    assert state.recent.tolist() == [0] and state.cart.tolist() == []
    assert state.recent_kinds == ("product_view",) and state.vector.tolist() == [1] * 4
