"""``recsvc train`` end to end: evaluate on a time split, optionally tune, fit on everything,
write a versioned artifact.

1. The model and its baselines are evaluated on a global time split (the last
   ``test_days`` of the log), already-seen items excluded the same way for all.
2. With ``search``, hyperparameters are drawn at random and scored on a *validation* split
   carved from the end of the train part (never the test part); the best is kept and every
   trial recorded.
3. The shipped model is fit on the whole log with the chosen parameters, and written with
   its popular and trending lists, the top-50 similar items per item, and a manifest naming
   the parameters, the data fingerprint, the row counts, the metrics and the libraries.
4. The session model anonymous visitors are served from (:mod:`training.session_artifact`)
   is fit on the log's view sessions over the shipped model's items.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.core.events import format_timestamp
from recsvc.registry.artifact import ModelArtifact
from training.evaluate import Report, evaluate
from training.folds import make_fold
from training.ground_truth import score_ground_truth
from training.interactions import Interactions
from training.matrix import InteractionMatrix, build_matrix
from training.scorers import (
    ALSScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    Scorer,
    TrendingScorer,
)
from training.session_artifact import fit_served_sessions, session_arrays
from training.sessions import tuned_blend
from training.splits import split_global_time
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
    # Fit the session model (step 4); without it anonymous visitors get ALS fold-in.
    sessions: bool = True


@dataclass
class TrainResult:
    artifact: ModelArtifact
    report: Report | None
    trials: list[dict[str, Any]]
    seconds: dict[str, float]


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


def train(interactions: Interactions, config: WeightConfig, options: TrainOptions) -> TrainResult:
    """Evaluate, tune (optionally), fit on everything and build the artifact."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    params = dict(options.params)
    if options.search:
        params, trials = random_search(interactions, config, options)
        seconds["search"] = time.perf_counter() - started
    report, evaluated = None, None
    if options.test_days > 0:
        mark = time.perf_counter()
        report, evaluated = evaluate_split(interactions, config, options, params)
        seconds["evaluate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    matrix = build_matrix(interactions, config)
    model = final_model(options, params, evaluated, matrix)
    model.fit(matrix, show_progress=options.show_progress)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    artifact = build_artifact(model, matrix, options, params, report, trials)
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
    return TrainResult(artifact, report, trials, seconds)


def evaluate_split(
    interactions: Interactions,
    config: WeightConfig,
    options: TrainOptions,
    params: dict[str, Any],
) -> tuple[Report, tuple[Scorer, InteractionMatrix]]:
    """The comparison on the last ``test_days`` (module docstring, step 1); also returns
    the fitted model and its train matrix, to warm-start the final fit."""
    split = split_global_time(interactions, test_days=options.test_days)
    fold = make_fold(split, config, exclude_seen=True)
    scorers = comparison_scorers(options, params)
    report = evaluate(scorers, fold, (10, 20), show_progress=options.show_progress)
    return report, (scorers[options.model], fold.train)


def final_model(
    options: TrainOptions,
    params: dict[str, Any],
    evaluated: tuple[Scorer, InteractionMatrix] | None,
    matrix: InteractionMatrix,
) -> Scorer:
    """The model to fit on the whole log: for ALS after an evaluation, warm-started from
    the evaluated model's factors (rows matched by id; new users and items start small
    and random, as implicit starts them) with a fifth of the iterations."""
    model = make_model(options.model, params)
    if (
        not isinstance(model, ALSScorer)
        or not model.warm_starts
        or evaluated is None
        or options.warm_start_share <= 0
    ):
        return model
    previous, previous_matrix = evaluated
    rng = np.random.default_rng(options.seed)
    users = _carry_rows(previous.user_factors, previous_matrix.users, matrix.users, rng)
    items = _carry_rows(previous.item_factors, previous_matrix.items, matrix.items, rng)
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
    before_test = split_global_time(interactions, test_days=options.test_days).train
    validation = make_fold(split_global_time(before_test, test_days=options.test_days), config)
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
) -> ModelArtifact:
    """The version to ship (step 3)."""
    popular = PopularScorer().fit(matrix).item_scores
    trending = TrendingScorer().fit(matrix).item_scores
    similar_items, similar_scores = similar_by_factors(model.item_factors)
    created = datetime.now(UTC)
    fingerprint = data_fingerprint(matrix.interactions)
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
