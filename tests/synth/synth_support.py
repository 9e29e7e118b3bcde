"""The small synthetic store the synth tests share, and readers of its files.

A module of its own (not conftest) so that tests import it by a name no other test folder
uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from recsvc.eventlog.reader import log_files
from recsvc.synth.generator import GenerateConfig, GenerateResult

# Small enough for a second, big enough for funnel shares and a model to mean something.
SMALL = {"visitors": 3000, "items": 300, "days": 21, "seed": 11, "end_date": date(2026, 3, 15)}


@dataclass(frozen=True)
class Store:
    """A generated data set, read back: the config, the result, and every file's content."""

    config: GenerateConfig
    result: GenerateResult
    records: list[dict[str, Any]]  # in file order (day by day, sorted within each day)
    partitions: list[str]  # the date=... folder each record came from
    items: list[dict[str, str]]
    truth: list[dict[str, Any]]
    world: dict[str, Any]


def read_store(config: GenerateConfig, result: GenerateResult) -> Store:
    out = config.out
    records, partitions = [], []
    for path in log_files(out / "events"):
        for line in read_lines(path):
            records.append(json.loads(line))
            partitions.append(path.parent.name.removeprefix("date="))
    header, *rows = (out / "items.csv").read_text().splitlines()
    items = [dict(zip(header.split(","), row.split(","), strict=True)) for row in rows]
    truth = [json.loads(line) for line in (out / "ground_truth.jsonl").read_text().splitlines()]
    world = json.loads((out / "world.json").read_text())
    return Store(config, result, records, partitions, items, truth, world)


def read_lines(path: Path) -> list[str]:
    if path.name.endswith(".gz"):
        import gzip

        return gzip.decompress(path.read_bytes()).decode().splitlines()
    return path.read_text().splitlines()


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
