"""The retraining loop on a generated store, against real Redis: the gate refuses a version
trained on a log whose signal was destroyed, publishes a normal one, skips when there is
nothing fresh to test on, and records every decision."""

import json

import pytest

from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.registry.decisions import read_decisions
from recsvc.store.models import ModelStore
from training.pipeline import TrainOptions
from training.retrain import GateError, RetrainOptions, retrain_once
from training.weights import load_weights


@pytest.fixture
def store(settings):
    return ModelStore(connect(settings.redis_url), KeySpace(settings.namespace))


def options(events, models_dir, gate_logs, **overrides):
    return RetrainOptions(
        events=events,
        models_dir=models_dir,
        test_days=gate_logs.fresh_days,
        train=TrainOptions(show_progress=False),
        **overrides,
    )


def manifest(models_dir, version):
    return json.loads((models_dir / version / "manifest.json").read_text())


def test_gate_refuses_a_shuffled_log_and_publishes_a_normal_one(gate_logs, store, tmp_path):
    config = load_weights()
    first = retrain_once(options(gate_logs.base, tmp_path, gate_logs), store, config)
    assert first.outcome == "published" and store.current_version() == first.candidate
    assert first.figures["gate"]["visitors"] >= 20 and first.figures["gate"]["candidate"] > 0.1

    broken = retrain_once(options(gate_logs.shuffled, tmp_path, gate_logs), store, config)
    gate = broken.figures["gate"]
    assert broken.outcome == "refused" and broken.current == first.candidate
    assert gate["difference_interval"][1] < 0 and gate["candidate"] < gate["current"]
    assert store.current_version() == first.candidate  # nothing was published
    assert broken.candidate not in store.published()
    kept = manifest(tmp_path, broken.candidate)  # kept on disk, marked
    assert kept["gate"]["passed"] is False and kept["warm_start"] == first.candidate

    normal = retrain_once(options(gate_logs.full, tmp_path, gate_logs), store, config)
    gate = normal.figures["gate"]
    assert normal.outcome == "published" and store.current_version() == normal.candidate
    low, high = gate["difference_interval"]
    assert low <= gate["difference"] <= high and high >= 0
    # Both scored on the same fresh visitors: after everything the current version saw.
    assert gate["visitors"] == broken.figures["gate"]["visitors"]
    assert gate["cutoff"] > manifest(tmp_path, first.candidate)["window"]["last_event"]

    recorded = read_decisions(tmp_path)
    assert [d.outcome for d in recorded] == ["published", "refused", "published"]
    assert recorded[1].figures["gate"] == json.loads(json.dumps(broken.figures["gate"]))


def test_nothing_fresh_since_the_current_version_skips(gate_logs, store, tmp_path):
    config = load_weights()
    first = retrain_once(options(gate_logs.base, tmp_path, gate_logs), store, config)
    again = retrain_once(options(gate_logs.base, tmp_path, gate_logs), store, config)
    assert again.outcome == "skipped" and "0 test visitors" in again.reason
    assert again.candidate is None and store.current_version() == first.candidate
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # nothing trained


def test_too_few_fresh_visitors_skips(gate_logs, store, tmp_path):
    run = options(gate_logs.full, tmp_path, gate_logs, min_test_visitors=100_000)
    decision = retrain_once(run, store, load_weights())
    assert decision.outcome == "skipped" and "fewer than 100000" in decision.reason
    assert store.current_version() is None


def test_a_current_version_missing_from_the_registry_fails_and_publishes_nothing(
    gate_logs, store, tmp_path, make_artifact
):
    store.publish(make_artifact("elsewhere"))
    with pytest.raises(GateError, match="not in"):
        retrain_once(options(gate_logs.full, tmp_path, gate_logs), store, load_weights())
    (decision,) = read_decisions(tmp_path)
    assert decision.outcome == "failed" and "elsewhere" in decision.reason
    assert store.current_version() == "elsewhere"


def test_cold_start_does_not_use_the_current_factors(gate_logs, store, tmp_path):
    config = load_weights()
    retrain_once(options(gate_logs.base, tmp_path, gate_logs), store, config)
    cold = retrain_once(options(gate_logs.full, tmp_path, gate_logs, warm=False), store, config)
    assert manifest(tmp_path, cold.candidate)["warm_start"] is None
