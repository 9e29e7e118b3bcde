"""Train/test splits that do not leak the future into training.

- :func:`split_global_time`: one cutoff for everybody; train is before it, test after.
  No test event is earlier than any train event.
- :func:`split_leave_last_n`: per user, the last ``n`` events (or from the ``n``-th last
  event of chosen types on) are the test; everything earlier trains. No user's test
  event is earlier than that user's train events (other users' train events may be
  later: that is the protocol, and why the global split is the default for reports).
- :func:`split_user_fraction`: per user, the last ``fraction`` of their events test.
- :func:`crossfold_users`: user k-fold cross-validation as lenskit's ``crossfold_users``
  with ``LastN``: users in ``k`` disjoint random parts; in fold ``i`` the users of part
  ``i`` hold out their last ``n`` events, everything else trains. Every user is tested in
  exactly one fold.

:class:`SplitSpec` names one of these with its parameters, as the command line and the
manifest do; :meth:`SplitSpec.make` returns its splits (``k`` for the k-fold, else one).

Items first seen after the split are not handled here but in
:func:`training.folds.make_fold`, which drops them from the test targets and counts them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from recsvc.core.events import format_timestamp, parse_timestamp
from training.interactions import Interactions

SECONDS_PER_DAY = 86_400.0


@dataclass
class SplitReport:
    """Counts of a split. ``dropped_test_users``: users with test events and no train
    event (their ``dropped_test_events`` are left out of both parts)."""

    method: str
    params: dict[str, Any]
    cutoff: str | None = None
    train_events: int = 0
    test_events: int = 0
    train_users: int = 0
    test_users: int = 0
    dropped_test_users: int = 0
    dropped_test_events: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class Split:
    """A train part and a test part of one log (same id vocabularies).

    Attributes
    ----------
    train, test : Interactions
    cutoff : float or None
        Epoch seconds: the global split's boundary (train ``<``, test ``>=``); None for
        per-user splits, where the train part's last event time is the reference.
    report : SplitReport
    """

    train: Interactions
    test: Interactions
    cutoff: float | None
    report: SplitReport

    @property
    def reference_time(self) -> float:
        """ "Now" for the train part: the cutoff, else the last train event's time."""
        if self.cutoff is not None:
            return self.cutoff
        span = self.train.time_range()
        return span[1] if span else 0.0


