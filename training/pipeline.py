"""``recsvc train`` end to end: tune the served blend, evaluate what is served, fit on
everything, write a versioned artifact.

1. With ``search``, the factor model's hyperparameters are drawn at random and scored on
   a *validation* split carved from the end of the train part (never the test part); the
   best is kept and every trial recorded.
2. The known-visitor blend (:mod:`recsvc.scoring.blend`) is tuned on that validation
   split: the factor model and the session model fit on what precedes it, the validation
   visitors' states rebuilt as the service's profile holds them, the weights chosen by
   validation NDCG@10 (:mod:`training.blend_tuning`).
3. The served chain, with the tuned weights, is evaluated beside the baselines on a global
   time split (the last ``test_days``), every test visitor counted
   (:mod:`training.served`); the factor model is warm-started from step 2's.
4. The shipped model is fit on the whole log (warm-started from step 3's), and written with
   its popular and trending lists, the top-50 similar items per item, the session model
   (:func:`training.sessions.fit_served_sessions`) and a manifest naming the parameters,
   the serving parameters (the tuned blend), the data fingerprint, the row counts, the
   metrics and the libraries.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.core.events import format_timestamp
from recsvc.scoring.artifact import ModelArtifact, session_arrays
from recsvc.scoring.blend import BlendParams
from recsvc.scoring.model import ScoringModel, ServingParams
from recsvc.scoring.session_model import SessionModel, tuned_blend
from training.blend_tuning import Tuning, tune_blend
from training.evaluate import Report, evaluate
from training.folds import make_fold
from training.ground_truth import score_ground_truth
from training.interactions import Interactions
from training.matrix import IdMap, InteractionMatrix, build_matrix
from training.pooling import pool_reports
from training.scorers import (
    ALSScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    Scorer,
    TrendingScorer,
)
from training.served import (
    POSITIVES,
    SERVED,
    VisitorTest,
    evaluate_visitors,
    scoring_model,
    visitor_states,
    visitor_test,
)
from training.sessions import fit_served_sessions
from training.splits import Split, SplitSpec
from training.sufficiency import check_test_sets
from training.threads import single_threaded_blas
from training.weights import WeightConfig

log = logging.getLogger(__name__)

# The manifest's headline figures per model: the contract load tests and release scripts
# read (``coverage`` is catalog coverage at 10).
HEADLINE = {
    "ndcg@10": "ndcg@10",
    "recall@20": "recall@20",
    "precision@10": "precision@10",
    "map@10": "map@10",
    "coverage": "coverage@10",
}
LIST_LENGTH = 500
SIMILAR_ITEMS = 50
# Ranges the random search draws from (log-uniform where the scale matters).
SEARCH_SPACE = {
    "als": {
        "factors": [32, 64, 128],
        "regularization": (0.01, 10.0),
        "alpha": (1.0, 100.0),
        "iterations": [10, 15, 20],
    },
    "bpr": {
        "factors": [32, 64, 128],
        "learning_rate": (0.005, 0.1),
        "regularization": (0.0005, 0.05),
        "iterations": [50, 100, 200],
    },
}


@dataclass
class TrainOptions:
    model: str = "als"
    # A generated store's ground_truth.jsonl: the shipped model is also scored on it.
    ground_truth: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    test_days: float = 7.0
    search: int = 0
    # Compared beside the model. The other factor model (BPR beside ALS, or ALS beside BPR)
    # doubles the evaluation's cost, so it is opt-in: --compare als,bpr,itemknn,...
    compare: tuple[str, ...] = ("itemknn", "popular", "trending")
    # A refit of ALS starts from the evaluation model's factors and runs this share of
    # the iterations (at least 3): the train part is most of the log, so it is near.
    # 3 of 15 score as 5 of 15 did (generator ground truth NDCG@10 0.2750 and 0.2745;
    # RetailRocket per-visitor 0.0222 and 0.0214) in 60% of the time. 0: a cold refit.
    warm_start_share: float = 1 / 5
    seed: int = 42
    show_progress: bool = True
    # Fit the session model (steps 2 to 4); without it anonymous visitors get ALS fold-in.
    sessions: bool = True
    # Evaluate with every visitor's own items excluded (discovery) rather than as served
    # by default, where they may come back.
    exclude_seen: bool = False
    # What anonymous test visitors are served (RECSVC_ANONYMOUS_STRATEGY).
    anonymous_strategy: str = "session"
    # Validation visitors the blend is tuned on, and test visitors every model is scored
    # on, at most (a fixed random sample beyond; None: all). Replaying a visitor's log
    # through the profile and asking the served chain costs a millisecond or more each:
    # the served chain's evaluation of the training benchmark's 8,747 test visitors took
    # 26 s, against 4 s for the final fit (a loaded machine).
    validation_visitors: int | None = 1000
    test_visitors: int | None = 2000
    # The evaluation's split (None: the global time split of the last test_days), the
    # event types that are test targets (None: every type), whether to evaluate at all,
    # and the test users and targets below which the evaluation is refused
    # (training.sufficiency; 0: never refused).
    split: SplitSpec | None = None
    target_events: tuple[str, ...] | None = POSITIVES
    evaluate: bool = True
    min_test_users: int = 0
    min_test_targets: int = 0

    def split_spec(self) -> SplitSpec:
        """The evaluation's split: ``split``, else the time split of ``test_days``."""
        return self.split or SplitSpec("time", test_days=self.test_days)

    def evaluates(self) -> bool:
        """Whether ``train`` evaluates: asked to, and a time split has a test period."""
        spec = self.split_spec()
        return self.evaluate and (spec.method != "time" or spec.test_days > 0)


