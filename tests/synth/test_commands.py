"""``recsvc generate`` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from recsvc.cli import main
from recsvc.core.events import event_day
from recsvc.eventlog.reader import iter_records


def test_generate_writes_gzip_logs_and_reports_speed(tmp_path) -> None:
    out = tmp_path / "shop"
    args = ["generate", "--visitors", "200", "--items", "50", "--days", "3", "--seed", "5"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--end-date", "2026-02-01"])
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output and "abandoned" in result.output
    world = json.loads((out / "world.json").read_text())
    assert world["arguments"] == {
        "visitors": 200,
        "items": 50,
        "days": 3,
        "seed": 5,
        "end_date": "2026-02-01",
        "gzip": False,
        "holdout_days": 7,
    }
    days = sorted(p.name for p in (out / "events").iterdir())
    assert days == ["date=2026-01-30", "date=2026-01-31", "date=2026-02-01"]
    assert (out / "items.csv").exists() and (out / "ground_truth.jsonl").exists()

    again = CliRunner().invoke(main, [*args, "--out", str(out), "--gzip"])
    assert again.exit_code == 0, again.output
    today = datetime.now(UTC).date().isoformat()
    parts = sorted(p.name for p in (out / "events").rglob("part-*"))
    assert set(parts) == {"part-synthetic.jsonl.gz"}
    assert max(event_day(r) for r in iter_records(out)) <= today
    assert days[0] not in {p.name for p in (out / "events").iterdir()}  # old days are gone
    assert json.loads((out / "world.json").read_text())["period"]["end"] == today


def test_generate_refuses_bad_sizes(tmp_path) -> None:
    result = CliRunner().invoke(main, ["generate", "--visitors", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--visitors" in result.output
