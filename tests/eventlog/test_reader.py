"""Reading the event log back: order, gzip, duplicate ids and malformed lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from recsvc.eventlog.reader import ReadStats, iter_records, log_files


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(line + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def event(event_id: str, day: str = "2026-11-24", **extra) -> str:
    return json.dumps({"id": event_id, "timestamp": f"{day}T10:00:00.000Z", **extra})


def test_reads_partitions_in_order_plain_and_gzip(tmp_path):
    write(tmp_path / "date=2026-11-25/part-3_0-3_1.jsonl.gz", [event("c", "2026-11-25")])
    write(tmp_path / "date=2026-11-24/part-2_0-2_0.jsonl", [event("b")])
    write(tmp_path / "date=2026-11-24/part-1_0-1_0.jsonl", [event("a", note="café")])

    records = list(iter_records(tmp_path))

    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[0]["note"] == "café"


def test_drops_repeated_ids_keeping_the_first(tmp_path):
    write(tmp_path / "date=2026-11-24/part-1.jsonl", [event("a", n=1), event("b")])
    write(tmp_path / "date=2026-11-24/part-2.jsonl", [event("a", n=2), event("c")])
    stats = ReadStats()

    records = list(iter_records(tmp_path, stats))

    assert [(r["id"], r.get("n")) for r in records] == [("a", 1), ("b", None), ("c", None)]
    assert (stats.files, stats.lines, stats.records, stats.duplicates) == (2, 4, 3, 1)


def test_skips_and_counts_malformed_lines(tmp_path):
    path = write(
        tmp_path / "date=2026-11-24/part-1.jsonl",
        [event("a"), "{not json", "", json.dumps({"no": "id"}), "[1, 2]", event("b")],
    )
    stats = ReadStats()

    assert [r["id"] for r in iter_records(tmp_path, stats)] == ["a", "b"]
    assert (stats.lines, stats.malformed) == (5, 3)
    assert stats.malformed_examples == [f"{path}:2", f"{path}:4", f"{path}:5"]


def test_ignores_what_is_not_a_log_part(tmp_path):
    part = write(tmp_path / "date=2026-11-24/part-1_0-1_0.jsonl", [event("a")])
    # An exporter's unfinished temporary file, its rejected entries, stray files.
    write(tmp_path / "date=2026-11-24/.part-2_0-2_0.jsonl.tmp", [event("x")])
    write(tmp_path / "_rejected/rejected-3_0-3_0.jsonl", [json.dumps({"stream_id": "3-0"})])
    write(tmp_path / "date=2026-11-24/notes.txt", ["hello"])

    assert log_files(tmp_path) == [part]
    assert [r["id"] for r in iter_records(tmp_path)] == ["a"]


def test_reads_a_single_file(tmp_path):
    path = write(tmp_path / "anything.jsonl.gz", [event("a"), event("b")])

    assert log_files(path) == [path]
    assert [r["id"] for r in iter_records(path)] == ["a", "b"]
