"""The per-visitor protocol: every test visitor counted, targets the train part never had
included, the served chain and the baselines scored against the same targets."""

from __future__ import annotations

import numpy as np
import pytest

from training.served import bootstrap_interval, score_lists, visitor_test
from training.splits import split_global_time

DAY = 86_400.0


def small_split(make_log):
    rows = [
        ("u1", "a", 1 * DAY, "product_view"),
        ("u1", "a", 11 * DAY, "add_to_cart"),  # a seen target
        ("u1", "new", 12 * DAY, "purchase"),  # an item train never had
        ("u2", "b", 2 * DAY, "product_view"),
        ("u2", "new", 11 * DAY, "add_to_cart"),  # u2's only target: unreachable
        ("u3", "c", 3 * DAY, "product_view"),
        ("u3", "a", 11 * DAY, "product_view"),  # a view: not a target
    ]
    return split_global_time(make_log(rows), cutoff=10 * DAY)


def test_every_visitor_with_a_target_counts_even_when_no_model_can_reach_it(make_log):
    split = small_split(make_log)
    test = visitor_test(split)
    users = [split.train.users[u] for u in test.users]
    assert users == ["u1", "u2"] and test.relevant.tolist() == [2, 1]
    assert test.report["targets_on_new_items"] == 2
    seen = visitor_test(split, exclude_seen=True)
    assert [split.train.users[u] for u in seen.users] == ["u1", "u2"]
    assert seen.relevant.tolist() == [1, 1] and seen.report["seen_targets"] == 1


def test_unreachable_targets_stay_in_the_denominator(make_log):
    split = small_split(make_log)
    test = visitor_test(split)
    a = list(split.train.items).index("a")
    # u1's list holds a (a hit) and nothing else; u2's list is empty.
    codes = np.array([[a, -1], [-1, -1]])
    metrics, per_user = score_lists(codes, test, (2,), len(split.train.items))
    assert per_user["recall@2"].tolist() == [0.5, 0.0]
    ideal = 1 + 1 / np.log2(3)
    assert per_user["ndcg@2"].tolist() == pytest.approx([1 / ideal, 0.0])
    assert metrics["ndcg@2"] == pytest.approx(0.5 / ideal)


def test_the_bootstrap_interval_holds_the_mean():
    values = np.random.default_rng(0).random(300)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high and high - low < 0.1
    assert bootstrap_interval(np.zeros(0)) == (0.0, 0.0)
