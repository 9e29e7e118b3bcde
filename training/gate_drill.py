"""The retraining gate shown on a generated store: ``python -m training.gate_drill --out DIR``.

Three exporter-format log folders of one generated store (:func:`write_gate_logs`):
``base`` (all but the last ``fresh_days`` days), ``shuffled`` (every day, the item ids of
the base days shuffled across their events: each item as frequent as before, nobody's
items their own) and ``full`` (every day). ``recsvc retrain`` runs on each in turn against
the Redis of ``REDIS_URL`` in a namespace of its own (deleted at the end): the first
publishes (nothing to compare with), the shuffled one must be refused, the full one
published; the decisions are printed as ``recsvc models`` lists them.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click
import numpy as np

from recsvc.keys import KeySpace
from recsvc.redis_client import command_line_url, connect
from recsvc.registry.decisions import read_decisions
from recsvc.settings import Settings
from recsvc.store.models import ModelStore
from recsvc.store.namespace import delete_namespace
from recsvc.synth.generator import GenerateConfig, generate
from training.pipeline import TrainOptions
from training.retrain import RetrainOptions, retrain_once
from training.weights import load_weights


@dataclass(frozen=True)
class GateLogs:
    """The three log folders (module docstring)."""

    base: Path
    full: Path
    shuffled: Path
    fresh_days: int


def write_gate_logs(
    out: Path,
    visitors: int = 3000,
    items: int = 300,
    days: int = 28,
    fresh_days: int = 7,
    seed: int = 5,
) -> GateLogs:
    """Generate a store under ``out/store`` and write the three folders beside it."""
    config = GenerateConfig(
        visitors=visitors,
        items=items,
        days=days,
        seed=seed,
        out=out / "store",
        end_date=date(2026, 3, 1),
    )
    generate(config)
    day_folders = sorted((out / "store" / "events").iterdir())
    base_days = len(day_folders) - fresh_days
    logs = {}
    for name, count in (("base", base_days), ("full", len(day_folders)), ("shuffled", None)):
        logs[name] = out / name
        for day in day_folders[:count]:
            shutil.copytree(day, logs[name] / day.name)
    shuffle_items(sorted(logs["shuffled"].iterdir())[:base_days], seed=1)
    return GateLogs(fresh_days=fresh_days, **logs)


def shuffle_items(day_folders: list[Path], seed: int) -> None:
    """Shuffle the item ids of every event of these days across those events."""
    files = [f for folder in day_folders for f in sorted(folder.iterdir())]
    records = [[json.loads(line) for line in f.read_text().splitlines()] for f in files]
    items = [r["item_id"] for rs in records for r in rs if "item_id" in r]
    shuffled = iter(np.random.default_rng(seed).permutation(items).tolist())
    for path, rs in zip(files, records, strict=True):
        for record in rs:
            if "item_id" in record:
                record["item_id"] = next(shuffled)
        path.write_text("".join(json.dumps(r) + "\n" for r in rs))


@click.command()
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Work folder."
)
@click.option("--visitors", type=click.IntRange(min=100), default=3000, show_default=True)
@click.option("--items", type=click.IntRange(min=10), default=300, show_default=True)
@click.option(
    "--warm-and-cold",
    is_flag=True,
    help="Then, with the first version made current again each time, retrain on the full "
    "log warm and cold: how the two starts score against the same current version.",
)
def main(out: Path, visitors: int, items: int, warm_and_cold: bool) -> None:
    """Generate the logs, retrain on each, print the decisions."""
    shutil.rmtree(out, ignore_errors=True)
    logs = write_gate_logs(out, visitors, items)
    settings = Settings.from_env()
    client = connect(command_line_url(settings), settings)
    namespace = f"gate-drill-{uuid.uuid4().hex[:8]}"
    store = ModelStore(client, KeySpace(namespace))
    runs = [(logs.base, True), (logs.shuffled, True), (logs.full, True)]
    if warm_and_cold:
        runs += [(logs.full, True), (logs.full, False)]
    try:
        first = None
        for n, (events, warm) in enumerate(runs):
            if n >= 3:  # the warm and cold runs: each against the first version
                store.make_current(first)
            options = RetrainOptions(
                events=events,
                models_dir=out / "models",
                test_days=logs.fresh_days,
                warm=warm,
                train=TrainOptions(show_progress=False),
            )
            decision = retrain_once(options, store, load_weights())
            first = first or decision.candidate
    finally:
        delete_namespace(client, namespace)
    for decision in read_decisions(out / "models"):
        click.echo(decision.summary())
        manifest = out / "models" / str(decision.candidate) / "manifest.json"
        if manifest.exists():
            _echo_start(json.loads(manifest.read_text()))
        if "comparison_markdown" in decision.figures:
            click.echo("\n" + decision.figures["comparison_markdown"] + "\n")


def _echo_start(manifest: dict) -> None:
    """How the candidate started and what ALS alone and the served chain scored in its
    own evaluation (the pipeline's report, on the same test visitors)."""
    metrics = manifest.get("metrics", {})
    figures = ", ".join(
        f"{name} {metrics[name]['ndcg@10']:.4f}" for name in ("served", "als") if name in metrics
    )
    click.echo(f"  warm start from: {manifest.get('warm_start')}; own report NDCG@10: {figures}")


if __name__ == "__main__":
    main()
