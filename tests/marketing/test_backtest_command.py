"""``recsvc backtest-rules`` end to end on a small generated store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from recsvc.cli import main
from recsvc.keys import KeySpace
from recsvc.marketing.inputs import normalise_stored
from recsvc.marketing.nudge_sim import ENDINGS
from recsvc.schemas.banners import BannerSchema
from recsvc.store.banners import BannerStore

BANNERS = [
    {
        "id": "welcome",
        "placement": "home",
        "priority": 1,
        "content": {"title": "Welcome"},
        "rules": {"stages": ["awareness"]},
    },
    {
        "id": "b01",  # an id the generator logs impressions of: its cap reads them
        "placement": "home",
        "content": {"title": "Logged banner"},
        "frequency_cap_per_day": 1,
    },
    {
        "id": "cart",
        "placement": "home",
        "priority": 10,
        "content": {"title": "Your cart"},
        "rules": {"has_cart": True},
    },
    {
        "id": "c01-a",
        "placement": "product",
        "content": {"title": "c01, copy A"},
        "rules": {"categories": ["c01", "c02", "c03"]},
        "experiment": {"id": "copy", "variant": "a"},
        "frequency_cap_per_day": 2,
    },
    {
        "id": "c01-b",
        "placement": "product",
        "content": {"title": "c01, copy B"},
        "rules": {"categories": ["c01", "c02", "c03"]},
        "experiment": {"id": "copy", "variant": "b"},
    },
    {
        "id": "shipping",
        "placement": "checkout",
        "content": {"title": "Free shipping"},
        "rules": {"cart_value_min": 50},
    },
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    args = ["generate", "--visitors", "400", "--items", "80", "--days", "7", "--seed", "3"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--end-date", "2026-03-10"])
    assert result.exit_code == 0, result.output
    (out / "banners.json").write_text(json.dumps({"banners": BANNERS}))
    return out


def backtest(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["backtest-rules", *args], env=env)


def test_the_report_files_and_their_numbers_agree(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = backtest(
        "--events", str(shop / "events"),
        "--banners", str(shop / "banners.json"),
        "--catalog", str(shop / "items.csv"),
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "backtest.md").read_text().startswith("# Rule backtest")
    report = json.loads((out / "backtest.json").read_text())
    world = json.loads((shop / "world.json").read_text())
    assert report["input"]["events"] == world["counts"]["events"]
    assert report["input"]["read"]["malformed"] == 0
    assert "none dropped" in result.output and "welcome" in result.output

    visitors = report["input"]["visitors"]
    banners = report["banners"]
    assert list(banners) == [b["id"] for b in BANNERS]
    for banner_id, row in banners.items():
        losses = row["lost_to_cap"] + row["lost_to_other_variant"] + row["lost_to_higher_rank"]
        assert row["eligible"] == row["chosen"] + losses, banner_id
        assert row["eligible"] <= row["opportunities"]
        assert row["visitors_reached"] <= row["visitors_eligible"] <= visitors
        assert max(row["reached_per_day"].values(), default=0) <= row["visitors_reached"]
        assert sum(row["reached_per_day"].values()) >= row["visitors_reached"]
        assert sum(row["reached_per_stage"].values()) >= row["visitors_reached"]
        assert row["chosen"] >= row["visitors_reached"]
    for placement, row in report["placements"].items():
        chosen = sum(b["chosen"] for b in banners.values() if b["placement"] == placement)
        assert chosen == row["filled"] <= row["opportunities"]
    assert banners["welcome"]["chosen"] > 0 and banners["cart"]["chosen"] > 0
    assert banners["b01"]["lost_to_cap"] > 0  # the logged impressions of b01 count
    assert banners["c01-a"]["lost_to_other_variant"] > 0 and banners["c01-b"]["chosen"] > 0
    for pair in report["banner_overlaps"]:
        a, b = (banners[name] for name in pair["banners"])
        assert pair["reached_both"] <= min(a["visitors_reached"], b["visitors_reached"])
        assert pair["eligible_both"] <= min(a["visitors_eligible"], b["visitors_eligible"])
    copy = next(p for p in report["banner_overlaps"] if p["banners"] == ["c01-a", "c01-b"])
    assert copy["reached_both"] == 0 < copy["eligible_both"]

    nudges = report["nudges"]
    assert set(nudges) == {"onsite", "push", "email", "sms"}
    for channel, row in nudges.items():
        assert row["scheduled"] == sum(row[name] for name in ENDINGS), channel
        assert row["sent"] + row["held_out"] + row["capped"] <= row["due"] <= row["scheduled"]
        assert row["owners_reached"] <= row["sent"]
        assert row["recovered"] <= row["sent"] and row["holdout_recovered"] <= row["held_out"]
    assert nudges["email"]["sent"] > 0 and nudges["onsite"]["cancelled_by_purchase"] > 0


def test_simulated_impressions_only_add_cap_losses(shop: Path, tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("logged", []), ("simulated", ["--simulate-impressions"])):
        out = tmp_path / name
        common = ["--banners", str(shop / "banners.json"), "--catalog", str(shop / "items.csv")]
        result = backtest("--events", str(shop), *common, "--out", str(out), *extra)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "backtest.json").read_text())
    assert runs["simulated"]["options"]["simulate_impressions"] is True
    for banner_id in ("b01", "c01-a"):
        logged, simulated = (runs[n]["banners"][banner_id] for n in ("logged", "simulated"))
        assert simulated["lost_to_cap"] > logged["lost_to_cap"], banner_id
    assert runs["simulated"]["nudges"] == runs["logged"]["nudges"]


def test_without_a_catalog_category_rules_never_match(shop: Path, tmp_path: Path) -> None:
    result = backtest(
        "--events", str(shop / "events"),
        "--banners", str(shop / "banners.json"),
        "--out", str(tmp_path / "report"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.count("category rules never match") == 1
    report = json.loads((tmp_path / "report" / "backtest.json").read_text())
    assert report["banners"]["c01-a"]["eligible"] == 0
    assert report["input"]["catalog_items"] is None


def test_dropped_lines_are_reported(shop: Path, tmp_path: Path, settings) -> None:
    log = tmp_path / "log" / "part-1.jsonl"
    log.parent.mkdir()
    first = next((shop / "events").rglob("part-*")).read_text().splitlines()[:50]
    no_time = json.dumps({"id": "x1", "type": "page_view", "visitor_id": "v1"})
    log.write_text("\n".join([*first, first[0], "{not json", no_time]) + "\n")
    # The test Redis, in a namespace of its own (REDIS_URL may be unset: embedded Redis).
    env = {"REDIS_URL": settings.redis_url, "RECSVC_NAMESPACE": settings.namespace}
    result = backtest("--events", str(log.parent), "--out", str(tmp_path / "report"), env=env)
    assert result.exit_code == 0, result.output  # no banners stored: nudges only
    assert "dropped 1 duplicates, 1 malformed lines" in result.output
    assert "1 records without a type, visitor or valid timestamp" in result.output
    report = json.loads((tmp_path / "report" / "backtest.json").read_text())
    assert report["input"]["read"]["duplicates"] == 1 and report["input"]["events"] == 50
    assert report["input"]["unusable"] == 1


@pytest.mark.parametrize(
    ("banners", "expected"),
    [
        ([{**BANNERS[0], "rules": {"stages": ["browsing"]}}], "'welcome' (#0): rules.stages.0"),
        ([BANNERS[0], {**BANNERS[1], "priority": "high"}], "'b01' (#1): priority"),
        ([{k: v for k, v in BANNERS[0].items() if k != "id"}], "banner #0: id"),
        ([BANNERS[0], BANNERS[0]], "'welcome' (#1): id: Used by an earlier banner"),
        ({"banner": []}, "want a list of banners"),
        ("not json", "not a readable JSON file"),
    ],
)
def test_an_invalid_banner_file_is_a_clean_usage_error(
    tmp_path: Path, shop: Path, banners, expected: str
) -> None:
    path = tmp_path / "banners.json"
    path.write_text(banners if isinstance(banners, str) else json.dumps(banners))
    result = backtest("--events", str(shop), "--banners", str(path), "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output and "--banners" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output and not (tmp_path / "backtest.json").exists()


def test_without_a_file_the_banners_stored_in_the_service_are_used(
    shop: Path, tmp_path: Path, settings, redis_conn
) -> None:
    store = BannerStore(redis_conn, KeySpace(settings.namespace))
    times = {"created_at": "2026-03-01T00:00:00.000Z", "updated_at": "2026-03-01T00:00:00.000Z"}
    expired = {**BANNERS[0], "id": "expired", "rules": {"end": "2026-03-01T00:00:00Z"}}
    for body in (BANNERS[0], expired):  # stored as the admin endpoint stores them
        assert store.create({**BannerSchema().load(body), **times})
    env = {"REDIS_URL": settings.redis_url, "RECSVC_NAMESPACE": settings.namespace}
    result = backtest("--events", str(shop), "--out", str(tmp_path), env=env)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "backtest.json").read_text())
    assert list(report["banners"]) == ["expired", "welcome"]
    assert report["banners"]["welcome"]["chosen"] > 0 == report["banners"]["expired"]["chosen"]


def test_stored_rule_times_may_be_epoch_seconds_or_iso() -> None:
    iso = {"id": "b", "rules": {"start": "2026-03-01T00:00:00Z", "end": 1772500000.0}}
    assert normalise_stored(iso)["rules"] == {"start": 1772323200.0, "end": 1772500000.0}
    assert normalise_stored({"id": "b"})["priority"] == 0


def test_an_unreachable_redis_is_a_clean_error(shop: Path, tmp_path: Path, free_port) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port}"}
    result = backtest("--events", str(shop), "--out", str(tmp_path), env=env)
    assert result.exit_code == 1 and "not reachable" in result.output
    assert "Traceback" not in result.output
