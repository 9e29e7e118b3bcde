"""One report from the folds of a cross-validation: every test user counted once.

In a user k-fold every user is tested in exactly one fold, so the folds' per-user metric
values (:attr:`training.evaluate.ModelResult.per_user`) are pooled into one sample: its
means are the report's metrics and its bootstrap intervals theirs, over all the folds'
users. Counts add up; catalog coverage, a property of each fold's lists, is averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.evaluate import ModelResult, Report
from training.served import bootstrap_interval

INTERVAL_METRICS = ("ndcg", "recall")


def pool_reports(reports: Sequence[Report]) -> Report:
    """The folds' reports as one (module docstring); a single report is returned as is."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    models = [
        _pool_model([report.models[index] for report in reports], first.ks)
        for index in range(len(first.models))
    ]
    return Report(
        ks=first.ks,
        split=_pool_split([report.split for report in reports]),
        fold=_sum_counts([report.fold for report in reports]),
        matrix=first.matrix,
        weights=first.weights,
        models=models,
        data={**first.data, "folds": len(reports)},
    )


def _pool_model(results: Sequence[ModelResult], ks: tuple[int, ...]) -> ModelResult:
    per_user = {
        key: np.concatenate([r.per_user[key] for r in results]) for key in results[0].per_user
    }
    metrics = {
        key: float(values.mean()) if len(values) else 0.0 for key, values in per_user.items()
    }
    for k in ks:
        metrics[f"coverage@{k}"] = float(np.mean([r.metrics[f"coverage@{k}"] for r in results]))
        for name in INTERVAL_METRICS:
            key = f"{name}@{k}"
            metrics[f"{key}_low"], metrics[f"{key}_high"] = bootstrap_interval(per_user[key])
    return ModelResult(
        name=results[0].name,
        scorer=results[0].scorer,
        params=results[0].params,
        fit_seconds=round(sum(r.fit_seconds for r in results), 3),
        recommend_seconds=round(sum(r.recommend_seconds for r in results), 3),
        metrics=metrics,
        per_user=per_user,
    )


def _pool_split(splits: Sequence[dict[str, Any]]) -> dict[str, Any]:
    pooled = _sum_counts(splits)
    # Every fold trains on most of the log: the train counts are per fold (their mean).
    for key in ("train_events", "train_users"):
        pooled[key] = round(np.mean([split[key] for split in splits]))
    params = {k: v for k, v in splits[0]["params"].items() if k != "fold"}
    return {**pooled, "method": splits[0]["method"], "params": params, "cutoff": None}


def _sum_counts(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Integer fields summed over ``parts``; other fields from the first."""
    summed = dict(parts[0])
    for key, value in parts[0].items():
        if isinstance(value, int) and not isinstance(value, bool):
            summed[key] = sum(int(part.get(key, 0)) for part in parts)
    return summed