@dataclass
class TrainResult:
    artifact: ModelArtifact
    report: Report | None
    trials: list[dict[str, Any]]
    seconds: dict[str, float]
    # The factor model evaluated on the train part and the blend tuned for it: what
    # training.retrain serves to the gate's test visitors (None without an evaluation).
    evaluated: Fitted | None = None
    tuning: Tuning | None = None


def make_model(name: str, params: dict[str, Any]) -> Scorer:
    """A factor model by name: ``als``, ``spark_als`` (ALS fitted by Spark MLlib) or
    ``bpr``."""
    if name == "als":
        return ALSScorer(**params)
    if name == "spark_als":
        from training.spark_als import SparkALSScorer  # deferred: pyspark is optional

        return SparkALSScorer(**params)
    if name == "bpr":
        return BPRScorer(**params)
    raise ValueError(f"unknown model {name!r}: choose als, spark_als or bpr")


def comparison_scorers(options: TrainOptions, params: dict[str, Any]) -> dict[str, Scorer]:
    """Everything the report compares: the factor models and the baselines."""
    factories = {
        "als": lambda: make_model("als", params if options.model == "als" else {}),
        "bpr": lambda: make_model("bpr", params if options.model == "bpr" else {}),
        "spark_als": lambda: make_model(
            "spark_als", params if options.model == "spark_als" else {}
        ),
        "itemknn": lambda: ItemKNNScorer(neighbours=100, similarity="bm25"),
        "popular": PopularScorer,
        "trending": TrendingScorer,
    }
    names = dict.fromkeys([options.model, *options.compare])
    return {name: factories[name]() for name in names}


