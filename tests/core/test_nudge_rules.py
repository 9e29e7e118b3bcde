"""The pure abandoned-cart rules (recsvc.core.nudges): thresholds, delays, quiet hours,
holdout, weekly cap, attribution window and the message."""

from datetime import UTC, datetime

import pytest

from recsvc.core.nudges import (
    DAY,
    WEEK,
    Attribution,
    abandoned_at,
    cart_changed_at,
    cart_value,
    due_at,
    in_holdout,
    is_abandoned,
    message_for,
    owner_of,
    parse_quiet_hours,
    quiet_until,
    within_cap,
)
from recsvc.core.profile import new_shared
from recsvc.settings import Settings

SETTINGS = Settings()
T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()


def shared_with(items=None, updated_at=T, last_purchase=None):
    shared = new_shared()
    shared["cart"]["items"] = items if items is not None else {"a": {"quantity": 1, "price": 5}}
    shared["cart"]["updated_at"] = updated_at
    shared["purchases"]["last_at"] = last_purchase
    return shared


def at(text: str, zone=UTC) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def test_owner_is_the_customer_when_logged_in():
    assert owner_of({"visitor_id": "v1", "user_id": None}) == "v:v1"
    assert owner_of({"visitor_id": "v1", "user_id": "u1"}) == "u:u1"


def test_abandonment_threshold_is_inclusive():
    shared = shared_with()
    assert abandoned_at(shared, SETTINGS) == T + 1800
    assert not is_abandoned(shared, T + 1799, SETTINGS)
    assert is_abandoned(shared, T + 1800, SETTINGS)
    assert is_abandoned(shared, T + 10 * DAY, SETTINGS)


@pytest.mark.parametrize(
    ("shared", "why"),
    [
        (shared_with(items={}), "empty cart"),
        (shared_with(updated_at=None), "never changed"),
        (shared_with(last_purchase=T), "bought at the change"),
        (shared_with(last_purchase=T + 60), "bought after the change"),
    ],
)
def test_carts_that_cannot_be_abandoned(shared, why):
    assert cart_changed_at(shared) is None, why
    assert due_at(shared, "email", SETTINGS) is None
    assert not is_abandoned(shared, T + WEEK, SETTINGS)


def test_a_purchase_before_the_last_change_does_not_cancel():
    assert cart_changed_at(shared_with(last_purchase=T - 1)) == T


def test_each_channel_waits_its_delay():
    shared = shared_with()
    assert due_at(shared, "onsite", SETTINGS) == T + 1800
    assert due_at(shared, "push", SETTINGS) == T + 1800
    assert due_at(shared, "email", SETTINGS) == T + 1800 + 3600
    later = SETTINGS.replace(nudge_delay_sms_seconds=60)
    assert due_at(shared, "sms", later) == T + 1860


def test_cart_value_sums_priced_lines():
    items = {"a": {"quantity": 2, "price": 9.95}, "b": {"quantity": 1, "price": None}}
    assert cart_value(shared_with(items=items)) == 19.9


# --- quiet hours -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2026-03-10T20:59:59", None),
        ("2026-03-10T21:00:00", "2026-03-11T08:00:00"),  # across midnight: tomorrow 08:00
        ("2026-03-10T23:59:00", "2026-03-11T08:00:00"),
        ("2026-03-11T00:00:00", "2026-03-11T08:00:00"),  # after midnight: today 08:00
        ("2026-03-11T07:59:59", "2026-03-11T08:00:00"),
        ("2026-03-11T08:00:00", None),
        ("2026-03-11T12:00:00", None),
    ],
)
def test_quiet_hours_across_midnight(now, until):
    expected = None if until is None else at(until)
    assert quiet_until(at(now), "email", SETTINGS) == expected


