"""Next-item evaluation of session recommenders (the protocol of Hidasi & Czapp 2023).

Every prefix of a test session predicts the next item among all train items, ranks
counted conservatively (ties against the target); Recall@k and MRR@k average over
predictions. Every prediction is scored by :func:`recsvc.scoring.session_model.dense_scores`,
the session scoring the service runs (its top is :func:`recommend_session`), spread over
a thread per core; a sample is also timed one session at a time through
:func:`recommend_session`, the call the service makes.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recsvc.core.events import format_timestamp
from recsvc.core.profile import apply_event, new_visitor
from recsvc.scoring.session_model import (
    SESSION_GAP_SECONDS,
    SessionModel,
    dense_scores,
    recommend_session,
)
from recsvc.scoring.state import state_from_profile
from recsvc.settings import Settings
from training.sessions import SessionBatch, Sessions, next_item_cases
from training.threads import default_num_threads, single_threaded_blas


@dataclass
class NextItemResult:
    """One model's next-item evaluation.

    Attributes
    ----------
    name : str
    config : dict
    metrics : dict of str to float
        ``recall@k`` and ``mrr@k`` averaged over predictions.
    predictions, sessions : int
    fit_seconds : float
    score_seconds : float
        Scoring every prediction (wall, a thread per core).
    latency_ms : dict of str to float
        One session at a time through :func:`recommend_session`: ``p50``, ``p99``.
    """

    name: str
    config: dict[str, Any]
    metrics: dict[str, float]
    predictions: int
    sessions: int
    fit_seconds: float
    score_seconds: float
    latency_ms: dict[str, float]


def conservative_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each target: ``|{j : score_j ≥ score_target}|``, so ties count against it.

    GRU4Rec's evaluation (``mode='conservative'``): a model that gives many items the
    same score gains nothing from the order they happen to be in.

    Parameters
    ----------
    scores : ndarray, shape (b, n_items), float
    targets : ndarray, shape (b,), int

    Returns
    -------
    ndarray, shape (b,), int64
        From 1.
    """
    target_scores = scores[np.arange(len(targets)), targets]
    return (scores >= target_scores[:, None]).sum(axis=1).astype(np.int64)


def next_item_metrics(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """Recall@k = mean of ``[rank ≤ k]``; MRR@k = mean of ``[rank ≤ k] / rank``."""
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"mrr@{k}"] = float((hit / ranks).mean()) if len(ranks) else 0.0
    return out


def evaluate_next_item(
    name: str,
    model: SessionModel,
    sessions: Sessions,
    *,
    ks: tuple[int, ...] = (20,),
    batch_size: int = 256,
    latency_sample: int = 500,
    as_served: bool = False,
    show_progress: bool = False,
) -> NextItemResult:
    """Score every next-item prediction of ``sessions`` (all train items ranked).

    Parameters
    ----------
    name : str
    model : SessionModel
    sessions : Sessions
        In the model's item rows.
    ks : tuple of int
    batch_size : int
        Predictions per unit of work handed to a thread.
    latency_sample : int
        Predictions also timed one by one through :func:`recommend_session`.
    as_served : bool
        Score each prefix as the service sees it (:func:`profile_prefixes`: the events
        replayed through the profile, the session read back from it) rather than as the
        published protocol writes it.
    show_progress : bool

    Returns
    -------
    NextItemResult
    """
    if as_served:
        prefixes, targets = profile_prefixes(sessions, show_progress=show_progress)
    else:
        prefixes, targets = next_item_cases(sessions, model.config.max_history)
    ranks = np.empty(len(targets), dtype=np.int64)
    started = clock.perf_counter()

    def rank(span: tuple[int, int]) -> None:
        start, stop = span
        scores = np.stack(
            [dense_scores(model, _prefix(prefixes, row)) for row in range(start, stop)]
        )
        ranks[start:stop] = conservative_ranks(scores, targets[start:stop])

    spans = list(_chunks(len(targets), batch_size))
    with single_threaded_blas(), ThreadPoolExecutor(default_num_threads()) as pool:
        for _ in tqdm(
            pool.map(rank, spans), total=len(spans), desc=f"score {name}", disable=not show_progress
        ):
            pass
    scored = clock.perf_counter() - started
    return NextItemResult(
        name=name,
        config=model.config.to_dict(),
        metrics=next_item_metrics(ranks, ks),
        predictions=len(targets),
        sessions=len(sessions),
        fit_seconds=round(sum(model.fit_seconds.values()), 3),
        score_seconds=round(scored, 3),
        latency_ms=time_recommend(model, prefixes, latency_sample),
    )


