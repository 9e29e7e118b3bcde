"""A split made ready to score: the train matrix, the test users' rows, their targets.

What the test part contributes, and what it cannot, is decided here once for every
scorer:

- targets are the test events of the ``positives`` types (all types when None), one per
  distinct (user, item);
- test users not in the train matrix are dropped (counted);
- target items not in the train matrix are dropped and counted, split by why: never
  seen before the split (``new_items``), or seen but weighted 0 or under the matrix's
  minimum counts (``filtered_items``); no scorer can rank an item it has no column for;
- with ``exclude_seen`` (the default), the items a user has in the train matrix are
  never recommended to them, by any scorer, and targets among them are dropped
  (counted as ``seen_targets``): repeat interest is then not what is measured. Without
  it nothing is excluded and repeats count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from training.matrix import InteractionMatrix, build_matrix
from training.splits import Split
from training.weights import WeightConfig


@dataclass
class FoldReport:
    """Where the test part's events went (counts of events unless named)."""

    test_events: int = 0
    non_positive_events: int = 0
    users_not_in_train: int = 0
    events_of_users_not_in_train: int = 0
    new_items: int = 0
    events_on_new_items: int = 0
    filtered_items: int = 0
    events_on_filtered_items: int = 0
    seen_targets: int = 0
    users_without_targets: int = 0
    users: int = 0
    targets: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class Fold:
    """Everything :func:`training.evaluate.evaluate` needs, the same for every scorer.

    Attributes
    ----------
    train : InteractionMatrix
    users : ndarray, shape (n_test,), int32
        Rows of ``train.matrix`` of the test users, ascending.
    targets : scipy.sparse.csr_matrix, shape (n_test, n_items), float32
        1 where the item is a positive of the user; every row has at least one.
    exclude : scipy.sparse.csr_matrix or None, shape (n_test, n_items)
        Items never to recommend to each test user (their train items), or None.
    split : dict
        The split's report (method, parameters, counts).
    report : FoldReport
    """

    train: InteractionMatrix
    users: np.ndarray
    targets: sp.csr_matrix
    exclude: sp.csr_matrix | None
    split: dict[str, Any]
    report: FoldReport


def make_fold(
    split: Split,
    config: WeightConfig | None = None,
    *,
    positives: tuple[str, ...] | None = ("add_to_cart", "purchase"),
    exclude_seen: bool = True,
) -> Fold:
    """Build the train matrix and the test targets of ``split``.

    Parameters
    ----------
    split : Split
    config : WeightConfig, optional
        For :func:`training.matrix.build_matrix`; decay counts back from the split's
        reference time.
    positives : tuple of str or None
        Event types that are targets; None for every type.
    exclude_seen : bool
        Exclude each user's train items from recommendations (and drop them as targets).

    Returns
    -------
    Fold
    """
    train = build_matrix(split.train, config, reference_time=split.reference_time)
    report = FoldReport(test_events=len(split.test))
    test = split.test
    if positives is not None:
        is_positive = test.event_mask(positives)
        report.non_positive_events = int(len(test) - np.count_nonzero(is_positive))
        test = test.subset(is_positive)
    rows = train.users.rows(test.users[test.user])
    columns = train.items.rows(test.items[test.item])
    known_user = rows >= 0
    report.users_not_in_train = len(np.unique(test.user[~known_user]))
    report.events_of_users_not_in_train = int(np.count_nonzero(~known_user))
    _count_unrankable_items(split, test, columns, known_user, report)
    usable = known_user & (columns >= 0)
    targets = _target_matrix(rows[usable], columns[usable], train.shape)
    exclude = None
    if exclude_seen:
        seen = train.matrix.multiply(targets.astype(bool)).tocsr()
        seen.eliminate_zeros()
        report.seen_targets = int(seen.nnz)
        targets = (targets - seen.astype(bool).astype(np.float32)).tocsr()
        targets.eliminate_zeros()
    had_targets = np.unique(rows[usable])
    users = np.flatnonzero(np.diff(targets.indptr) > 0).astype(np.int32)
    report.users_without_targets = int(len(had_targets) - len(users))
    targets = targets[users]
    if exclude_seen:
        exclude = train.matrix[users]
    report.users, report.targets = len(users), int(targets.nnz)
    return Fold(train, users, targets, exclude, split.report.to_dict(), report)


def _count_unrankable_items(
    split: Split, test, columns: np.ndarray, known_user: np.ndarray, report: FoldReport
) -> None:
    """Count target items with no train column: new after the split, or filtered out."""
    in_train_log = np.zeros(len(split.train.items), dtype=bool)
    in_train_log[split.train.item] = True
    missing = known_user & (columns < 0)
    new = missing & ~in_train_log[test.item]
    filtered = missing & in_train_log[test.item]
    report.new_items = len(np.unique(test.item[new]))
    report.events_on_new_items = int(np.count_nonzero(new))
    report.filtered_items = len(np.unique(test.item[filtered]))
    report.events_on_filtered_items = int(np.count_nonzero(filtered))


def _target_matrix(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """1 per distinct (row, column), as a float32 CSR over all train users."""
    ones = np.ones(len(rows), dtype=np.float32)
    targets = sp.csr_matrix((ones, (rows, columns)), shape=shape)
    targets.sum_duplicates()
    targets.data[:] = 1.0
    return targets
