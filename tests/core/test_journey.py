import pytest

from recsvc.core.journey import (
    DAY,
    compute_segments,
    compute_stage,
    record_segments,
    record_stage,
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


def test_segments():
    assert compute_segments({}, 1, 0, 0.0, 0, S) == ["new_visitor"]
    assert compute_segments({"product_view": 5}, 2, 1, 10.0, 1, S) == [
        "returning_visitor",
        "engaged_browser",
        "has_cart",
        "first_time_buyer",
    ]
    assert compute_segments({}, 3, 2, 600.0, 0, S) == [
        "returning_visitor",
        "repeat_buyer",
        "high_value",
    ]


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
