"""Splits do not leak; folds drop and count what cannot be scored."""

from __future__ import annotations

import numpy as np
import pytest

from training.folds import make_fold
from training.splits import split_global_time, split_leave_last_n
from training.weights import load_weights

DAY = 86_400.0


def test_global_time_split_has_no_leakage(planted) -> None:
    log = planted.interactions
    cutoff = log.time[0] + 45 * DAY
    split = split_global_time(log, cutoff)
    assert split.train.time.max() < cutoff <= split.test.time.min()
    # Test users are those seen in both parts.
    assert set(np.unique(split.test.user)) <= set(np.unique(split.train.user))
    dropped = split.report.dropped_test_events
    assert split.report.train_events + split.report.test_events + dropped == len(log)


def test_global_time_split_counts_users_only_in_test(make_log) -> None:
    log = make_log(
        [
            ("old", "a", 1.0, "product_view"),
            ("old", "b", 10.0, "purchase"),
            ("late", "a", 11.0, "purchase"),
        ]
    )
    split = split_global_time(log, 5.0)
    assert split.report.dropped_test_users == 1 and split.report.dropped_test_events == 1
    assert len(split.test) == 1 and split.test.users[split.test.user[0]] == "old"


def test_global_time_split_by_test_days(planted) -> None:
    log = planted.interactions
    split = split_global_time(log, test_days=10)
    assert split.cutoff == pytest.approx(log.time[-1] - 10 * DAY)
    with pytest.raises(ValueError):
        split_global_time(log)


def test_leave_last_n_holds_out_each_users_latest_events(planted) -> None:
    log = planted.interactions
    split = split_leave_last_n(log, n=2)
    for user in range(len(log.users)):
        train_times = split.train.time[split.train.user == user]
        test_times = split.test.time[split.test.user == user]
        assert len(test_times) == 2
        assert train_times.max() <= test_times.min()  # no leakage within a user
    assert len(split.train) + len(split.test) == len(log)


def test_leave_last_n_counts_only_chosen_events_and_keeps_later_ones_out_of_train(
    make_log,
) -> None:
    log = make_log(
        [
            ("u", "a", 1.0, "product_view"),
            ("u", "b", 2.0, "purchase"),
            ("u", "c", 3.0, "product_view"),
            ("u", "d", 4.0, "add_to_cart"),
            ("u", "e", 5.0, "product_view"),
            ("short", "a", 1.0, "purchase"),  # nothing before it to train on
        ]
    )
    split = split_leave_last_n(log, n=2, events=("add_to_cart", "purchase"))
    test_items = sorted(split.test.items[split.test.item])
    assert test_items == ["b", "c", "d", "e"]  # from the 2nd last cart/purchase on
    assert sorted(split.train.items[split.train.item]) == ["a", "a"]
    assert split.report.test_users == 1


def test_fold_drops_and_counts_new_items_cold_users_and_seen_targets(make_log) -> None:
    log = make_log(
        [
            ("u1", "a", 1.0, "product_view"),
            ("u1", "b", 2.0, "product_view"),
            ("u2", "a", 3.0, "purchase"),
            ("u2", "c", 4.0, "product_view"),
            # test part, from t = 10
            ("u1", "c", 11.0, "purchase"),  # a target
            ("u1", "new", 12.0, "purchase"),  # item first seen after the split
            ("u1", "b", 13.0, "add_to_cart"),  # seen in train by u1
            ("u1", "a", 14.0, "product_view"),  # not a positive type
            ("u2", "b", 15.0, "add_to_cart"),  # a target
            ("u3", "a", 16.0, "purchase"),  # user not in train (dropped by the split)
        ]
    )
    split = split_global_time(log, 10.0)
    assert split.report.dropped_test_users == 1
    fold = make_fold(split, load_weights())
    r = fold.report
    assert (r.test_events, r.non_positive_events) == (5, 1)
    assert (r.new_items, r.events_on_new_items) == (1, 1)
    assert r.seen_targets == 1
    assert (r.users, r.targets) == (2, 2)
    users = fold.train.users.ids(fold.users).tolist()
    targets = {
        u: fold.train.items.ids(fold.targets[row].indices).tolist() for row, u in enumerate(users)
    }
    assert targets == {"u1": ["c"], "u2": ["b"]}
    # Exclusions are each test user's train items, in the same row order.
    assert fold.exclude is not None
    excluded = fold.train.items.ids(fold.exclude[users.index("u1")].indices).tolist()
    assert sorted(excluded) == ["a", "b"]


def test_fold_without_exclusion_keeps_repeat_targets(make_log) -> None:
    log = make_log([("u", "a", 1.0, "product_view"), ("u", "a", 11.0, "purchase")])
    fold = make_fold(split_global_time(log, 10.0), exclude_seen=False)
    assert fold.exclude is None and fold.report.targets == 1 and fold.report.seen_targets == 0


def test_fold_counts_items_filtered_from_the_matrix(make_log) -> None:
    log = make_log(
        [
            ("u1", "a", 1.0, "product_view"),
            ("u1", "b", 2.0, "product_view"),
            ("u2", "a", 3.0, "product_view"),
            ("u2", "lonely", 4.0, "product_view"),  # one user: under min_item 2
            ("u1", "lonely", 11.0, "purchase"),
        ]
    )
    config = load_weights(min_item_interactions=2)
    fold = make_fold(split_global_time(log, 10.0), config)
    assert fold.report.filtered_items == 1 and fold.report.new_items == 0
    assert fold.report.users == 0