def train(
    interactions: Interactions,
    config: WeightConfig,
    options: TrainOptions,
    warm_from: Fitted | Factors | None = None,
) -> TrainResult:
    """Tune, evaluate, fit on everything and build the artifact (module docstring).
    ``warm_from`` (factors that saw nothing of the test period, such as the current
    version's) warm-starts the evaluation's factor model instead of step 2's."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    params = dict(options.params)
    if options.search:
        params, trials = random_search(interactions, config, options)
        seconds["search"] = time.perf_counter() - started
    report, evaluated, tuning = None, None, None
    if options.evaluates():
        report, evaluated, tuning = tune_and_evaluate(
            interactions, config, options, params, warm_from=warm_from
        )
        seconds |= report.data.pop("seconds")
    mark = time.perf_counter()
    matrix = build_matrix(interactions, config)
    model = warm_model(options, params, evaluated, matrix)
    model.fit(matrix, show_progress=options.show_progress)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    artifact = build_artifact(model, matrix, options, params, report, trials)
    artifact.manifest["evaluated"] = report is not None
    artifact.manifest["split"] = options.split_spec().to_dict() if report else None
    artifact.manifest["intervals"] = metric_intervals(report)
    blend = tuning.params if tuning else BlendParams()
    artifact.manifest["serving"] = ServingParams(blend=blend).to_dict()
    artifact.manifest["blend_tuning"] = tuning.to_dict() if tuning else None
    seconds["artifact"] = time.perf_counter() - mark
    mark = time.perf_counter()
    # The session fit (scipy and numpy, mostly outside the GIL) runs beside the
    # ground-truth scoring: about a second less of recsvc train on 1M interactions.
    with ThreadPoolExecutor(max_workers=1) as background:
        sessions = None
        if options.sessions:
            sessions = background.submit(add_session_model, artifact, interactions)
        if options.ground_truth:
            popular = PopularScorer().fit(matrix)
            scored = score_ground_truth(
                {options.model: model, "popular": popular}, matrix, options.ground_truth
            )
            artifact.manifest["ground_truth"] = scored
        if sessions is not None:
            sessions.result()
            seconds["sessions"] = time.perf_counter() - mark
    artifact.manifest["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return TrainResult(artifact, report, trials, seconds, evaluated, tuning)


def tune_and_evaluate(
    interactions: Interactions,
    config: WeightConfig,
    options: TrainOptions,
    params: dict[str, Any],
    baselines: Mapping[str, Scorer] | None = None,
    warm_from: Fitted | Factors | None = None,
) -> tuple[Report, Fitted, Tuning | None]:
    """Steps 2 and 3 on the options' split (a global time split of the last
    ``test_days`` unless ``options.split`` names another): the report (its
    ``data["seconds"]`` the time of each step), the evaluated factor model and the
    tuning (None when the validation period had no visitor). ``baselines`` (unfitted)
    replace :func:`comparison_scorers`' beside the factor model; ``warm_from``, when
    given, warm-starts the evaluated model instead of step 2's fit (a version that saw
    nothing of the test period: the retrain gate's current one).

    A k-fold split evaluates every fold with the blend tuned once, on what no fold tests
    (:meth:`SplitSpec.before_test`), and pools the folds' test users into one report
    (:mod:`training.pooling`).
    Raises :class:`training.sufficiency.EvaluationRefused` before fitting anything when
    the split leaves fewer test users or targets than the options' minimums."""
    splits = options.split_spec().make(interactions, options.target_events)
    check_test_sets(
        splits,
        options.split_spec(),
        options.target_events,
        exclude_seen=options.exclude_seen,
        min_users=options.min_test_users,
        min_targets=options.min_test_targets,
    )
    mark = time.perf_counter()
    before_test = options.split_spec().before_test(interactions, options.target_events)
    tuning, tuned_fit = tune_on_validation(before_test, config, options, params)
    seconds = {"tune_blend": time.perf_counter() - mark}
    mark = time.perf_counter()
    serving = ServingParams(blend=tuning.params if tuning else BlendParams())
    reports = []
    for split in splits:
        report, evaluated = evaluate_split(
            split, config, options, params, serving, warm_from or tuned_fit, baselines
        )
        reports.append(report)
    report = pool_reports(reports)
    seconds["evaluate"] = time.perf_counter() - mark
    report.data["seconds"] = seconds
    report.data["blend_tuning"] = tuning.to_dict() if tuning else None
    return report, evaluated, tuning


@dataclass
class Fitted:
    """A factor model fit on a part of the log, with that part's matrix."""

    model: Scorer
    matrix: InteractionMatrix


@dataclass
class Factors:
    """Factor rows and their ids: what a warm start carries over (from a :class:`Fitted`
    or from a version in the registry)."""

    users: IdMap
    user_factors: np.ndarray
    items: IdMap
    item_factors: np.ndarray

    @classmethod
    def of(cls, fitted: Fitted) -> Factors:
        model = fitted.model
        return cls(fitted.matrix.users, model.user_factors, fitted.matrix.items, model.item_factors)


