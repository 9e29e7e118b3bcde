"""Run scorers on one fold, the same way for each, and report: JSON, Markdown and a plot.

Each scorer is fit on the fold's train matrix, asked for the top ``max(k)`` items of
every test user with the fold's exclusions (one call, :meth:`Scorer.recommend`, so every
scorer filters seen items identically), and scored with
:func:`training.metrics.compute_metrics`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.core.events import format_timestamp
from training.folds import Fold
from training.metrics import compute_metrics
from training.scorers import Scorer

METRIC_ORDER = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage")


@dataclass
class ModelResult:
    """One scorer's run: what it was, how long it took, what it scored.

    ``per_user`` (the per-visitor protocol's, :func:`training.served.model_result`): each
    metric's value per test user, in the test's user order, behind its mean and interval;
    kept in memory (folds are pooled from it), left out of :meth:`Report.to_dict`.
    """

    name: str
    scorer: str
    params: dict[str, Any]
    fit_seconds: float
    recommend_seconds: float
    metrics: dict[str, float]
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Report:
    """An evaluation: the split, the fold's counts, the weights, every model's result, and
    (``data``) whatever the caller knows of the source: its load report, timings."""

    ks: tuple[int, ...]
    split: dict[str, Any]
    fold: dict[str, Any]
    matrix: dict[str, Any]
    weights: dict[str, Any]
    models: list[ModelResult] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: format_timestamp(datetime.now(UTC)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        values = asdict(self)
        values["ks"] = list(self.ks)
        for model in values["models"]:
            model.pop("per_user", None)
        return values

    def metric(self, name: str) -> dict[str, float]:
        """Model name to the value of metric ``name`` (e.g. ``"ndcg@10"``)."""
        return {model.name: model.metrics[name] for model in self.models}

    def to_markdown(self) -> str:
        """A readable summary: the split, the counts, and one table per cutoff."""
        split, fold = self.split, self.fold
        counts = ", ".join(
            f"{name.replace('_', ' ')} {value:,}"
            for name, value in fold.items()
            if name not in ("users", "targets") and isinstance(value, int)
        )
        lines = [
            f"# Offline evaluation ({self.created})",
            "",
            f"Split: `{split['method']}` {json.dumps(split['params'])}; "
            f"train {split['train_events']:,} events, test {split['test_events']:,} events.",
            f"Test users scored: {fold['users']:,} with {fold['targets']:,} targets. "
            f"Dropped: {split['dropped_test_users']:,} users with no train event "
            f"({split['dropped_test_events']:,} events). Counts: {counts}.",
            f"Train matrix: {self.matrix['users']:,} users × {self.matrix['items']:,} items, "
            f"{self.matrix['nonzeros']:,} nonzeros.",
            "",
        ]
        if self.models and f"ndcg@{self.ks[0]}_low" in self.models[0].metrics:
            lines += [
                f"95% CI: bootstrap interval of the mean over the {fold['users']:,} test "
                "users (1,000 resamples); differences inside it are noise.",
                "",
            ]
        for k in self.ks:
            lines += [*self._table(k), ""]
        lines += ["| model | parameters |", "|---|---|"]
        lines += [f"| {m.name} | `{json.dumps(m.params)}` |" for m in self.models]
        return "\n".join(lines) + "\n"

    def _table(self, k: int) -> list[str]:
        intervals = all(f"ndcg@{k}_low" in m.metrics for m in self.models) and self.models
        header = ["model", *(f"{name}@{k}" for name in METRIC_ORDER)]
        if intervals:
            header.insert(3, f"recall@{k} 95% CI")
            header.insert(5, f"ndcg@{k} 95% CI")
        header += ["fit s", "recommend s"]
        rows = [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for m in self.models:
            cells = [f"{m.metrics[f'{name}@{k}']:.4f}" for name in METRIC_ORDER]
            if intervals:
                for position, name in ((2, "recall"), (4, "ndcg")):
                    low, high = m.metrics[f"{name}@{k}_low"], m.metrics[f"{name}@{k}_high"]
                    cells.insert(position, f"{low:.4f} – {high:.4f}")
            row = [m.name, *cells, f"{m.fit_seconds:.1f}", f"{m.recommend_seconds:.1f}"]
            rows.append("| " + " | ".join(row) + " |")
        return rows


def evaluate(
    scorers: Sequence[Scorer] | Mapping[str, Scorer],
    fold: Fold,
    k: tuple[int, ...] = (10, 20),
    *,
    fit: bool = True,
    show_progress: bool = False,
) -> Report:
    """Fit (unless ``fit`` is False) and score every scorer on ``fold``.

    Parameters
    ----------
    scorers : sequence of Scorer, or mapping of report name to Scorer
        A sequence uses each scorer's ``name``; names must be unique.
    fold : Fold
    k : tuple of int
        Cutoffs.
    fit : bool
        False when the scorers are already fit on ``fold.train``.
    show_progress : bool
        tqdm bars for fitting and recommending.

    Returns
    -------
    Report
    """
    named = dict(scorers) if isinstance(scorers, Mapping) else {s.name: s for s in scorers}
    if not isinstance(scorers, Mapping) and len(named) != len(scorers):
        raise ValueError("scorer names must be unique: pass a mapping of names to scorers")
    report = Report(
        ks=tuple(k),
        split=fold.split,
        fold=fold.report.to_dict(),
        matrix=fold.train.report.to_dict(),
        weights=fold.train.config.to_dict(),
    )
    for name, scorer in named.items():
        report.models.append(_run(name, scorer, fold, report.ks, fit, show_progress))
    return report


def _run(
    name: str, scorer: Scorer, fold: Fold, ks: tuple[int, ...], fit: bool, show_progress: bool
) -> ModelResult:
    started = time.perf_counter()
    if fit:
        scorer.fit(fold.train, show_progress=show_progress)
    fitted = time.perf_counter()
    ids, _ = scorer.recommend(
        fold.users, max(ks), exclude=fold.exclude, show_progress=show_progress
    )
    done = time.perf_counter()
    return ModelResult(
        name=name,
        scorer=type(scorer).__name__,
        params=scorer.params(),
        fit_seconds=round(fitted - started, 3),
        recommend_seconds=round(done - fitted, 3),
        metrics=compute_metrics(ids, fold.targets, ks, fold.train.shape[1]),
    )


def write_report(report: Report, directory: Path | str, stem: str = "report") -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` under ``directory``.

    Returns
    -------
    dict of str to Path
        ``{"json": ..., "markdown": ..., "plot": ...}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / f"{stem}.json",
        "markdown": directory / f"{stem}.md",
        "plot": directory / f"{stem}.png",
    }
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    plot_metrics(report, paths["plot"])
    return paths


def plot_metrics(report: Report, path: Path | str) -> Path:
    """Grouped bars of every metric per model, one panel per cutoff, as a PNG.

    Uses matplotlib's object API with the Agg canvas, so no display and no global
    pyplot state are involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.6 * len(report.ks)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(report.ks), 1, squeeze=False)[:, 0]
    width = 0.8 / max(len(report.models), 1)
    for ax, k in zip(axes, report.ks, strict=True):
        for index, model in enumerate(report.models):
            values = [model.metrics[f"{name}@{k}"] for name in METRIC_ORDER]
            positions = [
                x + (index - (len(report.models) - 1) / 2) * width for x in range(len(values))
            ]
            ax.bar(positions, values, width, label=model.name, yerr=_error_bars(model, k))
        ax.set_xticks(range(len(METRIC_ORDER)), [f"{name}@{k}" for name in METRIC_ORDER])
        ax.set_ylabel("mean over test users")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 5))
    intervals = any(f"ndcg@{report.ks[0]}_low" in m.metrics for m in report.models)
    note = ", bars: bootstrap 95% intervals" if intervals else ""
    axes[0].set_title(f"{report.split['method']}: {report.fold['users']:,} test users{note}")
    figure.savefig(path, dpi=110)
    return Path(path)


def _error_bars(model: ModelResult, k: int) -> np.ndarray | None:
    """Shape (2, len(METRIC_ORDER)): distances below and above each value to its 95%
    interval where the model has one (NDCG and recall), else 0; None without any."""
    if f"ndcg@{k}_low" not in model.metrics:
        return None
    bars = np.zeros((2, len(METRIC_ORDER)))
    for column, name in enumerate(METRIC_ORDER):
        key = f"{name}@{k}"
        if f"{key}_low" in model.metrics:
            value = model.metrics[key]
            bars[0, column] = max(value - model.metrics[f"{key}_low"], 0.0)
            bars[1, column] = max(model.metrics[f"{key}_high"] - value, 0.0)
    return bars
