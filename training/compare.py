"""Two model versions as served, on the same test visitors, side by side with a paired test.

A version is compared as the service runs it: its :class:`ScoringModel` (loaded from the
artifact exactly as the service loads it, or built from an evaluation fit the way
:func:`training.pipeline.evaluate_split` builds it) asked through the served strategy
chain (:mod:`recsvc.scoring.strategies`) about each test visitor's state replayed from the
log (:mod:`training.visitor_states`), with the long-term vector the version holds for
them. The targets and the visitors are the per-visitor protocol's
(:func:`training.served.visitor_test`), one set for both versions, so every figure is
paired: per visitor, version B's metric minus version A's.

The split must be *fresh* for both: neither version may have trained on an event after
its cutoff (a version's user vectors would otherwise carry its test targets). The cutoff
is therefore never before the last event either version saw (:func:`fresh_split`).

For each metric: both means with a bootstrap 95% interval over the visitors, the mean
difference with a *paired* bootstrap 95% interval (visitors resampled together for both
versions), and the two-sided Wilcoxon signed-rank p-value of the per-visitor differences
(scipy; visitors where both score the same carry no sign and are dropped, as Wilcoxon's
test does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from recsvc.core.events import parse_timestamp
from recsvc.scoring.artifact import ModelArtifact
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.strategies import visitor_chain
from training.interactions import Interactions
from training.matrix import IdMap
from training.served import (
    POSITIVES,
    VisitorTest,
    bootstrap_interval,
    score_lists,
    strategy_codes,
    visitor_test,
)
from training.splits import SECONDS_PER_DAY, Split, split_global_time
from training.visitor_states import states_from_log

METRICS = ("ndcg@10", "recall@20", "precision@10", "map@10")
BOOTSTRAP_SAMPLES = 2000
FRESH_MARGIN_SECONDS = 0.0005


@dataclass
class Contender:
    """One version as served: its scoring model and the long-term vectors it holds.

    ``user_ids[i]`` owns ``user_factors[i]``; a visitor not among them is anonymous to
    this version (as to the service, which finds no vector for them).
    """

    name: str
    model: ScoringModel
    user_ids: IdMap
    user_factors: np.ndarray | None

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> Contender:
        """A version from the registry, exactly as the service loads it."""
        return cls(
            artifact.version,
            ScoringModel.from_artifact(artifact),
            IdMap(artifact.user_ids),
            artifact.user_factors,
        )


def version_data_end(manifest: dict[str, Any]) -> float:
    """Epoch seconds of the last event a version may have trained on: its recorded
    window's end, else its load report's last event, else its creation (a version never
    saw an event logged after it was made)."""
    window = manifest.get("window") or {}
    load = manifest.get("load") or {}
    for stamp in (window.get("last_event"), load.get("last_time"), manifest.get("created")):
        if stamp:
            return parse_timestamp(stamp).timestamp()
    raise ValueError(f"version {manifest.get('version')!r} records no time of its data")


def fresh_split(
    interactions: Interactions, test_days: float, not_before: float | None = None
) -> Split:
    """A global time split with the last ``test_days`` as test, its cutoff moved later to
    ``not_before`` (the last event a compared version saw) when that is later."""
    span = interactions.time_range()
    last = span[1] if span else 0.0
    cutoff = last - test_days * SECONDS_PER_DAY
    if not_before is not None:
        # After what the versions saw (the test part starts at the cutoff): half a
        # millisecond, below the logs' precision and above float rounding at epoch scale.
        cutoff = max(cutoff, not_before + FRESH_MARGIN_SECONDS)
    return split_global_time(interactions, cutoff=float(cutoff))


def served_per_visitor(
    contender: Contender,
    split: Split,
    test: VisitorTest,
    ks: tuple[int, ...] = (10, 20),
    *,
    exclude_seen: bool = False,
    anonymous: str = "session",
    show_progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Every metric per test visitor of ``contender`` served on ``split``, and how many
    visitors each strategy answered (:func:`training.served.evaluate_visitors`' path)."""
    model = contender.model
    vectors = _vectors(contender, split.train.users[test.users])
    states = states_from_log(
        split.train, test.users, model.row_of, vectors, show_progress=show_progress
    )
    codes, used = strategy_codes(
        model,
        visitor_chain(anonymous),
        states,
        max(ks),
        IdMap(split.train.items),
        exclude_seen,
        show_progress=show_progress,
    )
    _, per_user = score_lists(codes, test, ks, model.n_items)
    return per_user, used


