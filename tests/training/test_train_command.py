"""recsvc train / evaluate end to end on a generated store, and the artifact they write."""

import json
from datetime import date

import numpy as np
import pytest
from click.testing import CliRunner

from recsvc.scoring.artifact import ModelArtifact
from recsvc.synth.generator import GenerateConfig, generate
from training.commands import evaluate, train

CONTRACT_MODELS = {"served", "als", "bpr", "itemknn", "popular", "trending"}
CONTRACT_KEYS = {"ndcg@10", "recall@20", "precision@10", "map@10", "coverage"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    generate(
        GenerateConfig(
            visitors=3000, items=300, days=21, seed=5, out=out, end_date=date(2026, 3, 1)
        )
    )
    return out


def run(command, *args):
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_train_writes_a_version_with_the_metrics_contract(store, tmp_path):
    result = run(
        train,
        "--events",
        store / "events",
        "--models-dir",
        tmp_path,
        "--alpha",
        10,
        "--regularization",
        0.5,
        "--compare",
        "als,bpr,itemknn,popular,trending",
    )
    version = result.stdout.strip().splitlines()[-1]
    manifest = json.loads((tmp_path / version / "manifest.json").read_text())
    assert set(manifest["metrics"]) == CONTRACT_MODELS
    assert all(set(m) == CONTRACT_KEYS for m in manifest["metrics"].values())
    assert manifest["model"] == "als" and manifest["params"]["alpha"] == 10
    assert len(manifest["data"]["fingerprint"]) == 64
    assert {"implicit", "numpy", "scipy", "recsvc"} <= set(manifest["libraries"])
    assert manifest["load"]["kept"] > 0
    for name in ("report.json", "report.md", "report.png"):
        assert (tmp_path / version / "report" / name).exists()
    artifact = ModelArtifact.load(tmp_path / version)
    assert artifact.item_factors.shape == (len(artifact.item_ids), 64)
    assert artifact.similar_items.shape == (len(artifact.item_ids), 50)
    # No item is its own neighbour, and neighbours are real rows or padding.
    rows = np.arange(len(artifact.item_ids))[:, None]
    assert not (artifact.similar_items == rows).any()
    assert artifact.similar_items.min() >= -1
    # The session model over the same item rows, for anonymous visitors.
    assert manifest["session"]["config"]["walk"]["max_rules"] == 200
    assert manifest["session"]["sessions"]["sessions"] > 100
    indptr = artifact.session["session_items.indptr"]
    assert artifact.session["popularity"].shape == (len(artifact.item_ids),)
    assert len(indptr) == manifest["session"]["sessions"]["sessions"] + 1
    # The blend's weights were tuned on validation and ship with the version; the served
    # chain was evaluated on test with them.
    tuning = manifest["blend_tuning"]
    assert manifest["serving"]["blend"] == tuning["params"] and tuning["visitors"] > 20
    assert tuning["ndcg@10"] >= tuning["default_ndcg@10"]
    served = manifest["evaluation"]["models"][0]
    assert served["name"] == "served" and served["params"]["serving"] == manifest["serving"]
    # Against the generator's held-out purchases the model is far above popularity.
    truth = manifest["ground_truth"]
    assert truth["users"] > 20
    assert truth["als"]["ndcg@10"] > 2 * truth["popular"]["ndcg@10"]


def test_default_comparison_is_the_model_and_the_baselines(store, tmp_path):
    result = run(train, "--events", store / "events", "--models-dir", tmp_path, "--factors", 16)
    version = result.stdout.strip().splitlines()[-1]
    manifest = json.loads((tmp_path / version / "manifest.json").read_text())
    assert set(manifest["metrics"]) == {"served", "als", "itemknn", "popular", "trending"}
    # The shipped model was warm-started from the evaluated one: a fifth of 15 iterations.
    assert manifest["params"]["iterations"] == 3


def test_cold_refit_fits_the_whole_log_from_scratch(store, tmp_path):
    args = ("--events", store / "events", "--models-dir", tmp_path, "--factors", 8)
    result = run(train, *args, "--iterations", 6, "--refit", "cold", "--no-sessions")
    version = result.stdout.strip().splitlines()[-1]
    manifest = json.loads((tmp_path / version / "manifest.json").read_text())
    assert manifest["params"]["iterations"] == 6  # all of them, not a warm fifth


def test_no_sessions_ships_no_session_model(store, tmp_path):
    args = ("--events", store / "events", "--models-dir", tmp_path, "--factors", 8)
    result = run(train, *args, "--test-days", 0, "--no-sessions")
    version = result.stdout.strip().splitlines()[-1]
    assert ModelArtifact.load(tmp_path / version).session == {}
    assert "session" not in json.loads((tmp_path / version / "manifest.json").read_text())


def test_search_records_every_trial_on_validation(store, tmp_path):
    result = run(
        train,
        "--events",
        store / "events",
        "--models-dir",
        tmp_path,
        "--search",
        3,
        "--factors",
        16,
        "--test-days",
        5,
    )
    version = result.stdout.strip().splitlines()[-1]
    manifest = json.loads((tmp_path / version / "manifest.json").read_text())
    trials = manifest["search"]["trials"]
    assert len(trials) == 3 and all(t["params"]["factors"] == 16 for t in trials)
    best = max(trials, key=lambda t: t["ndcg@10"])["params"]
    assert manifest["params"]["alpha"] == pytest.approx(best["alpha"])


def test_evaluate_writes_a_report_and_keeps_no_model(store, tmp_path):
    out = tmp_path / "eval"
    run(
        evaluate,
        "--events",
        store / "events",
        "--out",
        out,
        "--model",
        "bpr",
        "--compare",
        "als,itemknn,popular,trending",
    )
    report = json.loads((out / "report.json").read_text())
    assert {m["name"] for m in report["models"]} == CONTRACT_MODELS
    assert not list(tmp_path.glob("*/manifest.json"))


def test_train_on_a_generic_csv_with_column_flags(tmp_path):
    rows = ["who,what,when,kind"]
    for user in range(60):
        for step in range(6):
            item = (user % 3) * 10 + (user + step) % 10
            rows.append(f"u{user},p{item},{1700000000 + user * 100 + step},view")
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\nbad,row\n")
    result = run(
        train,
        "--events",
        tmp_path / "log.csv",
        "--format",
        "csv",
        "--user-col",
        "who",
        "--item-col",
        "what",
        "--time-col",
        "when",
        "--event-col",
        "kind",
        "--time-unit",
        "s",
        "--models-dir",
        tmp_path / "m",
        "--test-days",
        0,
        "--factors",
        8,
    )
    assert "malformed 1" in result.stderr
    version = result.stdout.strip().splitlines()[-1]
    assert ModelArtifact.load(tmp_path / "m" / version).user_ids.size == 60
