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
    assert [m.name for m in report.models] == ["popular", "recent"]


def test_own_item_baselines_are_left_out_when_seen_items_are_excluded() -> None:
    assert "recent" in retailrocket_scorers(exclude_seen=False)
    assert not any("recent" in name for name in retailrocket_scorers(exclude_seen=True))


def test_active_user_filter_keeps_only_test_users_with_enough_history(make_log) -> None:
    from training.protocols import keep_active_test_users
    from training.splits import split_global_time

    day = 86_400.0
    rows = [("busy", f"i{n}", n * day, "product_view") for n in range(6)]
    rows += [("quiet", "i0", 1 * day, "product_view")]
    rows += [("busy", "i1", 20 * day, "add_to_cart"), ("quiet", "i2", 20 * day, "add_to_cart")]
    split = split_global_time(make_log(rows), cutoff=10 * day)
    assert len(split.test.user) == 2
    kept = keep_active_test_users(split, min_train_events=5)
    assert [split.test.users[u] for u in kept.test.user] == ["busy"]
    assert keep_active_test_users(split, 1) is split
