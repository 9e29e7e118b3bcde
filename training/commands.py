"""``recsvc train`` and ``recsvc evaluate``: thin click commands over ``training.pipeline``.

The options are a contract release scripts and load tests code against: ``--events PATH
[--format auto|jsonl|retailrocket|csv|tsv|parquet] [column flags] [--models-dir models]
[--model als|bpr] [hyperparameter flags] [--search N]``; ``train`` prints the new version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from training.evaluate import write_report
from training.ground_truth import find_ground_truth
from training.loaders import ColumnMap, load_events
from training.pipeline import TrainOptions, evaluate_split
from training.pipeline import train as run_training
from training.weights import load_weights

FORMATS = ["auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"]
HYPERPARAMETERS = {
    "factors": int,
    "regularization": float,
    "alpha": float,
    "iterations": int,
    "learning_rate": float,
}


def data_options(function: Callable) -> Callable:
    """The input options both commands share."""
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
        *[
            click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None)
            for name, kind in HYPERPARAMETERS.items()
        ],
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _load(events_path: Path, fmt: str, columns: dict[str, Any]):
    column_map = None
    if columns.get("user") or columns.get("item"):
        given = {k: v for k, v in columns.items() if v is not None}
        column_map = ColumnMap(**given)
    interactions, report = load_events(events_path, fmt, column_map)
    dropped = ", ".join(f"{k} {v:,}" for k, v in report.dropped.items()) or "none"
    click.echo(
        f"loaded {report.kept:,} of {report.rows:,} rows "
        f"({report.users:,} users, {report.items:,} items); dropped: {dropped}",
        err=True,
    )
    return interactions, report


def _options(
    model: str, test_days: float, search: int, compare: str, hyper: dict[str, Any]
) -> TrainOptions:
    params = {k: v for k, v in hyper.items() if v is not None}
    names = tuple(name.strip() for name in compare.split(",") if name.strip())
    unknown = set(names) - {"als", "bpr", "itemknn", "popular", "trending"}
    if unknown:
        raise click.BadParameter(f"unknown models {sorted(unknown)}", param_hint="--compare")
    return TrainOptions(
        model=model, params=params, test_days=test_days, search=search, compare=names
    )


def _columns(user_col, item_col, time_col, event_col, weight_col, time_unit) -> dict[str, Any]:
    columns = {
        "user": user_col,
        "item": item_col,
        "event": event_col,
        "weight": weight_col,
        "time_unit": time_unit,
    }
    if time_col:
        columns["time"] = time_col
    return columns


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
def train(
    events_path,
    fmt,
    user_col,
    item_col,
    time_col,
    event_col,
    weight_col,
    time_unit,
    weights_path,
    model,
    test_days,
    compare,
    models_dir,
    search,
    **hyper,
) -> None:
    """Train a model version from an interaction log and write models/<version>/."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    columns = _columns(user_col, item_col, time_col, event_col, weight_col, time_unit)
    interactions, load_report = _load(events_path, fmt, columns)
    options = _options(model, test_days, search, compare, hyper)
    options.ground_truth = find_ground_truth(events_path)
    result = run_training(interactions, load_weights(weights_path), options)
    result.artifact.manifest["load"] = load_report.to_dict()
    folder = result.artifact.save(models_dir)
    if result.report is not None:
        write_report(result.report, folder / "report")
        click.echo(result.report.to_markdown(), err=True)
    truth = result.artifact.manifest.get("ground_truth")
    if truth:
        figures = ", ".join(
            f"{name} ndcg@10 {truth[name]['ndcg@10']:.4f}" for name in (model, "popular")
        )
        click.echo(
            f"against the generator's ground truth ({truth['users']:,} users): {figures}", err=True
        )
    click.echo(result.artifact.version)


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
    type=click.Choice(["split", "retailrocket-top-n"]),
    default="split",
    show_default=True,
    help="split: the train command's evaluation; or a named "
    "protocol on the real data (training/protocols.py).",
)
def evaluate(
    events_path,
    fmt,
    user_col,
    item_col,
    time_col,
    event_col,
    weight_col,
    time_unit,
    weights_path,
    model,
    test_days,
    compare,
    out,
    protocol,
    **hyper,
) -> None:
    """Evaluate the model and the baselines on a time split; keep no model."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if protocol != "split":
        from training.protocols import PROTOCOLS

        report = PROTOCOLS[protocol](events_path)
    else:
        columns = _columns(user_col, item_col, time_col, event_col, weight_col, time_unit)
        interactions, _ = _load(events_path, fmt, columns)
        options = _options(model, test_days, 0, compare, hyper)
        report, _ = evaluate_split(
            interactions, load_weights(weights_path), options, options.params
        )
    paths = write_report(report, out)
    click.echo(report.to_markdown())
    click.echo(json.dumps({k: str(v) for k, v in paths.items()}))
