"""The refusal to evaluate on too little: counts, and a hint that fits the log."""

from __future__ import annotations

import pytest

from training.splits import SplitSpec
from training.sufficiency import EvaluationRefused, check_test_sets

DAY = 86_400.0


def test_enough_users_and_targets_pass_with_their_counts(planted) -> None:
    spec = SplitSpec("leave-last", holdout=2)
    splits = spec.make(planted.interactions)
    users, targets = check_test_sets(splits, spec, None, min_users=300, min_targets=300)
    assert users == 300 and 300 <= targets <= 600


def test_a_burst_log_under_a_time_split_is_told_to_split_per_user(make_log) -> None:
    # Each user active on one day of their own: the last 7 days hold new users only.
    rows = [(f"u{d}", f"i{k}", d * DAY + k, "purchase") for d in range(60) for k in range(3)]
    spec = SplitSpec("time", test_days=7)
    with pytest.raises(EvaluationRefused) as refused:
        check_test_sets(spec.make(make_log(rows)), spec, ("purchase",), min_users=5)
    message = str(refused.value)
    # One user's day straddles the cutoff; the 7 after it are new users.
    assert message.startswith("the time split (last 7 days) leaves 1 test users with 1 targets")
    assert "7 users are active only in the test period" in message
    assert "--split leave-last" in message and "\n" not in message


def test_views_without_carts_are_told_to_name_their_targets(make_log) -> None:
    rows = [(f"u{u}", f"i{k}", k * DAY + u, "product_view") for u in range(30) for k in range(4)]
    rows += [("u0", "i9", 4 * DAY, "purchase")]
    spec = SplitSpec("leave-last", holdout=2)
    with pytest.raises(
        EvaluationRefused, match="--target-events add_to_cart,purchase,product_view"
    ):
        check_test_sets(spec.make(make_log(rows)), spec, ("add_to_cart", "purchase"), min_users=5)
    # Every event a target: 30 users, enough.
    assert check_test_sets(spec.make(make_log(rows)), spec, None, min_users=5)[0] == 30


def test_too_few_users_for_a_per_user_split_says_how_many_could_be_tested(make_log) -> None:
    rows = [(f"u{u}", f"i{k}", k + u * 10.0, "product_view") for u in range(4) for k in range(3)]
    spec = SplitSpec("user-fraction", fraction=0.3)
    with pytest.raises(EvaluationRefused, match="the log has 4 users with two or more events"):
        check_test_sets(spec.make(make_log(rows)), spec, None)
