"""Splits do not leak; folds drop and count what cannot be scored."""

from __future__ import annotations

import numpy as np
import pytest

from training.folds import make_fold
from training.splits import (
    SplitSpec,
    crossfold_users,
    split_global_time,
    split_leave_last_n,
    split_user_fraction,
)
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


def assert_no_leak_within_users(split) -> None:
    """Per user, no test event is earlier than a train event of theirs."""
    for user in np.unique(split.test.user):
        train_times = split.train.time[split.train.user == user]
        assert len(train_times) >= 1
        assert train_times.max() <= split.test.time[split.test.user == user].min()


def test_user_fraction_holds_out_the_last_share_of_each_user(planted) -> None:
    log = planted.interactions  # 30 events per user
    split = split_user_fraction(log, 0.2)
    assert_no_leak_within_users(split)
    per_user = np.bincount(split.test.user, minlength=len(log.users))
    assert set(per_user.tolist()) == {6}
    assert len(split.train) + len(split.test) == len(log)
    assert split.report.method == "user_fraction" and split.cutoff is None


def test_user_fraction_holds_out_at_least_one_and_keeps_single_event_users_in_train(
    make_log,
) -> None:
    log = make_log(
        [
            ("u", "a", 1.0, "product_view"),
            ("u", "b", 2.0, "product_view"),
            ("u", "c", 3.0, "product_view"),
            ("once", "a", 4.0, "product_view"),
        ]
    )
    split = split_user_fraction(log, 0.1)  # round(0.3) is 0: one is held out anyway
    assert split.test.items[split.test.item].tolist() == ["c"]
    assert sorted(split.train.users[split.train.user]) == ["once", "u", "u"]
    with pytest.raises(ValueError):
        split_user_fraction(log, 1.0)


def test_crossfold_tests_every_user_once_on_their_last_events(planted) -> None:
    log = planted.interactions
    splits = crossfold_users(log, folds=4, n=3, seed=1)
    assert len(splits) == 4
    tested = [set(np.unique(s.test.user).tolist()) for s in splits]
    # Disjoint folds of near-equal size that cover every user.
    assert sum(len(t) for t in tested) == len(set().union(*tested)) == len(log.users)
    assert max(map(len, tested)) - min(map(len, tested)) <= 1
    for split in splits:
        assert_no_leak_within_users(split)
        assert len(split.train) + len(split.test) == len(log)
        assert set(np.bincount(split.test.user)[np.unique(split.test.user)]) == {3}
        # Users of other folds train on all their events, later ones included.
        others = ~np.isin(np.arange(len(log.users)), np.unique(split.test.user))
        assert np.all(np.bincount(split.train.user, minlength=len(log.users))[others] == 30)
    # The same seed deals the same folds, another seed others.
    again = crossfold_users(log, folds=4, n=3, seed=1)
    assert all(np.array_equal(a.test.user, b.test.user) for a, b in zip(splits, again, strict=True))
    other = crossfold_users(log, folds=4, n=3, seed=2)
    assert not np.array_equal(splits[0].test.user, other[0].test.user)


def test_crossfold_leaves_users_too_short_to_test_in_train(make_log) -> None:
    log = make_log(
        [
            ("a", "x", 1.0, "product_view"),
            ("a", "y", 2.0, "product_view"),
            ("b", "x", 3.0, "product_view"),
        ]
    )
    splits = crossfold_users(log, folds=2, n=1)
    assert sum(len(s.test) for s in splits) == 1
    assert all("b" in s.train.users[s.train.user] for s in splits)


@pytest.mark.parametrize(
    ("spec", "method", "count"),
    [
        (SplitSpec("time", test_days=10), "global_time", 1),
        (SplitSpec("leave-last", holdout=2), "leave_last_n", 1),
        (SplitSpec("user-fraction", fraction=0.3), "user_fraction", 1),
        (SplitSpec("user-kfold", folds=3, holdout=2), "user_kfold", 3),
    ],
)
def test_split_spec_makes_the_named_split(planted, spec, method, count) -> None:
    splits = spec.make(planted.interactions)
    assert len(splits) == count and {s.report.method for s in splits} == {method}
    assert spec.to_dict()["method"] == spec.method
    assert spec.validation().method == ("leave-last" if count > 1 else spec.method)
    # Tuning looks only at what no split tests.
    before_test = spec.before_test(planted.interactions)
    tested = np.zeros(len(planted.interactions), bool)
    keys = planted.interactions.time * 1e6 + planted.interactions.user  # unique per event
    for split in splits:
        tested |= np.isin(keys, split.test.time * 1e6 + split.test.user)
    assert len(before_test) == np.count_nonzero(~tested)
    assert not np.isin(before_test.time * 1e6 + before_test.user, keys[tested]).any()


def test_crossfold_counts_the_target_events_as_leave_last_does(make_log) -> None:
    log = make_log(
        [
            ("buyer", "a", 1.0, "product_view"),
            ("buyer", "b", 2.0, "purchase"),
            ("buyer", "c", 3.0, "product_view"),
            ("viewer", "a", 1.0, "product_view"),
            ("viewer", "b", 2.0, "product_view"),
        ]
    )
    splits = crossfold_users(log, folds=2, n=1, events=("purchase",))
    tested = [s for s in splits if len(s.test)]
    assert len(tested) == 1  # only the buyer has a purchase to hold out
    assert sorted(tested[0].test.items[tested[0].test.item]) == ["b", "c"]
    spec = SplitSpec("leave-last")
    assert len(spec.make(log, ("purchase",))[0].test) == 2