def _vectors(contender: Contender, visitor_ids: np.ndarray) -> list | None:
    """Each visitor's long-term vector in ``contender``, None where it has none."""
    if contender.user_factors is None:
        return None
    rows = contender.user_ids.rows(visitor_ids)
    return [contender.user_factors[row] if row >= 0 else None for row in rows]


@dataclass
class MetricComparison:
    """One metric of the two versions over the same visitors (module docstring)."""

    metric: str
    a: float
    a_interval: tuple[float, float]
    b: float
    b_interval: tuple[float, float]
    difference: float  # b − a
    difference_interval: tuple[float, float]
    wilcoxon_p: float
    b_better: int  # visitors where b scored higher
    a_better: int


@dataclass
class Comparison:
    """Two versions side by side on one fresh split."""

    a: str
    b: str
    cutoff: str
    visitors: int
    targets: int
    metrics: dict[str, MetricComparison]
    test: dict[str, Any] = field(default_factory=dict)
    strategies: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.visitors == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def to_markdown(self) -> str:
        """The side-by-side table, a line on what it was measured on."""
        lines = [
            f"Test: events from {self.cutoff} on; {self.visitors:,} visitors with "
            f"{self.targets:,} targets, the same for both. A = {self.a}, B = {self.b}.",
            "",
            "| metric | A | A 95% CI | B | B 95% CI | B − A | paired 95% CI | Wilcoxon p "
            "| visitors B better / A better |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m in self.metrics.values():
            lines.append(
                f"| {m.metric} | {m.a:.4f} | {_interval(m.a_interval)} | {m.b:.4f} "
                f"| {_interval(m.b_interval)} | {m.difference:+.4f} "
                f"| {_interval(m.difference_interval, signed=True)} | {m.wilcoxon_p:.3g} "
                f"| {m.b_better} / {m.a_better} |"
            )
        return "\n".join(lines)


def _interval(bounds: Sequence[float], signed: bool = False) -> str:
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"{fmt.format(bounds[0])} – {fmt.format(bounds[1])}"


def paired_bootstrap_interval(
    differences: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of per-visitor differences: each
    resample draws visitors, keeping both versions' values of a visitor together."""
    return bootstrap_interval(differences, samples, seed)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when no visitor differs."""
    nonzero = differences[differences != 0]
    if len(nonzero) == 0:
        return 1.0
    return float(stats.wilcoxon(nonzero).pvalue)


def compare_metric(metric: str, a: np.ndarray, b: np.ndarray, seed: int = 0) -> MetricComparison:
    """One metric's side-by-side figures from per-visitor values of the same visitors."""
    diff = b - a
    return MetricComparison(
        metric=metric,
        a=float(a.mean()) if len(a) else 0.0,
        a_interval=bootstrap_interval(a, BOOTSTRAP_SAMPLES, seed),
        b=float(b.mean()) if len(b) else 0.0,
        b_interval=bootstrap_interval(b, BOOTSTRAP_SAMPLES, seed),
        difference=float(diff.mean()) if len(diff) else 0.0,
        difference_interval=paired_bootstrap_interval(diff, seed=seed),
        wilcoxon_p=wilcoxon_p(diff),
        b_better=int(np.count_nonzero(diff > 0)),
        a_better=int(np.count_nonzero(diff < 0)),
    )


def compare_served(
    a: Contender,
    b: Contender,
    split: Split,
    *,
    metrics: Sequence[str] = METRICS,
    positives: Sequence[str] | None = POSITIVES,
    exclude_seen: bool = False,
    anonymous: str = "session",
    max_visitors: int | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> Comparison:
    """``a`` and ``b`` served to the same test visitors of ``split`` (module docstring);
    with ``max_visitors``, the same fixed random sample of them for both."""
    test = visitor_test(split, positives, exclude_seen)
    if max_visitors is not None and len(test) > max_visitors:
        test.report["sampled_from"] = len(test)
        rng = np.random.default_rng(seed)
        test = test.subset(np.sort(rng.choice(len(test), max_visitors, replace=False)))
    ks = tuple(sorted({int(m.split("@")[1]) for m in metrics}))
    per_visitor, strategies = {}, {}
    for side, contender in (("a", a), ("b", b)):
        per_visitor[side], strategies[side] = served_per_visitor(
            contender,
            split,
            test,
            ks,
            exclude_seen=exclude_seen,
            anonymous=anonymous,
            show_progress=show_progress,
        )
    return Comparison(
        a=a.name,
        b=b.name,
        cutoff=split.report.cutoff or "",
        visitors=len(test),
        targets=int(test.targets.nnz),
        metrics={
            m: compare_metric(m, per_visitor["a"][m], per_visitor["b"][m], seed) for m in metrics
        },
        test=test.report,
        strategies=strategies,
    )