def fit_factor_model(
    options: TrainOptions,
    params: dict[str, Any],
    matrix: InteractionMatrix,
    warm_from: Fitted | Factors | None = None,
) -> Fitted:
    """The factor model fit on ``matrix``, warm-started from ``warm_from`` when given."""
    model = warm_model(options, params, warm_from, matrix)
    model.fit(matrix, show_progress=options.show_progress)
    return Fitted(model, matrix)


def served_session_model(
    options: TrainOptions, interactions: Interactions, matrix: InteractionMatrix
) -> SessionModel | None:
    """The session model a version fit on ``matrix`` would ship (None when off)."""
    if not options.sessions:
        return None
    item_ids = matrix.items.ids(np.arange(matrix.shape[1]))
    return fit_served_sessions(interactions, item_ids, tuned_blend())[0]


def tune_on_validation(
    before_test: Interactions,
    config: WeightConfig,
    options: TrainOptions,
    params: dict[str, Any],
) -> tuple[Tuning | None, Fitted]:
    """Step 2: the blend's weights chosen on the last ``test_days`` before the test
    period, the models fit on what precedes them. Also returns that factor model, to
    warm-start the evaluation's. No tuning (None) when the validation period has no
    visitor to score."""
    split = options.split_spec().validation().make(before_test, options.target_events)[0]
    matrix = build_matrix(split.train, config, reference_time=split.reference_time)
    fitted = fit_factor_model(options, params, matrix)
    test = visitor_test(split, options.target_events)
    if len(test) == 0:
        return None, fitted
    if options.validation_visitors is not None and len(test) > options.validation_visitors:
        rng = np.random.default_rng(options.seed)
        test = test.subset(np.sort(rng.choice(len(test), options.validation_visitors, False)))
    session = served_session_model(options, split.train, matrix)
    model = scoring_model(
        "validation",
        matrix,
        fitted.model.item_factors,
        fitted.model.params(),
        session,
        ServingParams(),
    )
    states = visitor_states(split, test, model, matrix, fitted.model.user_factors)
    targets = _target_rows(test, split, model)
    tuning = tune_blend(model, states, targets, test.relevant, show_progress=options.show_progress)
    log.info("blend tuned on %d validation visitors: %s", len(test), tuning.params)
    return tuning, fitted


def _target_rows(test: VisitorTest, split: Split, model: ScoringModel) -> list[set[int]]:
    """Each test visitor's targets as the model's item rows (items it lacks left out)."""
    rows = IdMap(np.asarray(model.item_ids)).rows(split.train.items)  # log code -> model row
    return [
        {int(r) for r in rows[test.targets.indices[lo:hi]] if r >= 0}
        for lo, hi in zip(test.targets.indptr[:-1], test.targets.indptr[1:], strict=True)
    ]


def evaluate_split(
    split: Split,
    config: WeightConfig,
    options: TrainOptions,
    params: dict[str, Any],
    serving: ServingParams,
    warm_from: Fitted | Factors | None = None,
    baselines: Mapping[str, Scorer] | None = None,
) -> tuple[Report, Fitted]:
    """Step 3: the served chain and the baselines on the last ``test_days``; also returns
    the fitted factor model, to warm-start the final fit."""
    matrix = build_matrix(split.train, config, reference_time=split.reference_time)
    fit_seconds: dict[str, float] = {}
    mark = time.perf_counter()
    fitted = fit_factor_model(options, params, matrix, warm_from)
    fit_seconds[options.model] = time.perf_counter() - mark
    scorers = {options.model: fitted.model}
    others = comparison_scorers(options, params) if baselines is None else dict(baselines)
    scorers |= {name: scorer for name, scorer in others.items() if name != options.model}
    for name, scorer in scorers.items():
        if name != options.model:
            mark = time.perf_counter()
            scorer.fit(matrix, show_progress=options.show_progress)
            fit_seconds[name] = time.perf_counter() - mark
    mark = time.perf_counter()
    session = served_session_model(options, split.train, matrix)
    served = scoring_model(
        "evaluation", matrix, fitted.model.item_factors, fitted.model.params(), session, serving
    )
    fit_seconds[SERVED] = fit_seconds[options.model] + time.perf_counter() - mark
    report = evaluate_visitors(
        split,
        matrix,
        scorers,
        served,
        fitted.model.user_factors,
        exclude_seen=options.exclude_seen,
        positives=options.target_events,
        anonymous=options.anonymous_strategy,
        max_visitors=options.test_visitors,
        seed=options.seed,
        fit_seconds=fit_seconds,
        show_progress=options.show_progress,
    )
    return report, fitted