def as_epoch(moment: float | datetime | str) -> float:
    """Epoch seconds of a number (taken as epoch seconds), a datetime or ISO 8601 text."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(moment, str):
        return parse_timestamp(moment).timestamp()
    return float(moment)


def split_global_time(
    interactions: Interactions,
    cutoff: float | datetime | str | None = None,
    *,
    test_days: float | None = None,
) -> Split:
    """Everything before ``cutoff`` trains; events from ``cutoff`` on test.

    Test users are those seen in both parts: test events of users with no train event
    are dropped and counted (``dropped_test_users``, ``dropped_test_events``).

    Parameters
    ----------
    interactions : Interactions
    cutoff : float, datetime or str, optional
        Epoch seconds, a datetime (naive means UTC) or ISO 8601.
    test_days : float, optional
        Instead of ``cutoff``: the last ``test_days`` days up to the last event.

    Returns
    -------
    Split
    """
    if (cutoff is None) == (test_days is None):
        raise ValueError("give exactly one of cutoff and test_days")
    if cutoff is None:
        span = interactions.time_range()
        last = span[1] if span else 0.0
        boundary = last - float(test_days) * SECONDS_PER_DAY
    else:
        boundary = as_epoch(cutoff)
    before = interactions.time < boundary
    train = interactions.subset(before)
    seen = np.zeros(len(interactions.users), dtype=bool)
    seen[train.user] = True
    after = ~before
    known = after & seen[interactions.user]
    test = interactions.subset(known)
    report = SplitReport(
        method="global_time",
        params={"cutoff": _iso(boundary), "test_days": test_days},
        cutoff=_iso(boundary),
    )
    dropped = interactions.user[after & ~known]
    report.dropped_test_events = len(dropped)
    report.dropped_test_users = len(np.unique(dropped))
    _count(report, train, test)
    return Split(train=train, test=test, cutoff=boundary, report=report)


def split_leave_last_n(
    interactions: Interactions,
    n: int = 1,
    *,
    events: tuple[str, ...] | None = None,
    min_train_events: int = 1,
) -> Split:
    """Per user, hold out the end of their history.

    The test part of a user starts at their ``n``-th last event (of the types in
    ``events``, when given) and runs to their last event; all their earlier events
    train. Users with fewer than ``n`` such events, or fewer than
    ``min_train_events`` events before the start, are all train.

    Parameters
    ----------
    interactions : Interactions
        Sorted by time, as every loader returns them.
    n : int
        Events held out per user (counted among ``events``).
    events : tuple of str, optional
        Event types that count towards ``n`` (e.g. ``("add_to_cart", "purchase")``);
        other events from the start on go to test too, as context, never to train.
    min_train_events : int
        Train events a user needs to be tested.

    Returns
    -------
    Split
    """
    test_mask = _leave_last_mask(interactions, n, events, min_train_events)
    train = interactions.subset(~test_mask)
    test = interactions.subset(test_mask)
    report = SplitReport(
        method="leave_last_n",
        params={
            "n": n,
            "events": list(events) if events else None,
            "min_train_events": min_train_events,
        },
    )
    _count(report, train, test)
    return Split(train=train, test=test, cutoff=None, report=report)


def _leave_last_mask(
    interactions: Interactions, n: int, events: tuple[str, ...] | None, min_train_events: int
) -> np.ndarray:
    """Bool, shape (n_events,): the test part of :func:`split_leave_last_n`."""
    if n < 1:
        raise ValueError("n must be >= 1")
    order = np.argsort(interactions.user, kind="stable")  # by user, then time
    users = interactions.user[order]
    every = np.ones(len(order), dtype=bool)
    eligible = every if events is None else interactions.event_mask(events)[order]
    first = np.flatnonzero(np.concatenate(([True], users[1:] != users[:-1])))
    ends = np.append(first[1:], len(users))
    group = np.repeat(np.arange(len(first)), ends - first)
    # Eligible events from each position to its user's last event: the test part starts
    # at the one eligible event where that count is n.
    total_after = np.append(np.cumsum(eligible[::-1])[::-1], 0)
    from_end = total_after[:-1] - total_after[ends[group]]
    starts_test = eligible & (from_end == n)
    none = len(users)
    start = np.full(len(first), none)
    start[group[starts_test]] = np.flatnonzero(starts_test)
    tested = (start < none) & (start - first >= min_train_events)
    is_test = tested[group] & (np.arange(len(users)) >= start[group])
    test_mask = np.zeros(len(order), dtype=bool)
    test_mask[order[is_test]] = True
    return test_mask


def split_user_fraction(
    interactions: Interactions, fraction: float = 0.2, *, min_train_events: int = 1
) -> Split:
    """Per user, the last ``fraction`` of their events (at least one) are the test.

    A user with ``m`` events holds out ``max(1, round(fraction * m))`` of them when at
    least ``min_train_events`` remain to train on; other users are all train.

    Parameters
    ----------
    interactions : Interactions
        Sorted by time.
    fraction : float
        In (0, 1).
    min_train_events : int

    Returns
    -------
    Split
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    from_end, sizes = _positions_from_end(interactions)
    held = np.maximum(1, np.round(fraction * sizes).astype(np.int64))
    test_mask = (from_end <= held) & (sizes - held >= min_train_events)
    params = {"fraction": fraction, "min_train_events": min_train_events}
    return _per_user_split(interactions, test_mask, "user_fraction", params)


def crossfold_users(
    interactions: Interactions,
    folds: int = 5,
    n: int = 1,
    *,
    events: tuple[str, ...] | None = None,
    seed: int = 42,
    min_train_events: int = 1,
) -> list[Split]:
    """User k-fold cross-validation (lenskit's ``crossfold_users`` with ``LastN(n)``).

    The users :func:`split_leave_last_n` would test (``n`` events of the ``events``
    types, all types when None, and ``min_train_events`` before them) are shuffled
    (``seed``) and dealt into ``folds`` parts of near-equal size; split ``i`` tests the
    users of part ``i`` as :func:`split_leave_last_n` would and trains on everything
    else, including the other users' later events (per user, a test event is never
    earlier than that user's train events). Other users are in every train part.

    Returns
    -------
    list of Split, one per fold
    """
    if folds < 2:
        raise ValueError("folds must be >= 2")
    held_out = _leave_last_mask(interactions, n, events, min_train_events)
    candidates = np.unique(interactions.user[held_out])
    part = np.full(len(interactions.users), -1)
    shuffled = np.random.default_rng(seed).permutation(candidates)
    part[shuffled] = np.arange(len(shuffled)) % folds
    splits = []
    for fold in range(folds):
        test_mask = (part[interactions.user] == fold) & held_out
        params = {"folds": folds, "fold": fold, "n": n, "seed": seed}
        params["events"] = list(events) if events else None
        splits.append(_per_user_split(interactions, test_mask, "user_kfold", params))
    return splits


