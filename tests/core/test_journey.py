import pytest

from recsvc.core.journey import (
    DAY,
    SegmentFacts,
    compute_segments,
    compute_stage,
    record_segments,
    record_stage,
    segment_entered_at,
)
from recsvc.settings import Settings

S = Settings()
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("counts", "orders", "cart", "idle_days", "expected"),
    [
        ({}, 0, 0, 0, "awareness"),
        ({"product_view": 1}, 0, 0, 0, "awareness"),
        ({"product_view": 2}, 0, 0, 0, "consideration"),
        ({"review_view": 1}, 0, 0, 0, "consideration"),
        ({"search": 1}, 0, 0, 0, "consideration"),
        ({"product_view": 1}, 0, 1, 0, "decision"),
        ({"checkout_start": 1}, 0, 0, 0, "decision"),
        ({}, 1, 0, 0, "retention"),
        ({}, 1, 3, 0, "retention"),  # a buyer never falls back to decision
        ({"survey_response": 1}, 1, 0, 0, "retention"),  # one order is not advocacy
        ({"survey_response": 1}, 2, 0, 0, "advocacy"),
        ({"referral": 1}, 2, 0, 0, "advocacy"),
        ({}, 2, 0, 0, "retention"),
        ({}, 1, 0, 61, "at_risk"),
        ({}, 1, 0, 59, "retention"),
        ({"survey_response": 1}, 3, 0, 61, "at_risk"),
        ({"product_view": 5}, 0, 0, 400, "consideration"),  # never bought: never at_risk
    ],
)
def test_stage_rules(counts, orders, cart, idle_days, expected):
    last_seen = NOW - idle_days * DAY
    assert compute_stage(counts, orders, cart, last_seen, NOW, S) == expected


def test_stage_thresholds_come_from_settings():
    strict = Settings(consideration_min_views=5, at_risk_days=10)
    assert compute_stage({"product_view": 4}, 0, 0, NOW, NOW, strict) == "awareness"
    assert compute_stage({}, 1, 0, NOW - 11 * DAY, NOW, strict) == "at_risk"


def facts(**changes) -> SegmentFacts:
    base = dict(
        counts={},
        visits=1,
        orders=0,
        spend=0.0,
        cart_items=0,
        abandoned_at=None,
        last_seen=NOW,
        now=NOW,
    )
    return SegmentFacts(**{**base, **changes})


def test_segments():
    assert compute_segments(facts(), S) == ["new_visitor"]
    assert compute_segments(
        facts(counts={"product_view": 5}, visits=2, orders=1, spend=10.0, cart_items=1), S
    ) == ["returning_visitor", "engaged_browser", "has_cart", "first_time_buyer"]
    assert compute_segments(facts(visits=3, orders=2, spend=600.0), S) == [
        "returning_visitor",
        "repeat_buyer",
        "high_value",
    ]


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("deal_seeker", {"counts": {"deal": 2}}, {"counts": {"deal": 1}}),
        ("loyal", {"orders": 3}, {"orders": 2}),
        ("high_value", {"orders": 1, "spend": 500.0}, {"orders": 1, "spend": 499.99}),
        (
            "cart_abandoner",
            {"cart_items": 1, "abandoned_at": NOW},
            {"cart_items": 1, "abandoned_at": NOW + 1},
        ),
        (
            "churn_risk",
            {"orders": 1, "last_seen": NOW - 30 * DAY - 1},
            {"orders": 1, "last_seen": NOW - 30 * DAY},
        ),
        ("churn_risk", {"orders": 1, "last_seen": NOW - 40 * DAY}, {"last_seen": NOW - 40 * DAY}),
    ],
)
def test_each_segment_rule_at_its_threshold(name, inside, outside):
    assert name in compute_segments(facts(**inside), S)
    assert name not in compute_segments(facts(**outside), S)


def test_timed_segments_are_entered_when_time_made_them():
    abandoned = facts(cart_items=1, abandoned_at=NOW - 5)
    assert segment_entered_at("cart_abandoner", abandoned, S) == NOW - 5
    lapsed = facts(orders=1, last_seen=NOW - 50 * DAY)
    assert segment_entered_at("churn_risk", lapsed, S) == NOW - 20 * DAY


def test_record_stage_keeps_changes_only_and_caps():
    history: list = []
    record_stage(history, "awareness", 1.0, limit=3)
    record_stage(history, "awareness", 2.0, limit=3)
    record_stage(history, "consideration", 3.0, limit=3)
    assert history == [
        {"stage": "awareness", "from": None, "at": 1.0},
        {"stage": "consideration", "from": "awareness", "at": 3.0},
    ]
    record_stage(history, "decision", 4.0, limit=3)
    record_stage(history, "retention", 5.0, limit=3)
    assert [h["stage"] for h in history] == ["consideration", "decision", "retention"]


def test_record_segments_enter_and_leave():
    history: list = []
    record_segments(history, ["new_visitor"], ["returning_visitor", "has_cart"], 7.0, limit=10)
    assert {(h["segment"], h["action"]) for h in history} == {
        ("returning_visitor", "enter"),
        ("has_cart", "enter"),
        ("new_visitor", "leave"),
    }
