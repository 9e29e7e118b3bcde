"""Folds pooled into one report: every test user counted once."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import ModelResult, Report
from training.pooling import pool_reports
from training.served import bootstrap_interval


def fold_report(fold: int, ndcg: list[float], coverage: float) -> Report:
    values = np.array(ndcg)
    per_user = {"ndcg@10": values, "recall@10": values * 2}
    metrics = {"ndcg@10": values.mean(), "recall@10": values.mean() * 2, "coverage@10": coverage}
    model = ModelResult("als", "ALSScorer", {}, 1.0, 0.5, metrics, per_user)
    split = {"method": "user_kfold", "params": {"folds": 2, "fold": fold, "n": 1}}
    split |= {"train_events": 100, "test_events": len(ndcg), "train_users": 10}
    split |= {"test_users": len(ndcg), "dropped_test_users": 0, "dropped_test_events": 0}
    fold_counts = {"users": len(ndcg), "targets": len(ndcg)}
    matrix = {"users": 10, "items": 5, "nonzeros": 40}
    return Report((10,), split, fold_counts, matrix, {}, [model])


def test_folds_pool_their_users_into_one_sample() -> None:
    pooled = pool_reports([fold_report(0, [1.0, 0.0, 0.5], 0.2), fold_report(1, [0.0], 0.4)])
    metrics = pooled.models[0].metrics
    assert metrics["ndcg@10"] == pytest.approx(1.5 / 4)  # the mean over users, not folds
    assert metrics["recall@10"] == pytest.approx(3.0 / 4)
    assert metrics["coverage@10"] == pytest.approx(0.3)
    low, high = bootstrap_interval(np.array([1.0, 0.0, 0.5, 0.0]))
    assert (metrics["ndcg@10_low"], metrics["ndcg@10_high"]) == (low, high)
    assert pooled.fold["users"] == 4 and pooled.split["test_users"] == 4
    assert pooled.split["train_events"] == 100  # per fold, not summed
    assert pooled.split["params"] == {"folds": 2, "n": 1}
    assert pooled.data["folds"] == 2 and pooled.models[0].fit_seconds == 2.0
    # The per-user values stay out of the JSON.
    assert "per_user" not in pooled.to_dict()["models"][0]


def test_one_fold_is_its_own_report() -> None:
    report = fold_report(0, [1.0], 0.1)
    assert pool_reports([report]) is report