SplitMethod = Literal["time", "leave-last", "user-fraction", "user-kfold"]


@dataclass(frozen=True)
class SplitSpec:
    """A split as the command line names it (``--split`` and its parameters).

    Attributes
    ----------
    method : {"time", "leave-last", "user-fraction", "user-kfold"}
        :func:`split_global_time` over the last ``test_days``,
        :func:`split_leave_last_n` with ``holdout``, :func:`split_user_fraction` with
        ``fraction``, or :func:`crossfold_users` with ``folds`` and ``holdout``.
    """

    method: SplitMethod = "time"
    test_days: float = 7.0
    holdout: int = 1
    fraction: float = 0.2
    folds: int = 5
    seed: int = 42

    def make(
        self, interactions: Interactions, targets: tuple[str, ...] | None = None
    ) -> list[Split]:
        """The split (one), or the ``folds`` splits of the k-fold. ``targets``: the event
        types the leave-last and k-fold holdouts count (from the ``holdout``-th last of
        them on is test; None: every type)."""
        if self.method == "time":
            return [split_global_time(interactions, test_days=self.test_days)]
        if self.method == "leave-last":
            return [split_leave_last_n(interactions, self.holdout, events=targets)]
        if self.method == "user-fraction":
            return [split_user_fraction(interactions, self.fraction)]
        if self.method == "user-kfold":
            return crossfold_users(
                interactions, self.folds, self.holdout, events=targets, seed=self.seed
            )
        raise ValueError(f"unknown split method {self.method!r}")

    def before_test(
        self, interactions: Interactions, targets: tuple[str, ...] | None = None
    ) -> Interactions:
        """What no split of :meth:`make` tests: the part tuning and search may look at.
        For the k-fold, the log without any fold's test events (fold 0's train part
        holds the other folds' test events: tuning on it would see them)."""
        if self.method == "user-kfold":
            held_out = _leave_last_mask(interactions, self.holdout, targets, 1)
            return interactions.subset(~held_out)
        return self.make(interactions, targets)[0].train

    def validation(self) -> SplitSpec:
        """The split to carve a validation part from a train part with (tuning, search):
        the same one, except that a k-fold's train part is split leave-last."""
        if self.method == "user-kfold":
            return SplitSpec("leave-last", holdout=self.holdout, seed=self.seed)
        return self

    def describe(self) -> str:
        """The split in words, for messages."""
        return {
            "time": f"the time split (last {self.test_days:g} days)",
            "leave-last": f"the leave-last split ({self.holdout} per user)",
            "user-fraction": f"the user-fraction split (last {self.fraction:g} per user)",
            "user-kfold": f"the {self.folds}-fold user split ({self.holdout} per test user)",
        }[self.method]

    def to_dict(self) -> dict[str, Any]:
        """The method and the parameters it uses, JSON-ready (the manifest's ``split``)."""
        used = {
            "time": ("test_days",),
            "leave-last": ("holdout",),
            "user-fraction": ("fraction",),
            "user-kfold": ("folds", "holdout", "seed"),
        }[self.method]
        return {"method": self.method, **{name: getattr(self, name) for name in used}}


def _positions_from_end(interactions: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Per event, its place from its user's last event (1: the last) and its user's
    event count; both int64, shape (n,), in the log's order."""
    order = np.argsort(interactions.user, kind="stable")  # by user, then time
    users = interactions.user[order]
    sizes_per_user = np.bincount(users, minlength=len(interactions.users))
    first = np.concatenate(([0], np.cumsum(sizes_per_user)[:-1]))
    position = np.arange(len(order)) - first[users]  # 0: the user's first event
    from_end = np.empty(len(order), dtype=np.int64)
    from_end[order] = sizes_per_user[users] - position
    return from_end, sizes_per_user[interactions.user].astype(np.int64)


def _per_user_split(
    interactions: Interactions, test_mask: np.ndarray, method: str, params: dict[str, Any]
) -> Split:
    report = SplitReport(method=method, params=params)
    train, test = interactions.subset(~test_mask), interactions.subset(test_mask)
    _count(report, train, test)
    return Split(train=train, test=test, cutoff=None, report=report)


def _count(report: SplitReport, train: Interactions, test: Interactions) -> None:
    report.train_events, report.test_events = len(train), len(test)
    report.train_users = len(np.unique(train.user))
    report.test_users = len(np.unique(test.user))


def _iso(epoch: float) -> str:
    return format_timestamp(datetime.fromtimestamp(epoch, UTC))
