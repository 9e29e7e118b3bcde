"""The RetailRocket protocol runs end to end on a small file in RetailRocket's format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.protocols import retailrocket_scorers, retailrocket_top_n
from training.scorers import PopularScorer, RecentItemsScorer

DAY_MS = 86_400_000


def test_retailrocket_protocol_on_a_small_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lines = ["timestamp,visitorid,event,itemid"]
    start = 1_430_000_000_000
    for visitor in range(60):
        base = visitor % 3 * 10
        for n in range(8):
            day = rng.integers(0, 40)
            event = "addtocart" if n % 3 == 0 else "view"
            item = base + rng.integers(0, 10)
            lines.append(f"{start + day * DAY_MS + n},{visitor},{event},{item}")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    scorers = {"popular": PopularScorer(), "recent": RecentItemsScorer()}
    report = retailrocket_top_n(path, test_days=10, scorers=scorers, show_progress=False)
    assert report.fold["users"] > 0
    assert report.data["load"]["rows"] == 480 and not report.data["exclude_seen"]
    # The served chain and ALS first, then the baselines, on the same visitors.
    assert [m.name for m in report.models] == ["served", "als", "popular", "recent"]
    served = report.models[0]
    assert served.params["strategies"] == {"blend": report.fold["users"]}
    for model in report.models:
        low, high = model.metrics["ndcg@10_low"], model.metrics["ndcg@10_high"]
        assert low <= model.metrics["ndcg@10"] <= high


def test_own_item_baselines_are_left_out_when_seen_items_are_excluded() -> None:
    assert "recent" in retailrocket_scorers(exclude_seen=False)
    assert not any("recent" in name for name in retailrocket_scorers(exclude_seen=True))
