"""recsvc train / evaluate end to end on a generated store, and the artifact they write."""

import json
from datetime import date

import numpy as np
import pytest
from click.testing import CliRunner

from loadtests.ratings_log import RatingsConfig, write_ratings_log
from recsvc.scoring.artifact import ModelArtifact
from recsvc.synth.generator import GenerateConfig, generate
from training.commands import evaluate, train
from training.loaders import ColumnMap, load_events

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


# --- Any interaction log, the splits, the refusal, errors that help (issue 15) -----------


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    """A ratings-shaped log: user,item,rating,timestamp, users active in short bursts."""
    path = tmp_path_factory.mktemp("ratings") / "ratings.csv"
    return write_ratings_log(path, RatingsConfig(users=600, items=300, seed=3))


RATINGS_FLAGS = ("--event-col", "", "--weight-col", "rating", "--min-weight", 4)
SMALL_FIT = ("--factors", 8, "--no-sessions", "--compare", "popular")


def fail(command, *args, env=None):
    """Run a command that must fail as a user error: exit 2, no traceback, one error
    line (the last; progress lines may precede it); returns that line."""
    result = CliRunner(env=env).invoke(command, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)
    assert result.output.count("Error: ") == 1
    return result.output.strip().splitlines()[-1]


def manifest_of(result, models):
    version = result.stdout.strip().splitlines()[-1]
    return json.loads((models / version / "manifest.json").read_text())


@pytest.mark.parametrize(
    ("flags", "method"),
    [
        (("--split", "leave-last", "--holdout", 2), "leave-last"),
        (("--split", "user-fraction", "--test-fraction", 0.3), "user-fraction"),
        (("--split", "user-kfold", "--folds", 3), "user-kfold"),
    ],
)
def test_a_ratings_log_trains_under_each_per_user_split(ratings, tmp_path, flags, method):
    models = tmp_path / "m"
    args = ("--events", ratings, *RATINGS_FLAGS, "--models-dir", models, *SMALL_FIT, *flags)
    result = run(train, *args)
    # The load report says what the rows became.
    assert "dropped: below_min_weight" in result.stderr
    assert "no event column: every row is one interaction" in result.stderr
    assert "test targets: every kept row" in result.stderr
    manifest = manifest_of(result, models)
    assert manifest["split"]["method"] == method and manifest["evaluated"] is True
    assert manifest["load"]["target_events"] == "all"
    assert manifest["load"]["columns"]["event"] is None
    interval = manifest["intervals"]["als"]["ndcg@10"]
    assert interval["low"] <= interval["value"] <= interval["high"]
    users = manifest["evaluation"]["fold"]["users"]
    assert interval["users"] == users > 100
    if method == "user-kfold":
        # Every user with two liked ratings is tested once, in one of the three folds.
        log = load_events(
            ratings, columns=ColumnMap(time="timestamp", event=None, weight="rating", min_weight=4)
        )[0]
        assert users == int(np.count_nonzero(np.bincount(log.user) >= 2))
        assert manifest["evaluation"]["data"]["folds"] == 3
    report = (models / manifest["version"] / "report" / "report.md").read_text()
    assert "ndcg@10 95% CI" in report and f"Test users scored: {users:,}" in report
    assert f"bootstrap interval of the mean over the {users:,} test users" in report


def test_too_few_test_users_is_refused_with_the_split_that_would_work(ratings, tmp_path):
    models = tmp_path / "m"
    output = fail(train, "--events", ratings, *RATINGS_FLAGS, "--models-dir", models, *SMALL_FIT)
    assert output.startswith("Error: --split: the time split")
    assert "active only in the test period" in output and "--split leave-last" in output
    assert not models.exists() or not any(models.iterdir())  # no version written


def test_no_eval_writes_a_version_marked_unevaluated(ratings, tmp_path):
    models = tmp_path / "m"
    args = ("--events", ratings, *RATINGS_FLAGS, "--models-dir", models, *SMALL_FIT)
    manifest = manifest_of(run(train, *args, "--no-eval"), models)
    assert manifest["evaluated"] is False and manifest["metrics"] == {}
    assert manifest["split"] is None and manifest["intervals"] == {}


