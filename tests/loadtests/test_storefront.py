"""The storefront the locust load test plays: journey statistics, model ids, visits, SLOs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from loadtests.storefront import (
    JourneyStats,
    ModelIds,
    item_weights,
    plan_visit,
    slo_breaches,
)
from recsvc.synth.generator import GenerateConfig, generate

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(visitor: str, kind: str, minutes: float, **fields) -> dict:
    when = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {"visitor_id": visitor, "type": kind, "timestamp": when, **fields}


def test_journey_statistics_of_known_visits():
    records = [
        # a: lands from email, views two products (one review), carts, checks out, buys
        _event("a", "page_view", 0, source="email"),
        _event("a", "product_view", 1, item_id="i1"),
        _event("a", "review_view", 2, item_id="i1"),
        _event("a", "product_view", 3, item_id="i2"),
        _event("a", "add_to_cart", 4, item_id="i2"),
        _event("a", "checkout_start", 5),
        _event("a", "purchase", 6, item_id="i2"),
        # a again, two hours later (a second visit): bounces
        _event("a", "page_view", 126, source="direct"),
        # b: lands, searches, views one product, leaves
        _event("b", "page_view", 0, source="google_ads"),
        _event("b", "search", 1),
        _event("b", "product_view", 2, item_id="i1"),
        _event("b", "banner_impression", 2),
        _event("b", "banner_click", 3),
    ]
    stats = JourneyStats.from_records(records)
    assert stats.visits == 3
    assert stats.bounce_share == pytest.approx(1 / 3)
    assert stats.returning_share == pytest.approx(1 / 3)
    assert stats.views_per_visit == 1.5  # three views in the two visits that did not bounce
    assert stats.review_per_view == pytest.approx(1 / 3)
    assert stats.search_share == 0.5 and stats.cart_share == 0.5
    assert stats.checkout_share == 1.0 and stats.purchase_share == 1.0
    assert stats.banner_click_share == 1.0
    assert stats.source_shares["email"] == pytest.approx(1 / 3)
    assert stats.item_views == {"i1": 2, "i2": 1}


def test_statistics_of_a_generated_store_look_like_a_shop(tmp_path):
    config = GenerateConfig(
        visitors=400, items=60, days=5, seed=3, out=tmp_path, end_date=date(2026, 3, 1)
    )
    generate(config)
    stats = JourneyStats.from_store(tmp_path)
    assert stats.visits > 400
    assert 0.1 < stats.bounce_share < 0.7
    assert 0 < stats.cart_share < 1 and 0 < stats.purchase_share <= 1
    assert sum(stats.source_shares.values()) == pytest.approx(1.0)
    assert stats.views_per_visit >= 1


def _stats(**overrides) -> JourneyStats:
    base = dict(
        visits=100,
        source_shares={"direct": 1.0},
        bounce_share=0.3,
        views_per_visit=4.0,
        review_per_view=0.2,
        search_share=0.3,
        cart_share=0.4,
        checkout_share=0.5,
        purchase_share=0.5,
    )
    base.update(returning_share=0.4, banner_click_share=0.05)
    base.update(overrides)
    return JourneyStats(**base)


def test_visits_follow_the_statistics():
    rng = random.Random(1)
    stats = _stats()
    visits = [plan_visit(stats, ["i1", "i2", "i3"], [1, 1, 8], rng) for _ in range(4000)]
    assert all(v[0].page == "landing" for v in visits)
    bounced = [v for v in visits if len(v) == 1]
    assert len(bounced) / len(visits) == pytest.approx(0.3, abs=0.03)
    engaged = [v for v in visits if len(v) > 1]
    views = [sum(s.page == "product" for s in v) for v in engaged]
    assert sum(views) / len(views) == pytest.approx(4.0, abs=0.3)
    carted = [v for v in engaged if any(s.page == "cart" for s in v)]
    assert len(carted) / len(engaged) == pytest.approx(0.4, abs=0.04)
    items = [s.item for v in engaged for s in v if s.page == "product"]
    assert items.count("i3") / len(items) == pytest.approx(0.8, abs=0.03)
    for visit in carted:  # the cart holds an item the visit viewed
        viewed = {s.item for s in visit if s.page == "product"}
        assert next(s.item for s in visit if s.page == "cart") in viewed


def test_model_ids_and_item_weights(tmp_path, make_artifact):
    folder = make_artifact(version="v9", users=7, items=5).save(tmp_path)
    ids = ModelIds.from_folder(folder)
    assert ids.version == "v9" and ids.items == [f"i{n}" for n in range(5)]
    assert ids.users == [f"u{n}" for n in range(7)]
    weights = item_weights(ids, _stats(item_views={"i2": 9}))
    assert weights == [1.0, 1.0, 10.0, 1.0, 1.0]


@dataclass
class _Entry:
    name: str
    num_requests: int
    num_failures: int
    p95: float
    p99: float

    def get_response_time_percentile(self, q: float) -> float:
        return self.p95 if q == 0.95 else self.p99


SLO = {
    "default": {"p95_ms": 25, "p99_ms": 50, "error_rate": 0.001},
    "endpoint": {"GET a": {}, "POST b": {"p99_ms": 100}, "GET c": {}},
}


def test_slo_breaches_name_each_missed_limit():
    entries = [
        _Entry("GET a", 1000, 2, 20, 60),  # p99 and errors over
        _Entry("POST b", 1000, 0, 20, 90),  # within its own p99 limit
        _Entry("GET other", 10, 10, 999, 999),  # not in the SLOs: not judged
    ]
    breaches = slo_breaches(entries, SLO)
    assert breaches == [
        "GET a: p99 60 ms > 50 ms",
        "GET a: error rate 0.0020 > 0.001",
        "GET c: no request",
    ]


def test_no_breach_when_every_limit_holds():
    entries = [_Entry(name, 100, 0, 1, 2) for name in ("GET a", "POST b", "GET c")]
    assert slo_breaches(entries, SLO) == []
