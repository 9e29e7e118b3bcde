"""``recsvc train`` and ``recsvc evaluate``: thin click commands over ``training.pipeline``.

The options are a contract release scripts and load tests code against: ``--events PATH
[--format auto|jsonl|retailrocket|csv|tsv|parquet] [column flags] [--models-dir models]
[--model als|bpr] [hyperparameter flags] [--search N]``; ``train`` prints the new version.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from training.evaluate import write_report
from training.ground_truth import find_ground_truth
from training.loaders import ColumnMap, detect_format, load_events
from training.pipeline import TrainOptions, tune_and_evaluate
from training.pipeline import train as run_training
from training.streamed_training import RECENT_DAYS, describe, train_streamed
from training.weights import load_weights

FORMATS = ["auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"]
HYPERPARAMETERS = {
    "factors": int,
    "regularization": float,
    "alpha": float,
    "iterations": int,
    "learning_rate": float,
}


@dataclass
class DataRequest:
    """What both commands were asked to read and fit, from the shared options."""

    events_path: Path
    fmt: str
    columns: dict[str, Any]
    weights_path: Path | None
    model: str
    test_days: float
    compare: str
    exclude_seen: bool
    hyper: dict[str, Any]

    SHARED = (
        "events_path",
        "fmt",
        "user_col",
        "item_col",
        "time_col",
        "event_col",
        "weight_col",
        "time_unit",
        "weights_path",
        "model",
        "test_days",
        "compare",
        "exclude_seen",
    )

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> DataRequest:
        """Take the shared options (and the hyperparameters) out of a command's kwargs."""
        given = {name: kwargs.pop(name) for name in cls.SHARED}
        hyper = {name: kwargs.pop(name) for name in HYPERPARAMETERS}
        columns = {
            "user": given.pop("user_col"),
            "item": given.pop("item_col"),
            "event": given.pop("event_col"),
            "weight": given.pop("weight_col"),
            "time_unit": given.pop("time_unit"),
        }
        time_col = given.pop("time_col")
        if time_col:
            columns["time"] = time_col
        return cls(columns=columns, hyper=hyper, **given)

    def load(self):
        """The interactions and the load report, with a line on what was dropped."""
        column_map = None
        if self.columns.get("user") or self.columns.get("item"):
            column_map = ColumnMap(**{k: v for k, v in self.columns.items() if v is not None})
        interactions, report = load_events(self.events_path, self.fmt, column_map)
        dropped = ", ".join(f"{k} {v:,}" for k, v in report.dropped.items()) or "none"
        click.echo(
            f"loaded {report.kept:,} of {report.rows:,} rows "
            f"({report.users:,} users, {report.items:,} items); dropped: {dropped}",
            err=True,
        )
        return interactions, report

    def weights(self):
        return load_weights(self.weights_path)

    def options(self, search: int = 0) -> TrainOptions:
        params = {k: v for k, v in self.hyper.items() if v is not None}
        names = tuple(name.strip() for name in self.compare.split(",") if name.strip())
        unknown = set(names) - {"als", "bpr", "itemknn", "popular", "trending"}
        if unknown:
            raise click.BadParameter(f"unknown models {sorted(unknown)}", param_hint="--compare")
        return TrainOptions(
            model=self.model,
            params=params,
            test_days=self.test_days,
            search=search,
            compare=names,
            exclude_seen=self.exclude_seen,
        )


