"""``recsvc train`` and ``recsvc evaluate``: thin click commands over ``training.pipeline``.

The options are a contract release scripts and load tests code against: ``--events PATH
[--format auto|jsonl|retailrocket|csv|tsv|parquet] [column flags] [--models-dir models]
[--model als|bpr] [hyperparameter flags] [--search N]``; ``train`` prints the new version.

A user's mistake (a column not in the file, an unreadable file, a split that leaves too
few test users) is one line naming the flag and what would work, exit code 2, no
traceback; ``--debug`` shows the traceback instead (:func:`user_errors`).
"""

from __future__ import annotations

import functools
import json
import logging
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click

from recsvc.registry.commands import models_dir_option
from recsvc.settings import Settings
from training.columns import LoadError
from training.evaluate import write_report
from training.ground_truth import find_ground_truth
from training.interactions import EVENT_CODES, Interactions
from training.loaders import EVENT_ALIASES, ColumnMap, LoadReport, detect_format, load_events
from training.pipeline import TrainOptions, tune_and_evaluate
from training.pipeline import train as run_training
from training.served import POSITIVES
from training.splits import SplitSpec
from training.streamed_training import RECENT_DAYS, describe, train_streamed
from training.sufficiency import MIN_TEST_TARGETS, MIN_TEST_USERS, EvaluationRefused
from training.weights import load_weights

FORMATS = ["auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"]
HYPERPARAMETERS = {
    "factors": int,
    "regularization": float,
    "alpha": float,
    "iterations": int,
    "learning_rate": float,
}
SPLITS = ["time", "leave-last", "user-fraction", "user-kfold"]
# The flag that sets each ColumnMap role, to name it in an error.
ROLE_FLAGS = {
    "user": "--user-col",
    "item": "--item-col",
    "time": "--time-col",
    "time_unit": "--time-unit",
    "event": "--event-col",
    "weight": "--weight-col",
    "min_weight": "--min-weight",
}


def _unreadable() -> tuple[type[BaseException], ...]:
    """What reading a file that is not what it claims raises (a broken gzip, bytes that
    are not UTF-8, a .parquet that is not Parquet)."""
    errors: tuple[type[BaseException], ...] = (OSError, UnicodeDecodeError, EOFError, zlib.error)
    try:
        import pyarrow

        return (*errors, pyarrow.ArrowException)
    except ImportError:  # pragma: no cover - pyarrow is optional
        return errors


UNREADABLE = _unreadable()


class UserError(click.ClickException):
    """A mistake in the command line or its input: one line, exit code 2 (as click's
    usage errors), no traceback."""

    exit_code = 2


def user_errors(function: Callable) -> Callable:
    """Turn the errors a user's input causes into :class:`UserError`, unless the command
    got ``--debug`` (then the traceback shows)."""

    @functools.wraps(function)
    def command(*args: Any, debug: bool, **kwargs: Any) -> Any:
        if debug:
            logging.getLogger().setLevel(logging.DEBUG)
            return function(*args, **kwargs)
        try:
            return function(*args, **kwargs)
        except LoadError as error:
            flag = ROLE_FLAGS.get(error.role or "")
            hint = ' (--event-col "" for none)' if error.role == "event" else ""
            raise UserError(f"{flag or '--events'}: {error}{hint}") from None
        except EvaluationRefused as error:
            raise UserError(f"--split: {error}") from None

    return click.option(
        "--debug", is_flag=True, help="Show the traceback of an error instead of one line."
    )(command)


