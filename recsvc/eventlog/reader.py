"""Read event records back from a log folder (or one file), in order, without duplicates."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass
class ReadStats:
    """What a read kept and what it dropped, so that nothing is dropped silently."""

    files: int = 0
    lines: int = 0
    records: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)


def log_files(path: Path) -> list[Path]:
    """The log files under ``path`` (or ``path`` itself), sorted by partition then name."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("part-*") if p.name.endswith(LOG_SUFFIXES))


def _open(path: Path) -> IO[bytes]:
    # Bytes straight to orjson: no decode step, and orjson validates the UTF-8 itself.
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def iter_records(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield each event record once, file by file, dropping repeated ids and malformed
    lines (counted in ``stats``). Memory grows with the number of distinct ids (a set of
    32-character strings: about 100 MB for a million events)."""
    stats = stats if stats is not None else ReadStats()
    seen: set[str] = set()
    for file in log_files(path):
        stats.files += 1
        with _open(file) as handle:
            yield from _file_records(file, handle, seen, stats)
    if stats.malformed:
        log.warning("skipped malformed log lines", extra={"count": stats.malformed})


def _file_records(
    file: Path, handle: IO[bytes], seen: set[str], stats: ReadStats
) -> Iterator[dict[str, Any]]:
    # Counters live in locals and reach ``stats`` once per file: this loop runs per line.
    lines = duplicates = records = 0
    loads = orjson.loads
    for number, line in enumerate(handle, 1):
        if len(line) < 3 and not line.strip():
            continue
        lines += 1
        try:
            record = loads(line)
            event_id = record["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            stats.malformed += 1
            if len(stats.malformed_examples) < 5:
                stats.malformed_examples.append(f"{file}:{number}")
            continue
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        records += 1
        yield record
    stats.lines += lines
    stats.duplicates += duplicates
    stats.records += records
