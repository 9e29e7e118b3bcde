"""Retraining as a loop: the exporter's logs to a published version, behind a quality gate.

One run (:func:`retrain_once`):

1. Read the log folder and keep the last ``window_days`` up to its newest event.
2. The fresh split (:func:`training.compare.fresh_split`): the last ``test_days``, its
   cutoff moved to just after the last event the current version trained on, so neither
   version has seen a test event. Fewer than ``min_test_visitors`` test visitors: the
   run is *skipped* (nothing trained, nothing published).
3. Train through :func:`training.pipeline.train` with that cutoff: tune the blend,
   evaluate on the train part, fit the shipped version on the whole window. The
   evaluation's ALS fit warm-starts from the current version's factors where it can (same
   model, same width: :class:`training.pipeline.Factors`), with a fifth of the
   iterations, the start ``recsvc train`` already makes from its validation fit
   (training/README.md measured 3 of 15 warm iterations scoring as 5 of 15, within the
   noise of a cold fit); ``warm=False`` starts it as ``recsvc train`` does.
4. The gate: the candidate (the evaluation fit, served as the version would serve it)
   and the current version (its artifact, as the service loads it) served to the same
   test visitors (:func:`training.compare.compare_served`). Published only when the
   paired 95% interval of *candidate − current* on ``metric`` reaches above
   ``-tolerance``: not worse beyond the interval. With no current version, any
   non-empty evaluation publishes.
5. The version is saved with the gate's figures in its manifest (``gate``), published
   and made current when it passed, and the decision recorded in the registry
   (:mod:`recsvc.registry.decisions`) whatever happened, errors included: a failed or
   empty evaluation never publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.core.events import format_timestamp
from recsvc.registry.decisions import Decision, record_decision
from recsvc.scoring.artifact import ModelArtifact
from recsvc.scoring.blend import BlendParams
from recsvc.scoring.model import ServingParams
from recsvc.store.models import ModelStore
from training.compare import (
    Comparison,
    Contender,
    compare_served,
    fresh_split,
    served_per_visitor,
    version_data_end,
)
from training.evaluate import write_report
from training.interactions import Interactions
from training.loaders import load_events
from training.matrix import IdMap
from training.pipeline import (
    Factors,
    TrainOptions,
    TrainResult,
    make_model,
    served_session_model,
    train,
)
from training.served import POSITIVES, bootstrap_interval, scoring_model, visitor_test
from training.splits import SECONDS_PER_DAY, Split
from training.weights import WeightConfig

log = logging.getLogger(__name__)


@dataclass
class RetrainOptions:
    """What one run reads, trains and requires (module docstring)."""

    events: Path
    models_dir: Path
    fmt: str = "auto"
    window_days: float = 30.0
    test_days: float = 7.0
    min_test_visitors: int = 20
    metric: str = "ndcg@10"
    # How far below the current version the candidate's interval may start and still
    # publish; 0: the interval of the difference must reach 0.
    tolerance: float = 0.0
    warm: bool = True
    keep: int = 3
    test_visitors: int | None = 2000
    train: TrainOptions = field(default_factory=TrainOptions)


class GateError(Exception):
    """A run that cannot be evaluated: recorded as failed, nothing published."""


def retrain_once(
    options: RetrainOptions,
    store: ModelStore,
    config: WeightConfig,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Decision:
    """One run of the loop; the decision is recorded before it is returned (an error
    is recorded as ``failed`` and raised again)."""
    started = format_timestamp(now())
    try:
        decision = _run(options, store, config, started)
    except Exception as error:
        decision = Decision(started, "failed", f"{type(error).__name__}: {error}")
        record_decision(options.models_dir, decision)
        raise
    record_decision(options.models_dir, decision)
    return decision


def _run(
    options: RetrainOptions, store: ModelStore, config: WeightConfig, started: str
) -> Decision:
    current = _current_artifact(store, options.models_dir)
    current_name = current.version if current else None
    window = load_window(options.events, options.fmt, options.window_days)
    if len(window) == 0:
        return Decision(started, "skipped", "no events in the window", current=current_name)
    split = fresh_split(
        window, options.test_days, version_data_end(current.manifest) if current else None
    )
    visitors = len(visitor_test(split, POSITIVES, options.train.exclude_seen))
    if visitors < options.min_test_visitors:
        reason = (
            f"{visitors} test visitors from {split.report.cutoff} on (fewer than "
            f"{options.min_test_visitors}): too little fresh data since the current version"
        )
        return Decision(started, "skipped", reason, current=current_name)
    result = _train_candidate(window, split, config, options, current)
    figures, passed, reason = _judge(result, split, options, current)
    figures["window"] = _window_figures(window, options.window_days)
    artifact = _save(result, figures, passed, reason, options.models_dir)
    if passed:
        store.publish(artifact, make_current=True, progress=options.train.show_progress)
        store.prune(options.keep)
    outcome = "published" if passed else "refused"
    return Decision(started, outcome, reason, artifact.version, current_name, figures)


def _judge(
    result: TrainResult, split: Split, options: RetrainOptions, current: ModelArtifact | None
) -> tuple[dict[str, Any], bool, str]:
    """The gate's figures, whether the candidate passes, and why (module docstring)."""
    candidate = _candidate_contender(result, split, options.train)
    if current is None:
        gate = _alone(candidate, split, options)
        return {"gate": gate}, gate["visitors"] > 0, "no current version to compare with"
    comparison = _compare(Contender.from_artifact(current), candidate, split, options)
    gate, passed, reason = _gate(comparison, options)
    figures = {
        "gate": gate,
        "comparison": comparison.to_dict(),
        "comparison_markdown": comparison.to_markdown(),
    }
    return figures, passed, reason