def warm_model(
    options: TrainOptions,
    params: dict[str, Any],
    previous: Fitted | Factors | None,
    matrix: InteractionMatrix,
) -> Scorer:
    """The factor model to fit on ``matrix``: for ALS after an earlier fit, warm-started
    from its factors (rows matched by id; new users and items start small and random, as
    implicit starts them) with ``warm_start_share`` of the iterations."""
    model = make_model(options.model, params)
    if (
        not isinstance(model, ALSScorer)
        or not model.warm_starts
        or previous is None
        or options.warm_start_share <= 0
    ):
        return model
    rng = np.random.default_rng(options.seed)
    old = Factors.of(previous) if isinstance(previous, Fitted) else previous
    users = _carry_rows(old.user_factors, old.users, matrix.users, rng)
    items = _carry_rows(old.item_factors, old.items, matrix.items, rng)
    model.iterations = max(3, round(model.iterations * options.warm_start_share))
    return model.warm_start(users, items)


def _carry_rows(factors: np.ndarray, old_ids, new_ids, rng: np.random.Generator) -> np.ndarray:
    """Factors for ``new_ids``' rows: the old row's where the id is known, else small
    random values (implicit's own initialisation scale)."""
    n_new = len(new_ids)
    out = rng.random((n_new, factors.shape[1]), dtype=np.float32) * np.float32(0.01)
    old_rows = old_ids.rows(new_ids.labels)
    known = old_rows >= 0
    out[known] = factors[old_rows[known]]
    return out