def test_view_targets_refused_until_named(tmp_path):
    """An event column of views only: targets default to all of them, so it evaluates;
    naming carts as targets is refused with the flag that counts views."""
    rows = ["user,item,timestamp,event"]
    for user in range(120):
        for step in range(8):
            item = (user % 4) * 10 + (user + step) % 10
            rows.append(f"u{user},p{item},{1700000000 + user * 9000 + step * 60},view")
    (tmp_path / "views.csv").write_text("\n".join(rows) + "\n")
    base = ("--events", tmp_path / "views.csv", "--models-dir", tmp_path / "m", *SMALL_FIT)
    manifest = manifest_of(run(train, *base, "--split", "leave-last"), tmp_path / "m")
    assert manifest["load"]["target_events"] == "all" and manifest["evaluated"]
    output = fail(train, *base, "--split", "leave-last", "--target-events", "cart")
    assert "the log has no add_to_cart event; it has product_view 960" in output


def test_train_honours_recsvc_models_dir(ratings, tmp_path):
    models = tmp_path / "from-env"
    args = ["--events", ratings, *RATINGS_FLAGS, *SMALL_FIT, "--no-eval"]
    result = CliRunner(env={"RECSVC_MODELS_DIR": str(models)}).invoke(
        train, [str(a) for a in args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    version = result.stdout.strip().splitlines()[-1]
    assert (models / version / "manifest.json").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--time-col", "ts"), "Error: --time-col: time column 'ts' is not in ratings.csv"),
        (
            (),
            "--event-col: event column 'event' is not in ratings.csv (columns: user, item, "
            'rating, timestamp); name one of those or no event column (--event-col "" for none)',
        ),
        (("--event-col", "", "--time-unit", "ms"), None),
        (
            ("--event-col", "", "--time-unit", "iso"),
            "--time-unit: 5 rows of ratings.csv kept: 19,996 of 20,001 dropped as bad_time",
        ),
        (("--event-col", "", "--weight-col", "user"), "--weight-col: 0 rows of ratings.csv kept"),
        (("--event-col", "", "--min-weight", 4), "--min-weight"),
        (("--event-col", "", "--target-events", "wishlist"), "unknown event types ['wishlist']"),
        (("--event-col", "", "--identity", "stitched", "--format", "csv"), "JSONL logs only"),
        (("--event-col", "", "--factors", 0), "--factors"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(ratings, tmp_path, flags, words):
    output = fail(train, "--events", ratings, "--models-dir", tmp_path, *flags)
    if words is None:
        # Epoch seconds read as milliseconds are all in January 1970: a one-burst log.
        assert "--split: the time split" in output
    else:
        assert words in output
    assert output.startswith("Error: ")


def test_an_unreadable_log_is_a_user_error_and_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user,item\n\xff\xfe\x00garbage\n")
    output = fail(train, "--events", path, "--models-dir", tmp_path / "m")
    assert output.startswith("Error: --events: cannot read the log:")
    result = CliRunner().invoke(train, ["--events", str(path), "--debug"])
    assert result.exit_code == 1 and isinstance(result.exception.__cause__, UnicodeDecodeError)
    fake = tmp_path / "log.parquet"
    fake.write_text("user,item\n")
    output = fail(train, "--events", fake, "--models-dir", tmp_path / "m")
    assert output.startswith("Error: --events: cannot read the log:")


def test_identity_stitched_trains_on_logged_in_users(store, tmp_path):
    args = ("--events", store / "events", "--models-dir", tmp_path, "--factors", 8, "--no-eval")
    visitors = ModelArtifact.load(tmp_path / run(train, *args, "--no-sessions").stdout.split()[-1])
    stitched_result = run(train, *args, "--no-sessions", "--identity", "stitched")
    stitched = ModelArtifact.load(tmp_path / stitched_result.stdout.split()[-1])
    # Visitors who logged in become their user: fewer rows, some named by user id.
    assert len(stitched.user_ids) < len(visitors.user_ids)
    assert set(stitched.user_ids) - set(visitors.user_ids)


def test_als_clearly_beats_popularity_on_a_ratings_log_under_a_per_user_split(tmp_path):
    """What it took (training/README.md): liked ratings only (--min-weight 4), own items
    excluded (a rating is never repeated), and ALS parameters for a small sparse log."""
    path = write_ratings_log(tmp_path / "ratings.csv", RatingsConfig())
    out = tmp_path / "eval"
    run(
        evaluate,
        *("--events", path, *RATINGS_FLAGS, "--out", out, "--compare", "popular"),
        *("--split", "leave-last", "--exclude-seen"),
        *("--factors", 16, "--regularization", 0.1, "--alpha", 5, "--iterations", 20),
    )
    models = {
        m["name"]: m["metrics"] for m in json.loads((out / "report.json").read_text())["models"]
    }
    als, popular = models["als"], models["popular"]
    assert als["ndcg@10_low"] > popular["ndcg@10_high"]  # intervals apart
    assert als["ndcg@10"] > 1.5 * popular["ndcg@10"]
