"""The training matrix from an event log larger than memory: chunks in, CSR out.

``training.loaders.load_events`` holds every event of the log in columns, so its memory
grows with the log. ``stream_matrix`` reads the exported JSONL log
(``recsvc.eventlog``) file by file, line by line, and keeps only:

- the id maps (distinct visitors and items),
- the matrix being built: per ``chunk_events`` events, the chunk's cells are summed
  (``np.unique`` over ``user << 32 | item`` keys) and merged into the running cell list,
  so memory follows the matrix's non-zeros, not the number of events,
- the event ids of the current day partition, to drop repeated ids as the log reader
  does (a repeat is a rewrite of the same batch, in the same partition).

Weights are ``training.weights``' (event type × decay; a cart's ``quantity`` multiplies
nothing, as in the in-memory JSONL loader). The decay's reference time is the log's last
event unless given: weights are summed relative to the first event's time and rescaled
once at the end, which is the same product, so one pass suffices. Users and items below
the config's minimum counts are removed (k-core) on the final cells, and the config's
transform applied, as ``training.matrix.build_matrix`` does.

Memory: O(distinct users + items + non-zeros + events of the largest day). Measured by
``python -m loadtests.bench_streaming`` (peak RSS against log size at three sizes).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp

from recsvc.core.events import parse_timestamp
from recsvc.eventlog.reader import log_files
from training.interactions import EVENT_CODES, Interactions
from training.matrix import IdMap, _k_core
from training.weights import SECONDS_PER_DAY, WeightConfig, event_weights, load_weights

# Events per chunk: its columns are compact arrays (21 bytes an event), so 200k is ~4 MB.
CHUNK_EVENTS = 200_000
ITEM_BITS = 32


@dataclass
class StreamReport:
    """What the streaming build read, dropped and kept."""

    files: int = 0
    lines: int = 0
    events_used: int = 0
    duplicates: int = 0
    malformed: int = 0
    not_interactions: int = 0  # no item, or a type of weight 0
    chunks: int = 0
    users: int = 0
    items: int = 0
    nonzeros: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamedMatrix:
    """A user × item confidence matrix (CSR, float32) with its id maps; like
    ``training.matrix.InteractionMatrix`` without the per-event columns."""

    matrix: sp.csr_matrix
    users: IdMap
    items: IdMap
    reference_time: float
    config: WeightConfig
    report: StreamReport = field(default_factory=StreamReport)


class _Codes:
    """External id -> dense code, in order of first appearance."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def code(self, label: str) -> int:
        found = self.codes.get(label)
        if found is None:
            found = self.codes[label] = len(self.codes)
        return found

    def labels(self) -> np.ndarray:
        return np.array(list(self.codes), dtype=str)


class _Cells:
    """Summed cells so far (sorted int64 keys, float64 sums), merged chunk by chunk."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.sums = np.zeros(0, np.float64)

    def add(self, keys: np.ndarray, weights: np.ndarray) -> None:
        merged = np.concatenate([self.keys, keys])
        unique, inverse = np.unique(merged, return_inverse=True)
        self.sums = np.bincount(
            inverse.reshape(-1), np.concatenate([self.sums, weights]), minlength=len(unique)
        )
        self.keys = unique


def stream_matrix(
    path: Path,
    config: WeightConfig | None = None,
    *,
    reference_time: float | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> StreamedMatrix:
    """Build the matrix of the JSONL log at ``path`` (a folder or one file), reading
    ``chunk_events`` events at a time; visitors are the rows."""
    config = config or load_weights()
    table = config.table()
    report = StreamReport()
    users, items, cells = _Codes(), _Codes(), _Cells()
    origin: float | None = None  # weights are relative to this time until the end
    last = -math.inf
    for chunk in _chunks(Path(path), table, users, items, report, chunk_events):
        user, item, time, event, value = chunk
        origin = float(time[0]) if origin is None else origin
        last = max(last, float(time.max()))
        anchor = reference_time if reference_time is not None else origin
        events = Interactions(user, item, time, event, value, np.zeros(0), np.zeros(0))
        weights = event_weights(events, config, anchor).astype(np.float64)
        if reference_time is None and config.half_life_days > 0:
            # event_weights clamps at the anchor; undo that for events after it: the
            # true reference (the last event) is later than all of them.
            later = time > anchor
            weights[later] *= np.exp2(
                (time[later] - anchor) / SECONDS_PER_DAY / config.half_life_days
            )
        keys = (user.astype(np.int64) << ITEM_BITS) | item.astype(np.int64)
        positive = weights > 0
        cells.add(keys[positive], weights[positive])
        report.chunks += 1
    if reference_time is None:
        reference_time = last if origin is not None else 0.0
        if origin is not None and config.half_life_days > 0:
            cells.sums *= np.exp2(
                -(reference_time - origin) / SECONDS_PER_DAY / config.half_life_days
            )
    matrix, user_labels, item_labels = _finish(cells, users.labels(), items.labels(), config)
    report.users, report.items = matrix.shape
    report.nonzeros = int(matrix.nnz)
    return StreamedMatrix(
        matrix, IdMap(user_labels), IdMap(item_labels), float(reference_time), config, report
    )


def _half_lives(seconds: Any, config: WeightConfig) -> Any:
    """``seconds`` (a number or an array) in half-lives of the config's decay."""
    return seconds / SECONDS_PER_DAY / config.half_life_days


