"""The JSONL loader's columns: sequential and parallel reads give exactly what the
reader (``iter_records``) plus the loader's per-record rules gave, counts included."""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsvc.eventlog.reader import ReadStats, iter_records, log_files
from training import jsonl_columns
from training.jsonl_columns import (
    LogColumns,
    _read_packed,
    merge,
    read_file,
    read_log_columns,
)
from training.loaders import load_events


def event(i: int | str, day: str = "2026-11-24", **fields: Any) -> str:
    record = {
        "id": i if isinstance(i, str) else f"{i:032x}",
        "type": "product_view",
        "visitor_id": f"v{i}",
        "item_id": f"sku-{i}",
        "timestamp": f"{day}T10:{int(str(i)[-2:], 16) % 60:02d}:00.000Z",
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Three days, four files (one gzipped), with every kind of drop: malformed lines,
    repeated ids within and across files (of a kept, a bad and an itemless record),
    events without item, bad records, non-text ids and items, non-ASCII text."""
    root = tmp_path / "events"
    write(
        root / "date=2026-11-24/part-a.jsonl",
        [
            event(1, user_id="u1"),
            event(2, type="add_to_cart", quantity=2),
            event(3, type="page_view", item_id=...),  # no item
            event(4, type="page_view", item_id=None),  # no item
            "{not json",
            json.dumps({"visitor_id": "v9", "type": "product_view"}),  # no id: malformed
            "[1, 2]",  # not an object: malformed
            "",  # blank: skipped
            event(5, type=...),  # bad record
            event(6, visitor_id=7),  # bad record
            event(1, type="purchase"),  # repeat within the file
            event(7, item_id=12345),  # item as a number
            event(8, user_id=99),  # user id not text
        ],
    )
    write(
        root / "date=2026-11-24/part-b.jsonl.gz",
        [
            event(9, visitor_id="vé", user_id="ü-1"),  # non-ASCII
            event(2, type="purchase"),  # repeats part-a's kept 2
            event(3, item_id="sku-3"),  # repeats part-a's itemless 3: dropped still
            event(5),  # repeats part-a's bad 5: dropped still
            event(10, type="wishlist"),  # unknown event (the loader's drop)
            json.dumps(
                {
                    "id": 42,
                    "type": "purchase",
                    "visitor_id": "v1",
                    "item_id": "s",
                    "timestamp": "2026-11-24T11:00:00Z",
                }
            ),  # numeric id
        ],
    )
    write(
        root / "date=2026-11-25/part-c.jsonl",
        [
            event(11, day="2026-11-25", visitor_id="v1", user_id="u1"),
            event(9, day="2026-11-25"),  # repeats part-b's 9
            event(12, day="2026-11-25", type="page_view", item_id=...),
            json.dumps({"id": 42, "type": "page_view"}),  # repeats the numeric id
            "   ",  # not blank (4 bytes with its newline): malformed
            event(13, day="2026-11-25", timestamp="not a time"),  # the loader's bad_time
            event(15, day="2026-11-25", timestamp=1_764_000_000),  # bad record
        ],
    )
    write(root / "date=2026-11-26/part-d.jsonl", [event(14, day="2026-11-26")])
    return root


def epoch_seconds(stamp: str) -> float | None:
    """An ISO 8601 UTC stamp as epoch seconds, None where it does not parse."""
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def reference(path: Path) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """The loader as it was: ``iter_records``, then its per-record checks."""
    stats = ReadStats()
    columns: dict[str, list[Any]] = {k: [] for k in ("visitor", "user", "item", "time", "event")}
    bad = no_item = 0
    for record in iter_records(path, stats):
        try:
            kind, visitor, stamp = record["type"], record["visitor_id"], record["timestamp"]
            item, user = record.get("item_id"), record.get("user_id")
        except (KeyError, TypeError, AttributeError):
            bad += 1
            continue
        if type(kind) is not str or type(visitor) is not str or type(stamp) is not str:
            bad += 1
            continue
        if item is None:
            no_item += 1
            continue
        columns["visitor"].append(visitor)
        columns["user"].append(user if isinstance(user, str) else None)
        columns["item"].append(str(item))
        columns["time"].append(epoch_seconds(stamp))
        columns["event"].append(kind)
    counts = {
        "lines": stats.lines,
        "malformed": stats.malformed,
        "duplicates": stats.duplicates,
        "bad_records": bad,
        "no_item": no_item,
        "malformed_examples": stats.malformed_examples,
    }
    return columns, counts


def as_lists(log: LogColumns) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    def text(column: np.ndarray) -> list[str]:
        return [v.decode() if isinstance(v, bytes) else v for v in column.tolist()]

    columns = {
        "visitor": text(log.visitor),
        "user": log.user,
        "item": text(log.item),
        "time": [None if np.isnan(t) else t for t in log.time.tolist()],
        "event": text(log.event),
    }
    counts = {
        "lines": log.lines,
        "malformed": log.malformed,
        "duplicates": log.duplicates,
        "bad_records": log.bad_records,
        "no_item": log.no_item,
        "malformed_examples": log.malformed_examples,
    }
    return columns, counts


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_columns_match_the_reader(log: Path, processes: int) -> None:
    expected_columns, expected_counts = reference(log)
    columns, counts = as_lists(read_log_columns(log, users=True, processes=processes))
    assert counts == expected_counts
    assert columns == expected_columns
    # The fixture does exercise what it claims to.
    assert expected_counts["duplicates"] == 6 and expected_counts["malformed"] == 4
    assert expected_counts["no_item"] == 3 and expected_counts["bad_records"] == 3
    assert "vé" in expected_columns["visitor"] and "12345" in expected_columns["item"]
    assert sum(1 for u in expected_columns["user"] if u is None) > 0


def test_one_file_and_no_file(log: Path, tmp_path: Path) -> None:
    one = log / "date=2026-11-24/part-b.jsonl.gz"
    assert as_lists(read_log_columns(one, users=True, processes=4)) == reference(one)
    empty = tmp_path / "nothing"
    empty.mkdir()
    got = read_log_columns(empty, users=True)
    assert got.lines == 0 and len(got.visitor) == 0 and got.user == []


def test_merge_compares_ids_without_shared_hashes(log: Path) -> None:
    # Parts whose hashes cannot be trusted (another hash secret), and parts whose
    # hashes all collide: both fall back to comparing the ids themselves.
    expected = reference(log)
    files = log_files(log)
    foreign = [dataclasses.replace(_read_packed(f, True), hash_probe=1) for f in files]
    assert as_lists(merge(foreign, users=True)) == expected
    colliding = []
    for file in files:
        part = _read_packed(file, True)
        assert part.hashes is not None
        part.hashes = tuple(np.zeros_like(h) for h in part.hashes)  # type: ignore[assignment]
        colliding.append(part)
    assert as_lists(merge(colliding, users=True)) == expected


def test_read_file_shares_seen_across_files(log: Path) -> None:
    seen: set[Any] = set()
    parts = [read_file(f, seen=seen) for f in log_files(log)]
    assert sum(p.duplicates for p in parts) == reference(log)[1]["duplicates"]


@pytest.mark.parametrize("identity", ["visitor", "user", "stitched"])
def test_load_events_parallel_equals_sequential(
    log: Path, identity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_columns, "_default_processes", lambda files: 1)
    sequential, seq_report = load_events(log, "jsonl", identity=identity)  # type: ignore[arg-type]
    monkeypatch.setattr(jsonl_columns, "_default_processes", lambda files: 3)
    parallel, par_report = load_events(log, "jsonl", identity=identity)  # type: ignore[arg-type]
    for name in ("user", "item", "time", "event", "value", "users", "items"):
        a, b = getattr(sequential, name), getattr(parallel, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    seq_report.seconds = par_report.seconds = 0.0
    assert seq_report == par_report
    assert seq_report.rows == seq_report.kept + sum(seq_report.dropped.values())
    assert seq_report.dropped["duplicate"] == 6
    assert seq_report.dropped["malformed"] == 4 + 3  # lines, then records
    assert seq_report.dropped["no_item"] == 3
    assert seq_report.malformed_examples[0].endswith("part-a.jsonl:5")
    if identity != "user":  # by user, the rows without a user_id go first
        assert seq_report.dropped["bad_time"] == 1
        assert seq_report.unknown_events == {"wishlist": 1}


def test_default_processes(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = log_files(log)
    assert jsonl_columns._default_processes(files) == 1  # a small log: no pool
    monkeypatch.setattr(jsonl_columns, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl_columns.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(jsonl_columns.threading, "active_count", lambda: 1)
    assert jsonl_columns._default_processes(files) == 2
    assert jsonl_columns._default_processes(files[:1]) == 1
    # Another thread running: no fork.
    monkeypatch.setattr(jsonl_columns.threading, "active_count", lambda: 2)
    assert jsonl_columns._default_processes(files) == 1


@pytest.mark.parametrize("processes", [1, 2])
def test_a_broken_file_fails_the_read(log: Path, processes: int) -> None:
    (log / "date=2026-11-24/part-z.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(OSError):
        read_log_columns(log, processes=processes)