def _save(
    result: TrainResult, figures: dict[str, Any], passed: bool, reason: str, models_dir: Path
) -> ModelArtifact:
    """The candidate in the registry, passed or not, its window and gate in its manifest."""
    artifact = result.artifact
    artifact.manifest["window"] = figures["window"]
    artifact.manifest["gate"] = {**figures["gate"], "passed": passed, "reason": reason}
    folder = artifact.save(models_dir)
    if result.report is not None:
        write_report(result.report, folder / "report")
    return artifact


def _current_artifact(store: ModelStore, models_dir: Path) -> ModelArtifact | None:
    """The current version's artifact from the local registry; a current version that is
    not there cannot be compared with, so the run fails rather than publish blind."""
    version = store.current_version()
    if version is None:
        return None
    folder = Path(models_dir) / version
    if not (folder / "manifest.json").exists():
        raise GateError(
            f"the current version {version} is not in {models_dir}: the gate needs its "
            "artifact (run retrain with the --models-dir it was trained into)"
        )
    return ModelArtifact.load(folder)


def load_window(path: Path, fmt: str, window_days: float) -> Interactions:
    """The log's events of the last ``window_days`` up to its newest event."""
    interactions, report = load_events(path, fmt)
    log.info("loaded %s of %s rows from %s", f"{report.kept:,}", f"{report.rows:,}", path)
    span = interactions.time_range()
    if span is None:
        return interactions
    return interactions.subset(interactions.time >= span[1] - window_days * SECONDS_PER_DAY)


def _window_figures(window: Interactions, window_days: float) -> dict[str, Any]:
    first, last = window.time_range() or (0.0, 0.0)
    return {
        "days": window_days,
        "first_event": format_timestamp(datetime.fromtimestamp(first, UTC)),
        "last_event": format_timestamp(datetime.fromtimestamp(last, UTC)),
        "events": len(window),
    }


def _train_candidate(
    window: Interactions,
    split: Split,
    config: WeightConfig,
    options: RetrainOptions,
    current: ModelArtifact | None,
) -> TrainResult:
    """:func:`training.pipeline.train` with the fresh split's cutoff as its test period."""
    last = window.time_range()[1]
    # The pipeline cuts the last test_days: these land on the fresh split's cutoff.
    train_options = replace(
        options.train,
        test_days=(last - split.cutoff) / SECONDS_PER_DAY,
        test_visitors=options.test_visitors,
    )
    warm_from = _warm_factors(current, train_options) if options.warm else None
    log.info("candidate warm-started from %s", current.version if warm_from else "nothing")
    result = train(window, config, train_options, warm_from)
    result.artifact.manifest["warm_start"] = current.version if warm_from else None
    if result.evaluated is None:
        raise GateError("the candidate was not evaluated (empty test period)")
    return result


