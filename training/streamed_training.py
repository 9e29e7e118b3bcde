"""``recsvc train --streaming``: a model version from an exported log larger than memory.

``recsvc train`` holds every event of the log in columns (``training.loaders``), which
the evaluation's replay of visitor profiles and the time-aware fits need. Past the
machine's memory, this path fits the same artifact from two bounded reads of the log:

1. the whole log, chunk by chunk, into the confidence matrix
   (:func:`training.streaming.stream_matrix`: memory follows the matrix's non-zeros and
   the id maps, not the events);
2. the last ``recent_days`` only (:func:`training.streaming.stream_tail`: only the day
   partitions from then on are opened), as the columns trending and the session model
   are fit from; sessions are recent behaviour, and trending reads one week.

The factor model is fit on the whole matrix; popular items, similar items and the
manifest as ``recsvc train`` makes them. What it does not do, because each needs the
whole log's events replayed through visitor profiles: the evaluation on a time split and
the blend's tuning on a validation split. The version ships the default blend weights
and says so (``manifest["streaming"]``, ``evaluation`` null, no ``metrics``);
``recsvc compare`` scores it against another version on a log that fits.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.scoring.blend import BlendParams
from recsvc.scoring.model import ServingParams
from training.interactions import Interactions
from training.matrix import InteractionMatrix, MatrixReport
from training.pipeline import (
    TrainOptions,
    TrainResult,
    add_session_model,
    build_artifact,
    make_model,
)
from training.scorers import TrendingScorer
from training.streaming import CHUNK_EVENTS, StreamedMatrix, stream_matrix, stream_tail
from training.weights import SECONDS_PER_DAY, WeightConfig

log = logging.getLogger(__name__)

# Days of the log's end read into memory for trending and the session model.
RECENT_DAYS = 30.0


def train_streamed(
    log_path: Path,
    config: WeightConfig,
    options: TrainOptions,
    *,
    recent_days: float = RECENT_DAYS,
    chunk_events: int = CHUNK_EVENTS,
) -> TrainResult:
    """Fit and build a version from the exported JSONL log at ``log_path`` with bounded
    memory (module docstring). ``options``' evaluation settings (test days, search,
    comparisons) do not apply and are ignored."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    streamed = stream_matrix(log_path, config, chunk_events=chunk_events)
    if streamed.matrix.nnz == 0:
        raise ValueError(f"{log_path}: no interaction left to train on")
    seconds["stream_matrix"] = time.perf_counter() - started
    mark = time.perf_counter()
    trending_days = TrendingScorer().window_days
    since = streamed.reference_time - max(recent_days, trending_days) * SECONDS_PER_DAY
    tail, tail_report = stream_tail(log_path, since)
    matrix = _with_recent_events(streamed, tail)
    seconds["stream_tail"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model = make_model(options.model, dict(options.params))
    model.fit(matrix, show_progress=options.show_progress)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    artifact = build_artifact(
        model, matrix, options, dict(options.params), None, [], _fingerprint(streamed)
    )
    artifact.manifest["serving"] = ServingParams(blend=BlendParams()).to_dict()
    artifact.manifest["blend_tuning"] = None
    artifact.manifest["evaluated"] = False
    artifact.manifest["split"] = None
    artifact.manifest["intervals"] = {}
    artifact.manifest["streaming"] = {
        "matrix": streamed.report.to_dict(),
        "recent_days": recent_days,
        "recent": tail_report.to_dict(),
        "not_done": ["evaluation", "blend tuning"],
    }
    seconds["artifact"] = time.perf_counter() - mark
    if options.sessions:
        mark = time.perf_counter()
        add_session_model(artifact, tail)
        seconds["sessions"] = time.perf_counter() - mark
    artifact.manifest["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return TrainResult(artifact, None, [], seconds)


def _with_recent_events(streamed: StreamedMatrix, tail: Interactions) -> InteractionMatrix:
    """The streamed matrix as an :class:`InteractionMatrix` whose events are the recent
    ones, recoded to the matrix's rows and columns (those of users or items the matrix
    dropped are left out): what trending reads."""
    user = streamed.users.rows(tail.users)[tail.user] if len(tail) else np.zeros(0, np.int32)
    item = streamed.items.rows(tail.items)[tail.item] if len(tail) else np.zeros(0, np.int32)
    known = (user >= 0) & (item >= 0)
    recent = Interactions(
        user[known].astype(np.int32),
        item[known].astype(np.int32),
        tail.time[known],
        tail.event[known],
        tail.value[known],
        streamed.users.labels,
        streamed.items.labels,
    )
    report = streamed.report
    matrix_report = MatrixReport(
        events_in=report.events_used,
        events_kept=report.events_used,
        users=report.users,
        items=report.items,
        nonzeros=report.nonzeros,
    )
    return InteractionMatrix(
        streamed.matrix,
        streamed.users,
        streamed.items,
        recent,
        streamed.reference_time,
        streamed.config,
        matrix_report,
    )


def _fingerprint(streamed: StreamedMatrix) -> str:
    """SHA-256 over the matrix and its ids: the same log gives the same print (the
    events themselves were not kept to hash)."""
    digest = hashlib.sha256()
    matrix = streamed.matrix
    for array in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(array).tobytes())
    for labels in (streamed.users.labels, streamed.items.labels):
        digest.update("\n".join(labels.tolist()).encode())
    return digest.hexdigest()


def describe(result: TrainResult) -> dict[str, Any]:
    """What the streamed build read, for the command's summary line."""
    streaming = result.artifact.manifest["streaming"]
    return {
        "events": streaming["matrix"]["events_used"],
        "recent_events": streaming["recent"]["events_used"],
        "users": streaming["matrix"]["users"],
        "items": streaming["matrix"]["items"],
    }