@dataclass
class DataRequest:
    """What both commands were asked to read and fit, from the shared options."""

    events_path: Path
    fmt: str
    columns: dict[str, Any]
    weights_path: Path | None
    model: str
    split: SplitSpec
    target_events: str
    identity: str
    min_test_users: int
    min_test_targets: int
    compare: str
    exclude_seen: bool
    hyper: dict[str, Any]
    # --target-events resolved against the log by load().
    resolved_targets: tuple[str, ...] | None = POSITIVES

    SHARED = (
        "events_path",
        "fmt",
        "user_col",
        "item_col",
        "time_col",
        "event_col",
        "weight_col",
        "min_weight",
        "time_unit",
        "weights_path",
        "model",
        "target_events",
        "identity",
        "min_test_users",
        "min_test_targets",
        "compare",
        "exclude_seen",
    )
    # Split flags to SplitSpec fields.
    SPLIT: ClassVar[dict[str, str]] = {
        "split": "method",
        "test_days": "test_days",
        "holdout": "holdout",
        "test_fraction": "fraction",
        "folds": "folds",
    }

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> DataRequest:
        """Take the shared options (and the hyperparameters) out of a command's kwargs."""
        given = {name: kwargs.pop(name) for name in cls.SHARED}
        hyper = {name: kwargs.pop(name) for name in HYPERPARAMETERS}
        split = SplitSpec(**{field: kwargs.pop(flag) for flag, field in cls.SPLIT.items()})
        columns = {
            "user": given.pop("user_col"),
            "item": given.pop("item_col"),
            "event": given.pop("event_col"),
            "weight": given.pop("weight_col"),
            "min_weight": given.pop("min_weight"),
            "time_unit": given.pop("time_unit"),
        }
        time_col = given.pop("time_col")
        if time_col:
            columns["time"] = time_col
        return cls(columns=columns, hyper=hyper, split=split, **given)

    def column_map(self) -> ColumnMap | None:
        """The column flags as a :class:`ColumnMap` (None: the format's own columns).
        ``--event-col ""`` means no event column."""
        given = {k: v for k, v in self.columns.items() if v is not None}
        if given.get("event") == "":
            given["event"] = None
        if set(given) <= {"time_unit"}:
            return None
        if given.get("min_weight") is not None and not given.get("weight"):
            raise click.BadParameter(
                "needs --weight-col, the column it applies to", param_hint="--min-weight"
            )
        return ColumnMap(**given)

    def load(self) -> tuple[Interactions, LoadReport]:
        """The interactions and the load report, with lines on what was dropped and on
        what the rows became (interactions, weights, test targets)."""
        if self.identity != "visitor" and self.fmt not in ("auto", "jsonl"):
            raise click.BadParameter(
                "applies to the service's JSONL logs only", param_hint="--identity"
            )
        try:
            interactions, report = load_events(
                self.events_path, self.fmt, self.column_map(), identity=self.identity
            )
        except UNREADABLE as error:
            # A LoadError, so that --debug shows the original error's traceback.
            raise LoadError(f"cannot read the log: {error}") from error
        if not report.kept:
            raise UserError(f"--events: {self.events_path} has no interaction to train on")
        dropped = ", ".join(f"{k} {v:,}" for k, v in report.dropped.items()) or "none"
        targets = self.targets(interactions)
        click.echo(
            f"loaded {report.kept:,} of {report.rows:,} rows "
            f"({report.users:,} users, {report.items:,} items); dropped: {dropped}\n"
            f"rows: {report.roles_line()}; test targets: "
            + (", ".join(targets) if targets else "every kept row")
            + " (--target-events)",
            err=True,
        )
        self.resolved_targets = targets
        report.target_events = list(targets) if targets else "all"
        return interactions, report

    def targets(self, interactions: Interactions) -> tuple[str, ...] | None:
        """``--target-events`` resolved: the named types (aliases allowed), or ``auto``:
        the purchase-side ones when the log has any, else every type (None)."""
        present = interactions.event_counts()
        if self.target_events.strip().lower() == "auto":
            wanted = tuple(name for name in POSITIVES if name in present)
            return wanted or None
        if self.target_events.strip().lower() == "all":
            return None
        names = [t.strip().lower() for t in self.target_events.split(",") if t.strip()]
        unknown = [name for name in names if EVENT_ALIASES.get(name) not in EVENT_CODES]
        if unknown:
            raise click.BadParameter(
                f"unknown event types {unknown}; use auto, all or some of {sorted(present)}",
                param_hint="--target-events",
            )
        wanted = tuple(dict.fromkeys(EVENT_ALIASES[name] for name in names))
        if not set(wanted) & set(present):
            raise click.BadParameter(
                f"the log has no {', '.join(wanted)} event; it has "
                + ", ".join(f"{k} {v:,}" for k, v in present.items()),
                param_hint="--target-events",
            )
        return wanted

    def weights(self):
        try:
            return load_weights(self.weights_path)
        except (ValueError, tomllib.TOMLDecodeError, TypeError) as error:
            raise click.BadParameter(str(error), param_hint="--weights") from None

    def options(self, search: int = 0) -> TrainOptions:
        params = {k: v for k, v in self.hyper.items() if v is not None}
        names = tuple(name.strip() for name in self.compare.split(",") if name.strip())
        unknown = set(names) - {"als", "bpr", "itemknn", "popular", "trending"}
        if unknown:
            raise click.BadParameter(f"unknown models {sorted(unknown)}", param_hint="--compare")
        return TrainOptions(
            model=self.model,
            params=params,
            test_days=self.split.test_days,
            split=self.split,
            target_events=self.resolved_targets,
            min_test_users=self.min_test_users,
            min_test_targets=self.min_test_targets,
            search=search,
            compare=names,
            exclude_seen=self.exclude_seen,
        )


