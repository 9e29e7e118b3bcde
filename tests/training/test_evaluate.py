"""Evaluation runs every scorer the same way and writes JSON, Markdown and a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.evaluate import evaluate, write_report
from training.folds import make_fold
from training.scorers import ALSScorer, ItemKNNScorer, PopularScorer, TrendingScorer
from training.splits import split_global_time
from training.weights import load_weights


@pytest.fixture(scope="module")
def report(planted):
    fold = make_fold(split_global_time(planted.interactions, test_days=12), load_weights())
    scorers = [
        ALSScorer(factors=16, iterations=10, num_threads=1),
        ItemKNNScorer(neighbours=30, num_threads=1),
        PopularScorer(),
        TrendingScorer(),
    ]
    return evaluate(scorers, fold, k=(10, 20))


def test_report_has_every_metric_for_every_model(report) -> None:
    assert [m.name for m in report.models] == ["als", "item_knn", "popular", "trending"]
    for model in report.models:
        assert len(model.metrics) == 7 * 2
        assert all(0.0 <= v <= 1.0 for v in model.metrics.values())
        assert model.fit_seconds >= 0 and model.recommend_seconds >= 0
    ndcg = report.metric("ndcg@10")
    assert ndcg["als"] > ndcg["popular"]
    assert report.fold["users"] > 0 and report.split["method"] == "global_time"


def test_report_files_are_written(report, tmp_path: Path) -> None:
    paths = write_report(report, tmp_path / "eval")
    data = json.loads(paths["json"].read_text())
    assert data["ks"] == [10, 20] and len(data["models"]) == 4
    assert data["models"][0]["params"]["factors"] == 16
    markdown = paths["markdown"].read_text()
    assert "| als |" in markdown and "ndcg@10" in markdown and "ndcg@20" in markdown
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["plot"].stat().st_size > 10_000


def test_named_scorers_allow_two_configurations(planted) -> None:
    fold = make_fold(split_global_time(planted.interactions, test_days=12), load_weights())
    small = {
        "als_4": ALSScorer(factors=4, iterations=3),
        "als_8": ALSScorer(factors=8, iterations=3),
    }
    assert [m.name for m in evaluate(small, fold).models] == ["als_4", "als_8"]
    with pytest.raises(ValueError, match="unique"):
        evaluate([PopularScorer(), PopularScorer()], fold)