def profile_prefixes(
    sessions: Sessions,
    settings: Settings | None = None,
    gap_seconds: float = SESSION_GAP_SECONDS,
    *,
    show_progress: bool = False,
) -> tuple[SessionBatch, np.ndarray]:
    """Every next-item prediction of ``sessions`` as the service would make it: each
    session's views are replayed through :func:`recsvc.core.profile.apply_event`, and
    after each but the last the session is read back as the session strategy reads it
    (:meth:`VisitorState.current_session` of the profile's recent items: each item once,
    at its latest view, the newest ``recent_items_max``). Same order as
    :func:`training.sessions.next_item_cases`.

    Returns
    -------
    prefixes : SessionBatch
    targets : ndarray, shape (Σ (n − 1),), int32
    """
    settings = settings or Settings.from_env()
    row_of = {item_id: row for row, item_id in enumerate(sessions.items.tolist())}
    prefixes: list[np.ndarray] = []
    targets: list[int] = []
    for index in tqdm(range(len(sessions)), desc="replay sessions", disable=not show_progress):
        lo, hi = sessions.offsets[index], sessions.offsets[index + 1]
        visitor = new_visitor(f"s{index}", float(sessions.time[lo]))
        for event in range(lo, hi - 1):
            record = {
                "type": "product_view",
                "visitor_id": visitor["visitor_id"],
                "item_id": str(sessions.items[sessions.item[event]]),
                "timestamp": format_timestamp(
                    datetime.fromtimestamp(float(sessions.time[event]), UTC)
                ),
            }
            apply_event(visitor, visitor["shared"], record, settings)
            state = state_from_profile(row_of, visitor, visitor["shared"])
            prefixes.append(state.current_session(gap_seconds))
            targets.append(int(sessions.item[event + 1]))
    return SessionBatch.of(prefixes), np.array(targets, np.int32)


def _chunks(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(start + size, count)


def _prefix(prefixes: SessionBatch, row: int) -> np.ndarray:
    return prefixes.item[prefixes.offsets[row] : prefixes.offsets[row + 1]]


def time_recommend(
    model: SessionModel, prefixes: SessionBatch, sample: int, k: int = 20, seed: int = 0
) -> dict[str, float]:
    """Milliseconds per :func:`recommend_session` call over a fixed random sample of
    prefixes: ``{"p50": …, "p99": …}`` (empty when there are none)."""
    if sample <= 0 or len(prefixes) == 0:
        return {}
    rows = np.random.default_rng(seed).choice(len(prefixes), min(sample, len(prefixes)), False)
    times = np.empty(len(rows))
    with single_threaded_blas():
        for n, row in enumerate(rows):
            items = _prefix(prefixes, row)
            started = clock.perf_counter()
            recommend_session(model, items, k)
            times[n] = clock.perf_counter() - started
    p50, p99 = np.percentile(times * 1000.0, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


def sample_sessions(sessions: Sessions, count: int | None, seed: int = 0) -> Sessions:
    """A fixed random ``count`` of the sessions (all when ``count`` is None or larger)."""
    if count is None or count >= len(sessions):
        return sessions
    keep = np.zeros(len(sessions), dtype=bool)
    keep[np.random.default_rng(seed).choice(len(sessions), count, replace=False)] = True
    return sessions.select_sessions(keep)


@dataclass
class SessionReport:
    """A next-item evaluation: how the sessions were built and split, and each model."""

    split: dict[str, Any]
    results: list[NextItemResult] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def to_markdown(self) -> str:
        """The split's counts and one row per model."""
        train, test = self.split["train"], self.split["test"]
        lines = [
            f"# Session next-item evaluation ({self.data.get('evaluated_on', 'test')})",
            "",
            f"Train: {train['sessions']:,} sessions, {train['events']:,} events, "
            f"{train['items']:,} items. Test: {test['sessions']:,} sessions, "
            f"{test['events']:,} events, {self.split['predictions']:,} predictions "
            "(every train item ranked, ties counted against the target).",
            "",
            "| model | recall@20 | mrr@20 | fit s | score s | ms p50 | ms p99 |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.name} | {r.metrics['recall@20']:.4f} | {r.metrics['mrr@20']:.4f} | "
                f"{r.fit_seconds:.1f} | {r.score_seconds:.1f} | "
                f"{r.latency_ms.get('p50', float('nan')):.2f} | "
                f"{r.latency_ms.get('p99', float('nan')):.2f} |"
            )
        lines += ["", "| model | configuration |", "|---|---|"]
        lines += [f"| {r.name} | `{r.config}` |" for r in self.results]
        return "\n".join(lines) + "\n"
