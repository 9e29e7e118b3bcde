"""ALS fitted by Spark MLlib (local mode): it learns the planted structure as implicit's
ALS does, and `recsvc train --engine spark` writes the same artifact. Skipped without
pyspark (`pip install -e '.[spark]'`; not in `make setup`: ~400 MB and a JVM)."""

import json
from datetime import date

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pyspark")

from recsvc.scoring.artifact import ModelArtifact
from recsvc.synth.generator import GenerateConfig, generate
from training.commands import train
from training.evaluate import evaluate
from training.folds import make_fold
from training.scorers import ALSScorer, PopularScorer
from training.spark_als import SparkALSScorer
from training.splits import split_global_time
from training.weights import load_weights


def test_spark_als_learns_what_implicit_als_learns(planted):
    fold = make_fold(split_global_time(planted.interactions, test_days=12), load_weights())
    params = {"factors": 16, "iterations": 6, "regularization": 0.1, "alpha": 2.0}
    report = evaluate(
        {"als": ALSScorer(**params), "spark_als": SparkALSScorer(**params), "pop": PopularScorer()},
        fold,
        (10,),
    )
    ndcg = {m.name: m.metrics["ndcg@10"] for m in report.models}
    assert ndcg["spark_als"] > 2 * ndcg["pop"]
    assert ndcg["spark_als"] > 0.7 * ndcg["als"]


def test_train_with_the_spark_engine_writes_the_same_artifact(tmp_path):
    store = tmp_path / "store"
    generate(
        GenerateConfig(
            visitors=800, items=120, days=14, seed=5, out=store, end_date=date(2026, 3, 1)
        )
    )
    models = tmp_path / "models"
    args = ["--events", store / "events", "--models-dir", models, "--engine", "spark"]
    args += ["--factors", 16, "--iterations", 5, "--no-sessions", "--test-days", 0]
    result = CliRunner().invoke(train, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    version = result.stdout.strip().splitlines()[-1]
    manifest = json.loads((models / version / "manifest.json").read_text())
    assert manifest["model"] == "spark_als"
    artifact = ModelArtifact.load(models / version)
    assert artifact.item_factors.shape[1] == 16
    assert np.abs(artifact.item_factors).sum() > 0