def _warm_factors(current: ModelArtifact | None, options: TrainOptions) -> Factors | None:
    """The current version's factors, where the candidate can start from them: the same
    model (ALS: implicit's fit takes a start) and the same number of factors."""
    if current is None or options.model != "als" or current.manifest.get("model") != "als":
        return None
    if current.factors != make_model(options.model, options.params).params().get("factors"):
        return None
    return Factors(
        IdMap(current.user_ids), current.user_factors, IdMap(current.item_ids), current.item_factors
    )


def _candidate_contender(result: TrainResult, split: Split, options: TrainOptions) -> Contender:
    """The candidate as it would serve, fit on the fresh split's train part: the
    evaluation's model, its session model and its tuned blend (as
    :func:`training.pipeline.evaluate_split` builds the served chain it reports)."""
    fitted = result.evaluated
    blend = result.tuning.params if result.tuning else BlendParams()
    model = scoring_model(
        result.artifact.version,
        fitted.matrix,
        fitted.model.item_factors,
        fitted.model.params(),
        served_session_model(options, split.train, fitted.matrix),
        ServingParams(blend=blend),
    )
    return Contender(result.artifact.version, model, fitted.matrix.users, fitted.model.user_factors)


def _compare(
    current: Contender, candidate: Contender, split: Split, options: RetrainOptions
) -> Comparison:
    return compare_served(
        current,
        candidate,
        split,
        exclude_seen=options.train.exclude_seen,
        anonymous=options.train.anonymous_strategy,
        max_visitors=options.test_visitors,
        seed=options.train.seed,
        show_progress=options.train.show_progress,
    )


def _gate(comparison: Comparison, options: RetrainOptions) -> tuple[dict[str, Any], bool, str]:
    """The gate's figures, whether it passed, and why (module docstring, step 4)."""
    m = comparison.metrics[options.metric]
    gate = {
        "metric": options.metric,
        "candidate": m.b,
        "candidate_interval": m.b_interval,
        "current": m.a,
        "current_interval": m.a_interval,
        "difference": m.difference,
        "difference_interval": m.difference_interval,
        "wilcoxon_p": m.wilcoxon_p,
        "visitors": comparison.visitors,
        "targets": comparison.targets,
        "cutoff": comparison.cutoff,
        "tolerance": options.tolerance,
    }
    high = m.difference_interval[1]
    if comparison.empty:
        return gate, False, "no test visitor was scored"
    if high < -options.tolerance:
        return gate, False, "worse than the current version beyond the 95% interval"
    return gate, True, "not worse than the current version beyond the 95% interval"


def _alone(candidate: Contender, split: Split, options: RetrainOptions) -> dict[str, Any]:
    """The first version's figures, with nothing to compare them with."""
    test = visitor_test(split, POSITIVES, options.train.exclude_seen)
    if options.test_visitors is not None and len(test) > options.test_visitors:
        rng = np.random.default_rng(options.train.seed)
        test = test.subset(np.sort(rng.choice(len(test), options.test_visitors, replace=False)))
    k = int(options.metric.split("@")[1])
    per_visitor, _ = served_per_visitor(
        candidate,
        split,
        test,
        (k,),
        exclude_seen=options.train.exclude_seen,
        anonymous=options.train.anonymous_strategy,
    )
    values = per_visitor[options.metric]
    return {
        "metric": options.metric,
        "candidate": float(values.mean()) if len(values) else 0.0,
        "candidate_interval": bootstrap_interval(values),
        "visitors": len(test),
        "targets": int(test.targets.nnz),
        "cutoff": split.report.cutoff,
    }
