"""Read event records back from a log folder (or one file), in order, without duplicates."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def iter_records(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield each event record once, file by file, dropping repeated ids and malformed
    lines (counted in ``stats``). Memory grows with the number of distinct ids (a set of
    32-character strings: about 100 MB for a million events)."""
    stats = stats if stats is not None else ReadStats()
    seen: set[str] = set()
    for file in log_files(path):
        stats.files += 1
        with _open(file) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                stats.lines += 1
                try:
                    record = json.loads(line)
                    event_id = record["id"]
                except (ValueError, KeyError, TypeError):
                    stats.malformed += 1
                    if len(stats.malformed_examples) < 5:
                        stats.malformed_examples.append(f"{file}:{number}")
                    continue
                if event_id in seen:
                    stats.duplicates += 1
                    continue
                seen.add(event_id)
                stats.records += 1
                yield record
    if stats.malformed:
        log.warning("skipped malformed log lines", extra={"count": stats.malformed})