def random_search(
    interactions: Interactions, config: WeightConfig, options: TrainOptions
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Random search on a validation split carved from the train part (step 2).

    The test period is cut off first and never looked at; the last ``test_days`` of what
    remains validate each trial. Returns the best parameters (by NDCG@10) and every trial.
    """
    spec = options.split_spec()
    before_test = spec.before_test(interactions, options.target_events)
    validation = make_fold(
        spec.validation().make(before_test, options.target_events)[0],
        config,
        positives=options.target_events,
    )
    rng = np.random.default_rng(options.seed)
    trials = []
    for trial in range(options.search):
        params = {**_draw(SEARCH_SPACE[options.model], rng), **options.params}
        scorer = make_model(options.model, params)
        report = evaluate({options.model: scorer}, validation, (10, 20))
        metrics = report.models[0].metrics
        trials.append(
            {
                "trial": trial,
                "params": params,
                "ndcg@10": metrics["ndcg@10"],
                "recall@20": metrics["recall@20"],
            }
        )
        log.info("trial %d: %s ndcg@10 %.4f", trial, params, metrics["ndcg@10"])
    best = max(trials, key=lambda t: t["ndcg@10"])
    return best["params"], trials


def _draw(space: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, choices in space.items():
        if isinstance(choices, list):
            params[name] = choices[int(rng.integers(len(choices)))]
        else:
            low, high = choices
            params[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return params


def build_artifact(
    model: Scorer,
    matrix: InteractionMatrix,
    options: TrainOptions,
    params: dict[str, Any],
    report: Report | None,
    trials: list[dict[str, Any]],
    fingerprint: str | None = None,
) -> ModelArtifact:
    """The version to ship (step 3). ``fingerprint`` defaults to the matrix's events'
    (:func:`data_fingerprint`)."""
    popular = PopularScorer().fit(matrix).item_scores
    trending = TrendingScorer().fit(matrix).item_scores
    similar_items, similar_scores = similar_by_factors(model.item_factors)
    created = datetime.now(UTC)
    fingerprint = fingerprint or data_fingerprint(matrix.interactions)
    version = f"{created:%Y%m%d-%H%M%S}-{options.model}-{fingerprint[:8]}"
    manifest = {
        "version": version,
        "created": format_timestamp(created),
        "model": options.model,
        "params": model.params(),
        "weights": matrix.config.to_dict(),
        "data": {"fingerprint": fingerprint, **matrix.report.to_dict()},
        "metrics": headline_metrics(report),
        "evaluation": report.to_dict() if report else None,
        "search": {"trials": trials, "space": SEARCH_SPACE.get(options.model)} if trials else None,
        "libraries": library_versions(),
    }
    return ModelArtifact(
        version=version,
        manifest=manifest,
        item_ids=matrix.items.ids(np.arange(matrix.shape[1])),
        user_ids=matrix.users.ids(np.arange(matrix.shape[0])),
        item_factors=model.item_factors,
        user_factors=model.user_factors,
        popular=_best(popular, LIST_LENGTH),
        trending=_best(trending, LIST_LENGTH),
        similar_items=similar_items,
        similar_scores=similar_scores,
    )


def add_session_model(artifact: ModelArtifact, interactions: Interactions) -> None:
    """Fit the served session blend (step 4) and put it in ``artifact``; the manifest's
    ``session`` names its configuration and the sessions it learnt from."""
    config = tuned_blend()
    model, report = fit_served_sessions(interactions, artifact.item_ids, config)
    artifact.manifest["session"] = {"config": config.to_dict(), **report} if model else None
    artifact.session = session_arrays(model) if model else {}


def headline_metrics(report: Report | None) -> dict[str, dict[str, float]]:
    """``{model: {"ndcg@10": ..., "recall@20": ..., ...}}`` from an evaluation report."""
    if report is None:
        return {}
    return {
        result.name: {key: round(result.metrics[name], 6) for key, name in HEADLINE.items()}
        for result in report.models
    }


def metric_intervals(report: Report | None) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {"ndcg@10": {"value", "low", "high", "users"}, "recall@20": {...}}}``:
    the headline metrics that carry a bootstrap 95% interval, with the number of test
    users behind each (the manifest's ``intervals``, beside the ``metrics`` contract)."""
    if report is None:
        return {}
    users = int(report.fold.get("users", 0))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for result in report.models:
        out[result.name] = {
            key: {
                "value": round(result.metrics[key], 6),
                "low": round(result.metrics[f"{key}_low"], 6),
                "high": round(result.metrics[f"{key}_high"], 6),
                "users": users,
            }
            for key in ("ndcg@10", "recall@20")
            if f"{key}_low" in result.metrics
        }
    return out


def similar_by_factors(
    item_factors: np.ndarray, k: int = SIMILAR_ITEMS
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``k`` nearest items by cosine of factors, itself excluded.

    Returns (n_items, k) int32 rows (-1 padded) and float32 cosines. Quadratic in the
    catalog: about 1.4 s for 20,000 items here, so ~35 s at 100,000.
    """
    from implicit.cpu.topk import topk

    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    unit = np.ascontiguousarray(item_factors / np.maximum(norms, 1e-12), dtype=np.float32)
    n_items = len(unit)
    width = min(k + 1, n_items)
    with single_threaded_blas():
        ids, scores = topk(unit, unit, width)
    # Move each row's own item (at most one per row) to the end, keep the first k.
    is_self = ids == np.arange(n_items)[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)[:, :k]
    invalid = (ids < 0) | (ids == np.arange(n_items)[:, None])
    ids = np.where(invalid, -1, ids).astype(np.int32)
    scores = np.where(invalid, 0.0, scores).astype(np.float32)
    if ids.shape[1] < k:  # tiny catalogs: pad to the artifact's fixed width
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)))
    return ids, scores


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")[:n]
    return order[scores[order] > 0].astype(np.int32)


def data_fingerprint(interactions: Interactions) -> str:
    """SHA-256 over the interactions' ids, items, times and events: same data, same print."""
    digest = hashlib.sha256()
    for array in (interactions.user, interactions.item, interactions.time, interactions.event):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\n".join(interactions.items.tolist()).encode())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    names = ("recsvc", "implicit", "numpy", "scipy")
    return {name: importlib.metadata.version(name) for name in names}