# Options of every command that trains (recsvc train, recsvc retrain).
weights_option = click.option(
    "--weights",
    "weights_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Event weights TOML [default: training/weights.toml]",
)
model_option = click.option(
    "--model", type=click.Choice(["als", "bpr"]), default="als", show_default=True
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
        click.option(
            "--event-col",
            default=None,
            help='CSV/TSV/Parquet: event type column [default: event]; "" for none: every '
            "row is one interaction (and a test target).",
        ),
        click.option(
            "--weight-col",
            default=None,
            help="CSV/TSV/Parquet: a number per row (a rating, a quantity) that multiplies "
            "its event's weight.",
        ),
        click.option(
            "--min-weight",
            type=float,
            default=None,
            help="Drop rows whose --weight-col is below this (4: ratings 4-5 as positives).",
        ),
        click.option(
            "--target-events",
            default="auto",
            show_default=True,
            help="Event types that are test targets, comma-separated; auto: add_to_cart "
            "and purchase when the log has them, else all; all: every type.",
        ),
        click.option(
            "--identity",
            type=click.Choice(["visitor", "user", "stitched"]),
            default="visitor",
            show_default=True,
            help="JSONL: whose row it is: the visitor id, the logged-in user id (rows "
            "without one dropped), or stitched: the user id a visitor last logged in "
            "with, else the visitor id.",
        ),
        click.option(
            "--time-unit",
            type=click.Choice(["auto", "s", "ms", "iso"]),
            default="auto",
            show_default=True,
        ),
        weights_option,
        model_option,
        click.option(
            "--split",
            type=click.Choice(SPLITS),
            default="time",
            show_default=True,
            help="Evaluation split: time (the last --test-days for everyone), leave-last "
            "(each user's events from their --holdout-th last target event on), "
            "user-fraction (each user's last --test-fraction of events), user-kfold "
            "(--folds parts of the users, each tested as leave-last; every user once).",
        ),
        click.option(
            "--test-days",
            type=click.FloatRange(min=0),
            default=7.0,
            show_default=True,
            help="--split time: days at the end of the log held out (0: no evaluation).",
        ),
        click.option(
            "--holdout",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="--split leave-last / user-kfold: target events held out per test user.",
        ),
        click.option(
            "--test-fraction",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.2,
            show_default=True,
            help="--split user-fraction: share of each user's events held out.",
        ),
        click.option(
            "--folds",
            type=click.IntRange(min=2),
            default=5,
            show_default=True,
            help="--split user-kfold: folds (each a full evaluation).",
        ),
        click.option(
            "--min-test-users",
            type=click.IntRange(min=0),
            default=MIN_TEST_USERS,
            show_default=True,
            help="Refuse to evaluate (and train) with fewer test users.",
        ),
        click.option(
            "--min-test-targets",
            type=click.IntRange(min=0),
            default=MIN_TEST_TARGETS,
            show_default=True,
            help="Refuse to evaluate (and train) with fewer test targets.",
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
            click.option(
                f"--{name.replace('_', '-')}",
                name,
                type=click.IntRange(min=1)
                if kind is int
                else click.FloatRange(min=0, min_open=name != "regularization"),
                default=None,
            )
            for name, kind in HYPERPARAMETERS.items()
        ],
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@user_errors
@data_options
@models_dir_option
@click.option(
    "--eval/--no-eval",
    "run_evaluation",
    default=True,
    show_default=True,
    help="--no-eval: skip the evaluation (and its refusal); the version's manifest says "
    '"evaluated": false.',
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
    models_dir: Path | None,
    run_evaluation: bool,
    search: int,
    sessions: bool,
    refit: str,
    engine: str,
    streaming: bool,
    recent_days: float,
) -> None:
    """Train a model version from an interaction log and write <models dir>/<version>/."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir = models_dir or Settings.from_env().models_dir
    if streaming:
        options = fit_options(source, search, sessions, refit, engine)
        train_streaming(source, options, models_dir, recent_days)
        return
    interactions, load_report = source.load()  # resolves --target-events for the options
    options = fit_options(source, search, sessions, refit, engine)
    options.evaluate = run_evaluation
    options.ground_truth = find_ground_truth(source.events_path)
    result = run_training(interactions, source.weights(), options)
    result.artifact.manifest["load"] = load_report.to_dict()
    try:
        folder = result.artifact.save(models_dir)
    except OSError as error:
        raise UserError(f"--models-dir: cannot write the version: {error}") from None
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


def fit_options(
    source: DataRequest, search: int, sessions: bool, refit: str, engine: str
) -> TrainOptions:
    """The train command's options beside the data's: the session model, the refit, the
    engine."""
    options = source.options(search)
    options.sessions = sessions
    if engine == "spark":
        if options.model != "als":
            raise click.BadParameter("--engine spark fits ALS only", param_hint="--engine")
        options.model = "spark_als"
    if refit == "cold":
        options.warm_start_share = 0.0
    return options


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
@user_errors
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
