"""recsvc compare, recsvc retrain and the decisions recsvc models lists, from the command
line against real Redis on a generated store."""

import json

import pytest
from click.testing import CliRunner

from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.registry.commands import models, publish
from recsvc.registry.decisions import read_decisions
from recsvc.store.models import ModelStore
from training import gate_commands
from training.commands import train
from training.gate_commands import compare, parse_every, retrain


def run(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def trained_version(events, models_dir):
    result = run(train, "--events", events, "--models-dir", models_dir, "--compare", "popular")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_retrain_refuses_then_publishes_and_models_lists_the_decisions(gate_logs, env, settings):
    days = gate_logs.fresh_days
    first = run(retrain, "--events", gate_logs.base, "--test-days", days)
    assert first.exit_code == 0, first.output
    assert "published" in first.stdout and "no current version" in first.stdout
    refused = run(retrain, "--events", gate_logs.shuffled, "--test-days", days)
    assert refused.exit_code == 0 and "refused" in refused.stdout
    assert "worse than the current version beyond the 95% interval" in refused.stdout
    listing = run(models).stdout
    decisions = listing.split("decisions of recsvc retrain (oldest first):")[1].splitlines()[1:]
    assert [line.split()[1] for line in decisions] == ["published", "refused"]
    assert "ndcg@10" in decisions[1] and "95% CI" in decisions[1]
    store = ModelStore(connect(settings.redis_url), KeySpace(settings.namespace))
    current = read_decisions(env)[0].candidate
    assert store.current_version() == current
    states = {line.split()[0]: line.split()[-1] for line in listing.split("\n\n")[0].splitlines()}
    refused_version = read_decisions(env)[1].candidate
    assert states == {current: "current", refused_version: "refused"}  # kept, unpublished


def test_compare_prints_both_versions_with_intervals_and_the_paired_test(gate_logs, tmp_path):
    a = trained_version(gate_logs.base, tmp_path)
    b = trained_version(gate_logs.base, tmp_path)
    out = tmp_path / "comparison.json"
    result = run(compare, a, b, "--events", gate_logs.full, "--models-dir", tmp_path, "--json", out)
    assert result.exit_code == 0, result.output
    header, _rule, *rows = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert "paired 95% CI" in header and "Wilcoxon p" in header
    assert [row.split("|")[1].strip() for row in rows] == [
        "ndcg@10",
        "recall@20",
        "precision@10",
        "map@10",
    ]
    figures = json.loads(out.read_text())
    assert figures["a"] == a and figures["b"] == b and figures["visitors"] >= 20
    # Same data, same seed: the two versions serve alike.
    assert figures["metrics"]["ndcg@10"]["difference"] == pytest.approx(0, abs=0.02)


def test_compare_errors_are_one_line_with_exit_code_2(gate_logs, tmp_path):
    version = trained_version(gate_logs.base, tmp_path)
    unknown = run(compare, version, "nope", "--events", gate_logs.full, "--models-dir", tmp_path)
    assert unknown.exit_code == 2 and "Traceback" not in unknown.output
    assert "VERSION_B" in unknown.output and "no model version 'nope'" in unknown.output
    stale = run(compare, version, version, "--events", gate_logs.base, "--models-dir", tmp_path)
    assert stale.exit_code == 2 and "no test visitor" in stale.output


def test_retrain_every_runs_again_on_its_schedule(gate_logs, env, monkeypatch):
    class Stop(Exception):
        pass

    sleeps = []

    def wait(seconds):
        sleeps.append(seconds)
        if len(sleeps) >= 2:
            raise Stop

    monkeypatch.setattr(gate_commands, "wait", wait)
    args = ("--events", gate_logs.full, "--min-test-visitors", 100_000, "--every", "1h")
    result = run(retrain, *args)
    assert isinstance(result.exception, Stop)
    assert len(sleeps) == 2 and all(3500 < s <= 3600 for s in sleeps)
    assert [d.outcome for d in read_decisions(env)] == ["skipped", "skipped"]


def test_retrain_failure_is_one_line_exit_1_and_publishes_nothing(gate_logs, env, make_artifact):
    # The current version was published from another registry: the gate cannot load it.
    make_artifact("elsewhere").save(env.parent / "other")
    assert run(publish, "elsewhere", "--models-dir", env.parent / "other").exit_code == 0
    result = run(retrain, "--events", gate_logs.full)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "retrain failed, nothing published" in result.output and "elsewhere" in result.output
    assert read_decisions(env)[-1].outcome == "failed"
    assert [p.name for p in env.iterdir()] == ["decisions.jsonl"]  # nothing trained


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), ("45", 45)]
)
def test_every_durations(text, seconds):
    assert parse_every(text) == seconds


def test_every_rejects_a_bad_duration(gate_logs, env):
    result = run(retrain, "--events", gate_logs.full, "--every", "soon")
    assert result.exit_code == 2 and "--every" in result.output and "6h" in result.output