def test_quiet_hours_within_one_day_and_in_the_store_time_zone():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    settings = SETTINGS.replace(nudge_quiet_hours="1-5", marketing_timezone="Europe/Berlin")
    assert quiet_until(at("2026-03-11T00:59:00", berlin), "push", settings) is None
    assert quiet_until(at("2026-03-11T03:00:00", berlin), "push", settings) == at(
        "2026-03-11T05:00:00", berlin
    )
    # 03:00 UTC is 04:00 in Berlin (UTC+1 in March): quiet there, until 05:00 Berlin time.
    assert quiet_until(at("2026-03-11T03:00:00"), "push", settings) == at("2026-03-11T04:00:00")
    assert quiet_until(at("2026-03-11T05:00:00", berlin), "push", settings) is None


def test_onsite_and_empty_quiet_hours_are_never_quiet():
    night = at("2026-03-10T23:00:00")
    assert quiet_until(night, "onsite", SETTINGS) is None
    assert quiet_until(night, "sms", SETTINGS.replace(nudge_quiet_hours="")) is None


@pytest.mark.parametrize("text", ["8-8", "25-3", "x-2", "21"])
def test_bad_quiet_hours_are_refused(text):
    with pytest.raises(ValueError):
        parse_quiet_hours(text)


# --- holdout -----------------------------------------------------------------------------
OWNERS = [f"v:visitor-{n}" for n in range(10_000)]


def test_holdout_share_is_about_right():
    for share in (0.1, 0.5):
        held = sum(in_holdout(owner, "email", share) for owner in OWNERS) / len(OWNERS)
        # 10,000 draws: the standard error is at most 0.005; 4 of them is a safe margin.
        assert abs(held - share) < 0.02, (share, held)


def test_holdout_is_stable_and_independent_per_rule():
    first = [in_holdout(owner, "email", 0.5) for owner in OWNERS]
    assert first == [in_holdout(owner, "email", 0.5) for owner in OWNERS]
    push = [in_holdout(owner, "push", 0.5) for owner in OWNERS]
    both = sum(a and b for a, b in zip(first, push, strict=True)) / len(OWNERS)
    assert abs(both - 0.25) < 0.02  # independent rules: 0.5 × 0.5
    # A bigger share only adds owners: whoever is held out at 10% still is at 50%.
    assert all(in_holdout(o, "email", 0.5) for o in OWNERS if in_holdout(o, "email", 0.1))


def test_holdout_extremes():
    assert not any(in_holdout(owner, "sms", 0.0) for owner in OWNERS[:1000])
    assert all(in_holdout(owner, "sms", 1.0) for owner in OWNERS[:1000])


# --- weekly cap, attribution, message ------------------------------------------------------
def test_weekly_cap_counts_the_last_seven_days():
    settings = SETTINGS.replace(nudge_cap_per_week=2)
    assert within_cap([], T, settings)
    assert within_cap([T - DAY], T, settings)
    assert not within_cap([T - DAY, T - 2 * DAY], T, settings)
    # A claim exactly a week old no longer counts.
    assert within_cap([T - WEEK, T - DAY], T, settings)
    assert not within_cap([T - WEEK + 1, T - DAY], T, settings)


def test_attribution_window_is_inclusive_and_after_the_nudge():
    window = Attribution(T)
    assert window.covers(T, SETTINGS)
    assert window.covers(T + 7 * DAY, SETTINGS)
    assert not window.covers(T + 7 * DAY + 1, SETTINGS)
    assert not window.covers(T - 1, SETTINGS)


def test_message_names_the_item_when_the_catalog_has_a_title():
    assert message_for([{"item_id": "a", "quantity": 1, "title": "Red shoes"}]) == (
        "Red shoes is still in your cart."
    )
    lines = [
        {"item_id": "a", "quantity": 2, "title": "Red shoes"},
        {"item_id": "b", "quantity": 1, "title": "Socks"},
    ]
    assert message_for(lines) == "Red shoes and 1 more item are still in your cart."
    lines.append({"item_id": "c", "quantity": 1, "title": "Hat"})
    assert message_for(lines) == "Red shoes and 2 more items are still in your cart."
    assert message_for([{"item_id": "a", "quantity": 1}]) == "You left 1 item in your cart."
    assert message_for([{"item_id": "a", "quantity": 3}]) == "You left 3 items in your cart."