def data_options(function: Callable) -> Callable:
    """Add the input options both commands share; the command receives them packed as its
    first argument, a ``DataRequest``."""

    @functools.wraps(function)
    def command(**kwargs: Any) -> Any:
        return function(DataRequest.pop_from(kwargs), **kwargs)

    options = [
        click.option(
            "--events",
            "events_path",
            type=click.Path(exists=True, path_type=Path),
            required=True,
            help="A log folder or file.",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True
        ),
        click.option("--user-col", default=None, help="CSV/TSV/Parquet: user column."),
        click.option("--item-col", default=None, help="CSV/TSV/Parquet: item column."),
        click.option("--time-col", default=None, help="CSV/TSV/Parquet: time column."),
        click.option("--event-col", default=None, help="CSV/TSV/Parquet: event type column."),
        click.option("--weight-col", default=None, help="CSV/TSV/Parquet: weight column."),
        click.option(
            "--time-unit",
            type=click.Choice(["auto", "s", "ms", "iso"]),
            default="auto",
            show_default=True,
        ),
        click.option(
            "--weights",
            "weights_path",
            type=click.Path(exists=True, path_type=Path),
            default=None,
            help="Event weights TOML [default: training/weights.toml]",
        ),
        click.option(
            "--model", type=click.Choice(["als", "bpr"]), default="als", show_default=True
        ),
        click.option(
            "--test-days",
            type=float,
            default=7.0,
            show_default=True,
            help="Days at the end of the log held out for evaluation (0: none).",
        ),
        click.option(
            "--compare",
            default="itemknn,popular,trending",
            show_default=True,
            help="Models evaluated beside --model: any of als, bpr, itemknn, popular, "
            "trending (the other factor model doubles the evaluation's time).",
        ),
        click.option(
            "--exclude-seen/--include-seen",
            default=False,
            show_default=True,
            help="Evaluate with each visitor's own items never recommended (discovery), "
            "rather than as served, where they may come back.",
        ),
        *[
            click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None)
            for name, kind in HYPERPARAMETERS.items()
        ],
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@data_options
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
)
@click.option(
    "--search",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random-search trials on a validation split carved from train.",
)
@click.option(
    "--sessions/--no-sessions",
    default=True,
    show_default=True,
    help="Fit the session model anonymous visitors are served from (else ALS fold-in).",
)
@click.option(
    "--refit",
    type=click.Choice(["warm", "cold"]),
    default="warm",
    show_default=True,
    help="ALS's fit on the whole log after the evaluation: warm starts from the evaluated "
    "model's factors with a fifth of the iterations; cold fits from scratch (slower; on "
    "RetailRocket NDCG@10 0.023-0.027 over three seeds against 0.021-0.022 warm).",
)
@click.option(
    "--engine",
    type=click.Choice(["implicit", "spark"]),
    default="implicit",
    show_default=True,
    help="What fits ALS: implicit on this machine, or Spark MLlib (pyspark; local mode "
    "unless SPARK_MASTER names a cluster), into the same artifact.",
)
@click.option(
    "--streaming",
    is_flag=True,
    help="For an exported log larger than memory: the matrix built in chunks, trending "
    "and sessions from the last --recent-days; no evaluation, default blend weights "
    "(training/streamed_training.py).",
)
@click.option(
    "--recent-days",
    type=click.FloatRange(min=7),
    default=RECENT_DAYS,
    show_default=True,
    help="With --streaming: days of the log's end held in memory.",
)
def train(
    source: DataRequest,
    models_dir: Path,
    search: int,
    sessions: bool,
    refit: str,
    engine: str,
    streaming: bool,
    recent_days: float,
) -> None:
    """Train a model version from an interaction log and write models/<version>/."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = source.options(search)
    options.sessions = sessions
    if engine == "spark":
        if options.model != "als":
            raise click.BadParameter("--engine spark fits ALS only", param_hint="--engine")
        options.model = "spark_als"
    if refit == "cold":
        options.warm_start_share = 0.0
    if streaming:
        train_streaming(source, options, models_dir, recent_days)
        return
    interactions, load_report = source.load()
    options.ground_truth = find_ground_truth(source.events_path)
    result = run_training(interactions, source.weights(), options)
    result.artifact.manifest["load"] = load_report.to_dict()
    folder = result.artifact.save(models_dir)
    if result.report is not None:
        write_report(result.report, folder / "report")
        click.echo(result.report.to_markdown(), err=True)
    truth = result.artifact.manifest.get("ground_truth")
    if truth:
        figures = ", ".join(
            f"{name} ndcg@10 {truth[name]['ndcg@10']:.4f}" for name in (options.model, "popular")
        )
        click.echo(
            f"against the generator's ground truth ({truth['users']:,} users): {figures}", err=True
        )
    click.echo(result.artifact.version)


def train_streaming(
    source: DataRequest, options: TrainOptions, models_dir: Path, recent_days: float
) -> None:
    """``recsvc train --streaming``: the exporter's log only; says what it left out."""
    fmt = detect_format(source.events_path) if source.fmt == "auto" else source.fmt
    if fmt != "jsonl":
        raise click.BadParameter(
            f"--streaming reads the exporter's JSONL log folder; {source.events_path} "
            f"is {fmt} (train without --streaming)",
            param_hint="--streaming",
        )
    if options.search:
        raise click.BadParameter("--search needs the evaluation --streaming skips")
    result = train_streamed(source.events_path, source.weights(), options, recent_days=recent_days)
    folder = result.artifact.save(models_dir)
    figures = describe(result)
    click.echo(
        f"streamed {figures['events']:,} events ({figures['users']:,} users x "
        f"{figures['items']:,} items), {figures['recent_events']:,} of the last "
        f"{recent_days:g} days held for trending and sessions; not evaluated, default "
        f"blend weights: compare it with `recsvc compare` before publishing",
        err=True,
    )
    click.echo(folder.name)


@click.command()
@data_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.json, report.md and report.png.",
)
@click.option(
    "--protocol",
    type=click.Choice(["split", "retailrocket-top-n", "retailrocket-sessions"]),
    default="split",
    show_default=True,
    help="split: the train command's evaluation; or a named "
    "protocol on the real data (training/protocols.py).",
)
def evaluate(source: DataRequest, out: Path, protocol: str) -> None:
    """Evaluate the model and the baselines on a time split; keep no model."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if protocol != "split":
        # The named protocols fix their own split and models (training/protocols.py,
        # whose own command line has the extra flags); this runs them on --events.
        from training.protocols import main as run_protocol

        run_protocol([protocol, "--data", str(source.events_path), "--out", str(out)])
        return
    interactions, _ = source.load()
    options = source.options()
    report, _, _ = tune_and_evaluate(interactions, source.weights(), options, options.params)
    report.data.pop("seconds", None)
    paths = write_report(report, out)
    click.echo(report.to_markdown())
    click.echo(json.dumps({k: str(v) for k, v in paths.items()}))
