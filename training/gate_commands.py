"""``recsvc compare`` and ``recsvc retrain``: thin click commands over
:mod:`training.compare` and :mod:`training.retrain`."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import click

from recsvc.keys import KeySpace
from recsvc.redis_client import UNAVAILABLE_ERRORS, command_line_url, connect
from recsvc.registry.commands import keep_option, models_dir_option
from recsvc.scoring.artifact import ModelArtifact
from recsvc.settings import Settings
from recsvc.store.models import ModelStore
from training.commands import model_option, weights_option
from training.compare import METRICS, Contender, compare_served, fresh_split, version_data_end
from training.loaders import load_events
from training.pipeline import TrainOptions
from training.retrain import RetrainOptions, retrain_once
from training.weights import load_weights

FORMATS = ["auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _models_dir(given: Path | None) -> Path:
    return given or Settings.from_env().models_dir


def _load_version(models_dir: Path, version: str, hint: str) -> ModelArtifact:
    folder = models_dir / version
    if not (folder / "manifest.json").exists():
        raise click.BadParameter(
            f"no model version {version!r} in {models_dir} (see `recsvc models`)",
            param_hint=hint,
        )
    return ModelArtifact.load(folder)


@click.command()
@click.argument("version_a")
@click.argument("version_b")
@click.option(
    "--events",
    "events_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The log to test on: its newest events, after both versions' data.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--test-days",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="The log's last days are the test (from later on if a version saw them).",
)
@models_dir_option
@click.option(
    "--exclude-seen/--include-seen",
    default=False,
    show_default=True,
    help="Never recommend a visitor's own items (discovery), rather than as served.",
)
@click.option(
    "--max-visitors",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Test visitors at most (the same random sample for both).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures as JSON here.",
)
def compare(
    version_a: str,
    version_b: str,
    events_path: Path,
    fmt: str,
    test_days: float,
    models_dir: Path | None,
    exclude_seen: bool,
    max_visitors: int,
    json_path: Path | None,
) -> None:
    """Two versions as served, on the same test visitors: metrics with 95% intervals, the
    paired difference B − A with its interval and a Wilcoxon signed-rank p-value."""
    folder = _models_dir(models_dir)
    a = _load_version(folder, version_a, "VERSION_A")
    b = _load_version(folder, version_b, "VERSION_B")
    interactions, _ = load_events(events_path, fmt)
    seen_until = max(version_data_end(a.manifest), version_data_end(b.manifest))
    split = fresh_split(interactions, test_days, seen_until)
    comparison = compare_served(
        Contender.from_artifact(a),
        Contender.from_artifact(b),
        split,
        metrics=METRICS,
        exclude_seen=exclude_seen,
        max_visitors=max_visitors,
        show_progress=True,
    )
    if comparison.empty:
        raise click.UsageError(
            f"no test visitor in {events_path} from {split.report.cutoff} on (the versions "
            "trained on events up to then): give a log with later carts or purchases, or a "
            "larger --test-days"
        )
    click.echo(comparison.to_markdown())
    if json_path:
        json_path.write_text(json.dumps(comparison.to_dict(), indent=2))


def parse_every(value: str | None) -> float | None:
    """Seconds of ``90s``, ``30m``, ``6h``, ``1d`` or a plain number of seconds."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter(
            f"{value!r} is not a duration: write 90s, 30m, 6h or 1d", param_hint="--every"
        )
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def _model_store(settings: Settings) -> ModelStore:
    try:
        url = command_line_url(settings)
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    return ModelStore(connect(url, settings, socket_timeout=30), KeySpace(settings.namespace))


@click.command()
@click.option(
    "--events",
    "events_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The exporter's log folder (recsvc export-events --out).",
)
@models_dir_option
@click.option(
    "--window-days",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Train on the log's last days.",
)
@click.option(
    "--test-days",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="Test on the last days, from after the current version's data on.",
)
@click.option(
    "--min-test-visitors",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Fewer fresh test visitors: skip the run, publish nothing.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="NDCG@10 the candidate may lose beyond the paired interval and still publish.",
)
@click.option(
    "--start",
    type=click.Choice(["warm", "cold"]),
    default="warm",
    show_default=True,
    help="warm: ALS starts from the current version's factors (a fifth of the iterations).",
)
@model_option
@weights_option
@keep_option
@click.option(
    "--every",
    default=None,
    help="Run again on this schedule (90s, 30m, 6h, 1d) instead of once.",
)
def retrain(
    events_path: Path,
    models_dir: Path | None,
    window_days: float,
    test_days: float,
    min_test_visitors: int,
    tolerance: float,
    start: str,
    model: str,
    weights_path: Path | None,
    keep: int | None,
    every: str | None,
) -> None:
    """Train on the log window, gate against the current version, publish if not worse;
    every decision is recorded in the registry (`recsvc models` lists them)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    interval = parse_every(every)
    settings = Settings.from_env()
    store = _model_store(settings)
    config = load_weights(weights_path)

    def options() -> RetrainOptions:
        return RetrainOptions(
            events=events_path,
            models_dir=models_dir or settings.models_dir,
            window_days=window_days,
            test_days=test_days,
            min_test_visitors=min_test_visitors,
            tolerance=tolerance,
            warm=start == "warm",
            keep=keep or settings.model_keep_versions,
            train=TrainOptions(model=model),
        )

    while True:
        began = time.monotonic()
        try:
            decision = retrain_once(options(), store, config)
            click.echo(decision.summary())
        except (Exception, *UNAVAILABLE_ERRORS) as error:
            if interval is None:
                raise click.ClickException(f"retrain failed, nothing published: {error}") from error
            click.echo(f"retrain failed, nothing published: {error}", err=True)
        if interval is None:
            return
        wait(max(0.0, interval - (time.monotonic() - began)))


def wait(seconds: float) -> None:
    """Sleep until the next run of ``--every`` (its own name, so a test replaces this
    wait alone, not every sleep of the process)."""
    time.sleep(seconds)
