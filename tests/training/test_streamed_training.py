"""recsvc train --streaming's fit from a generated store's exported log: the same matrix
as the in-memory path, trending and the session model from the recent partitions only,
a version that serves and says what it did not do."""

from datetime import date

import numpy as np
import pytest

from recsvc.scoring.artifact import ModelArtifact
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.state import VisitorState, Want
from recsvc.scoring.strategies import SESSION
from recsvc.synth.generator import GenerateConfig, generate
from training.loaders import load_events
from training.matrix import build_matrix
from training.pipeline import TrainOptions
from training.scorers import TrendingScorer
from training.streamed_training import train_streamed
from training.streaming import stream_tail
from training.weights import SECONDS_PER_DAY, load_weights


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    generate(
        GenerateConfig(
            visitors=2000, items=200, days=20, seed=9, out=out, end_date=date(2026, 3, 1)
        )
    )
    return out / "events"


@pytest.fixture(scope="module")
def streamed(store):
    options = TrainOptions(params={"factors": 16, "iterations": 5}, show_progress=False)
    return train_streamed(store, load_weights(), options, recent_days=10, chunk_events=5_000)


def test_the_tail_holds_the_recent_events_and_opens_only_their_partitions(store):
    events, _ = load_events(store)
    since = float(events.time.max()) - 3 * SECONDS_PER_DAY
    tail, report = stream_tail(store, since)
    recent = events.time >= since
    assert len(tail) == int(recent.sum()) > 0
    assert np.all(np.diff(tail.time) >= 0) and tail.time.min() >= since
    assert report.files < len(list(store.rglob("part-*")))


def test_the_version_is_fit_on_the_whole_log(store, streamed):
    artifact = streamed.artifact
    expected = build_matrix(load_events(store)[0], load_weights())
    assert len(artifact.item_ids) == expected.shape[1]
    assert len(artifact.user_ids) == expected.shape[0]
    assert artifact.item_factors.shape == (expected.shape[1], 16)
    # Trending scored as the in-memory path scores it (it reads only the last week);
    # equal scores may come in another order (the item columns are coded differently).
    trending = TrendingScorer().fit(expected).item_scores
    score_of = dict(zip(expected.items.labels.tolist(), trending.tolist(), strict=True))
    got = [score_of[i] for i in artifact.item_ids[artifact.trending[:10]].tolist()]
    assert got == pytest.approx(np.sort(trending)[::-1][:10].tolist(), rel=1e-5)


def test_the_version_says_what_it_did_not_do_and_ships_default_weights(streamed):
    manifest = streamed.artifact.manifest
    assert streamed.report is None and manifest["evaluation"] is None
    assert manifest["evaluated"] is False
    assert manifest["metrics"] == {}
    assert manifest["streaming"]["not_done"] == ["evaluation", "blend tuning"]
    assert (
        manifest["streaming"]["recent"]["events_used"]
        < manifest["streaming"]["matrix"]["events_used"]
    )
    assert manifest["serving"]["blend"]["long_term"] > 0
    assert len(manifest["data"]["fingerprint"]) == 64


def test_the_version_serves_anonymous_sessions_from_the_recent_sessions(streamed, tmp_path):
    folder = streamed.artifact.save(tmp_path)
    model = ScoringModel.from_artifact(ModelArtifact.load(folder))
    assert model.session is not None and streamed.artifact.manifest["session"]
    rows = np.array([int(model.popular[0]), int(model.popular[1])], np.int64)
    state = VisitorState(
        recent=rows,
        recent_kinds=("product_view", "product_view"),
        recent_times=np.array([1e9 + 60, 1e9]),
        recent_touches=np.ones(2, np.int32),
    )
    ranked = SESSION.rank(model, state, Want(n=5))
    assert len(ranked.rows) == 5 and int(rows[0]) not in ranked.rows


def test_the_command_writes_a_version_and_says_it_was_not_evaluated(store, tmp_path):
    from click.testing import CliRunner

    from training.commands import train

    args = ["--events", str(store), "--models-dir", str(tmp_path), "--streaming"]
    result = CliRunner().invoke(train, [*args, "--factors", "8", "--iterations", "3"])
    assert result.exit_code == 0, result.output
    version = result.stdout.strip().splitlines()[-1]
    assert ModelArtifact.load(tmp_path / version).manifest["streaming"]
    assert "not evaluated" in result.stderr


def test_the_command_refuses_a_log_that_is_not_the_exporters(tmp_path):
    from click.testing import CliRunner

    from training.commands import train

    log = tmp_path / "ratings.csv"
    log.write_text("user,item,ts\nu1,i1,1\n")
    args = ["--events", str(log), "--format", "csv", "--streaming"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 2 and "exporter's JSONL" in result.output
