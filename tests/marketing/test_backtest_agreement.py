"""The backtest decides what the live endpoint decides.

The same generated events go into the live service (``POST /v1/events``) one opportunity
at a time; at each opportunity the backtest kept, the manual clock is set to that event's
time and ``GET /v1/visitors/<id>/banners`` must answer the banner the backtest chose."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from recsvc.eventlog.reader import iter_records
from recsvc.marketing.backtest import Backtest
from recsvc.marketing.inputs import load_banners_file
from recsvc.marketing.replay import timeline
from recsvc.synth.generator import GenerateConfig, generate

# Every rule kind that reads the profile, caps that read logged impressions (b01, b02 and
# b04 are banners the generator logs), an experiment, priorities and ties broken by
# affinity, then by id.
BANNERS = [
    {"id": "b01", "placement": "home", "priority": 2, "frequency_cap_per_day": 1},
    {"id": "b02", "placement": "home", "priority": 2, "frequency_cap_per_day": 1},
    {"id": "b04", "placement": "home", "priority": 2, "frequency_cap_per_day": 1},
    {"id": "welcome", "placement": "home", "rules": {"stages": ["awareness"]}},
    {"id": "back", "placement": "home", "rules": {"visitor_type": "returning"}},
    {"id": "cart", "placement": "home", "priority": 5, "rules": {"has_cart": True}},
    {
        "id": "abandoned",
        "placement": "home",
        "priority": 6,
        "rules": {"segments": ["cart_abandoner"], "cart_value_min": 30},
    },
    {
        "id": "c-a",
        "placement": "product",
        "rules": {"categories": ["c01", "c02", "c03", "c04"]},
        "experiment": {"id": "copy", "variant": "a"},
        "frequency_cap_per_day": 3,
    },
    {
        "id": "c-b",
        "placement": "product",
        "rules": {"categories": ["c01", "c02", "c03", "c04"]},
        "experiment": {"id": "copy", "variant": "b"},
    },
    {"id": "p-c05", "placement": "product", "promotes": {"categories": ["c05"]}},
    {"id": "p-c06", "placement": "product", "promotes": {"categories": ["c06"]}},
    {"id": "evening", "placement": "product", "priority": 1, "rules": {"hours": [18, 19, 20]}},
    {"id": "weekend", "placement": "cart", "rules": {"days": ["sat", "sun"]}},
    {"id": "ads", "placement": "cart", "rules": {"sources": ["google_ads", "facebook_ads"]}},
    {"id": "big", "placement": "checkout", "rules": {"cart_value_min": 100}},
    {"id": "small", "placement": "checkout", "rules": {"cart_value_max": 99.99}},
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("agreement")
    config = GenerateConfig(
        out=out, visitors=120, items=60, days=4, seed=21, end_date=date(2026, 3, 8)
    )
    generate(config)
    banners = [{**b, "content": {"title": b["id"]}} for b in BANNERS]
    (out / "banners.json").write_text(json.dumps(banners))
    return out


def _as_sent(record: dict) -> dict:
    """The event as a storefront sends it: the service gives the id and received_at."""
    return {k: v for k, v in record.items() if k not in ("id", "received_at")}


def test_every_backtest_decision_is_the_live_answer(client, clock, settings, shop: Path) -> None:
    with (shop / "items.csv").open() as handle:
        items = [
            {"item_id": r["item_id"], "category": r["category"]} for r in csv.DictReader(handle)
        ]
    assert client.put("/v1/admin/catalog/items", json={"items": items}).status_code == 200
    banners = load_banners_file(shop / "banners.json")
    for body in json.loads((shop / "banners.json").read_text()):
        response = client.post("/v1/admin/banners", json=body)
        assert response.status_code == 201, response.json

    categories = {item["item_id"]: item["category"] for item in items}
    ordered = [record for _, record in timeline(iter_records(shop / "events")).events]
    report = Backtest(banners, settings, categories.get, keep_decisions=True).run(ordered)
    position = {record["id"]: n for n, record in enumerate(ordered)}
    assert len(report.decisions) > 100
    assert sum(report.banners[b].lost_to_cap for b in ("b01", "b02", "b04")) > 0

    posted = 0
    mismatches = []
    for decision in report.decisions:
        upto = position[decision.event_id] + 1
        clock.value = decision.at
        if upto > posted:
            events = [_as_sent(record) for record in ordered[posted:upto]]
            response = client.post("/v1/events", json={"events": events})
            assert response.status_code == 202, response.json
            posted = upto
        answer = client.get(
            f"/v1/visitors/{decision.visitor_id}/banners",
            query_string={"placement": decision.placement, "n": 1},
        )
        assert answer.status_code == 200, answer.json
        live = tuple(banner["id"] for banner in answer.json["banners"])
        if live != decision.chosen:
            mismatches.append((decision, live))
    assert not mismatches, mismatches[:5]
    chosen = {banner_id for decision in report.decisions for banner_id in decision.chosen}
    assert len(chosen) >= 8  # the answers compared cover most rule kinds
