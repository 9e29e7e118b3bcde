"""Refuse to report metrics that cannot mean anything: too few test users or targets.

A split that leaves a handful of test users (a 7-day global split on a log where each
user is active in one burst), or none with a target (only carts and purchases count, and
the log has views), gives metrics of 0.0000 or of pure noise. :func:`check_test_sets`
counts what the evaluation would score, before any model is fit, and raises
:class:`EvaluationRefused` with one line that says why and which split or flag would
work; ``recsvc train`` then writes no version (or, with ``--no-eval``, one marked
unevaluated).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.served import visitor_test
from training.splits import Split, SplitSpec

# Defaults of ``--min-test-users`` and ``--min-test-targets``. With 50 users a bootstrap
# 95% interval of NDCG@10 is typically ±0.05 to ±0.1 wide: about the least that can tell
# a model from popularity.
MIN_TEST_USERS = 50
MIN_TEST_TARGETS = 50


class EvaluationRefused(ValueError):
    """The split leaves too little to evaluate; the message says what would work."""


def check_test_sets(
    splits: Sequence[Split],
    spec: SplitSpec,
    positives: Sequence[str] | None,
    *,
    exclude_seen: bool = False,
    min_users: int = MIN_TEST_USERS,
    min_targets: int = MIN_TEST_TARGETS,
) -> tuple[int, int]:
    """The test users and targets of ``splits`` (summed over folds), or a refusal.

    Raises
    ------
    EvaluationRefused
        When there are fewer than ``min_users`` test users or ``min_targets`` targets.
    """
    tests = [visitor_test(split, positives, exclude_seen) for split in splits]
    users = sum(len(test) for test in tests)
    targets = sum(int(test.targets.nnz) for test in tests)
    if users >= min_users and targets >= min_targets:
        return users, targets
    what = "every event a target" if positives is None else "/".join(positives)
    raise EvaluationRefused(
        f"{spec.describe()} leaves {users:,} test users with {targets:,} targets ({what}), "
        f"fewer than --min-test-users {min_users} / --min-test-targets {min_targets}: "
        f"{_why(splits, spec, positives)}; or --no-eval to write the version unevaluated"
    )


def _why(splits: Sequence[Split], spec: SplitSpec, positives: Sequence[str] | None) -> str:
    """The likeliest reason, and the flag that addresses it."""
    test_events = sum(len(split.test) for split in splits)
    if positives is not None and test_events:
        on_targets = sum(int(np.count_nonzero(s.test.event_mask(tuple(positives)))) for s in splits)
        if on_targets * 2 < test_events:
            others = sorted(
                {name for s in splits for name in s.test.event_counts()} - set(positives)
            )
            return (
                f"only {on_targets:,} of the {test_events:,} test events are targets; "
                f"--target-events {','.join([*positives, *others])} counts the others too"
            )
    if spec.method == "time":
        dropped = sum(split.report.dropped_test_users for split in splits)
        if dropped:
            return (
                f"{dropped:,} users are active only in the test period (a log of short "
                "bursts): a per-user split tests every user (--split leave-last or "
                "--split user-fraction)"
            )
        return f"a longer test period (--test-days {spec.test_days * 2:g}) or a per-user split"
    log = splits[0].train
    counts = np.bincount(np.concatenate([log.user, splits[0].test.user]))
    repeat_users = int(np.count_nonzero(counts >= 2))
    return (
        f"the log has {repeat_users:,} users with two or more events: a per-user split "
        "needs more users, or a lower --min-test-users"
    )