def _finish(
    cells: _Cells, user_labels: np.ndarray, item_labels: np.ndarray, config: WeightConfig
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """k-core over the cells, compact the codes, transform, CSR."""
    user = (cells.keys >> ITEM_BITS).astype(np.int64)
    item = (cells.keys & ((1 << ITEM_BITS) - 1)).astype(np.int64)
    core, _ = _k_core(user, item, config.min_user_interactions, config.min_item_interactions)
    user, item, sums = user[core], item[core], cells.sums[core]
    used_users, user_rows = np.unique(user, return_inverse=True)
    used_items, item_cols = np.unique(item, return_inverse=True)
    data = np.log1p(sums) if config.transform == "log1p" else sums
    matrix = sp.csr_matrix(
        (data.astype(np.float32), (user_rows.reshape(-1), item_cols.reshape(-1))),
        shape=(len(used_users), len(used_items)),
    )
    matrix.eliminate_zeros()
    return matrix, user_labels[used_users], item_labels[used_items]


def _chunks(
    path: Path,
    table: np.ndarray,
    users: _Codes,
    items: _Codes,
    report: StreamReport,
    size: int,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Columns (user, item, time, event, value) of up to ``size`` usable events at a
    time, in file order."""
    columns = _empty_columns()
    for record in _records(path, report):
        found = _interaction(record, report, table)
        if found is None:
            continue
        _append(columns, users, items, record, found, report)
        if len(columns[0]) == size:
            yield _as_numpy(columns)
            columns = _empty_columns()
    if len(columns[0]):
        yield _as_numpy(columns)


def _interaction(
    record: dict[str, Any], report: StreamReport, table: np.ndarray | None
) -> tuple[int, str, float] | None:
    """The record's event code, item id and epoch seconds; None (counted) when it is no
    interaction (no item, or a type of weight 0 in ``table`` when given) or its time is
    malformed."""
    code = EVENT_CODES.get(record.get("type"), -1)
    item_id = record.get("item_id")
    if code < 0 or not item_id or (table is not None and table[code] <= 0):
        report.not_interactions += 1
        return None
    try:
        moment = parse_timestamp(record["timestamp"]).timestamp()
    except (KeyError, TypeError, ValueError):
        report.malformed += 1
        return None
    return code, str(item_id), moment


def _append(
    columns: tuple[array, ...],
    users: _Codes,
    items: _Codes,
    record: dict[str, Any],
    found: tuple[int, str, float],
    report: StreamReport,
) -> None:
    code, item_id, moment = found
    user, item, when, event, value = columns
    user.append(users.code(str(record["visitor_id"])))
    item.append(items.code(item_id))
    when.append(moment)
    event.append(code)
    value.append(1.0)  # as the in-memory JSONL loader: a quantity weighs nothing
    report.events_used += 1


def _empty_columns() -> tuple[array, ...]:
    """user, item (int32), time (float64), event (int8), value (float32): compact, unlike
    lists of Python numbers (about 30 bytes each)."""
    return array("i"), array("i"), array("d"), array("b"), array("f")


def _as_numpy(columns: tuple[array, ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.frombuffer(column, dtype=column.typecode) for column in columns)


def _records(
    path: Path, report: StreamReport, wanted: Callable[[Path], bool] = lambda file: True
) -> Iterator[dict[str, Any]]:
    """Each event record of the ``wanted`` files once, file by file; repeated ids are
    dropped within a day partition (where the exporter's rewrites land), malformed lines
    counted."""
    import gzip

    seen: set[str] = set()
    partition: Path | None = None
    for file in log_files(path):
        if not wanted(file):
            continue
        report.files += 1
        if file.parent != partition:
            partition, seen = file.parent, set()
        opener = gzip.open if file.name.endswith(".gz") else open
        with opener(file, "rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                report.lines += 1
                try:
                    record = orjson.loads(line)
                    event_id = record["id"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    report.malformed += 1
                    continue
                if event_id in seen:
                    report.duplicates += 1
                    continue
                seen.add(event_id)
                yield record


def stream_tail(path: Path, since: float) -> tuple[Interactions, StreamReport]:
    """The log's events at or after ``since`` (epoch seconds) as columns, sorted by time:
    the recent part that time-aware fits (trending, the session model) need, read without
    holding the rest. Only the day partitions from ``since``'s date on are opened (the
    exporter partitions by the event's UTC date); a file outside that layout is read
    whole and filtered."""
    report = StreamReport()
    users, items = _Codes(), _Codes()
    columns = _empty_columns()
    first_day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
    for record in _records(Path(path), report, lambda file: _partition_day(file) >= first_day):
        found = _interaction(record, report, None)
        if found is not None and found[2] >= since:
            _append(columns, users, items, record, found, report)
    user, item, when, event, value = _as_numpy(columns)
    order = np.argsort(when, kind="stable")
    tail = Interactions(
        user[order], item[order], when[order], event[order], value[order],
        users.labels(), items.labels(),
    )  # fmt: skip
    return tail, report


def _partition_day(file: Path) -> str:
    """``YYYY-MM-DD`` of a ``date=YYYY-MM-DD`` partition's file; "9999" (always read)
    for a file outside that layout."""
    name = file.parent.name
    return name.removeprefix("date=") if name.startswith("date=") else "9999"


def main() -> None:
    """``python -m training.streaming LOG [--chunk N]``: build the matrix, print what was
    read and kept, and the peak RSS (MiB)."""
    import argparse
    import json
    import resource

    parser = argparse.ArgumentParser(description="Build the training matrix in chunks.")
    parser.add_argument("log", type=Path)
    parser.add_argument("--chunk", type=int, default=CHUNK_EVENTS)
    args = parser.parse_args()
    built = stream_matrix(args.log, chunk_events=args.chunk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**built.report.to_dict(), "peak_rss_mib": round(peak, 1)}))


if __name__ == "__main__":
    main()
