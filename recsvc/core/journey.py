"""Journey stages and segments: pure rules over a visitor's profile.

Stages (DESIGN.md, "The customer journey, as data"), first matching rule wins:

Customers (at least one order, counted over the stitched customer):

- ``at_risk``: no activity for ``at_risk_days`` (recency has lapsed);
- ``advocacy``: ``advocacy_min_purchases`` orders or more, and a survey response or a
  referral (an event whose properties carry ``referral``);
- ``retention``: otherwise (has purchased, and may come back).

Visitors who have not bought:

- ``decision``: something in the cart, or a checkout started;
- ``consideration``: ``consideration_min_views`` product views, or a review view, or a search;
- ``awareness``: otherwise (first visit, little engagement).

A customer never falls back to a pre-purchase stage: a returning buyer with a new cart is
still ``retention`` (their cart is visible in the profile and the segments).

Segments are non-exclusive labels, recomputed on every event; entering and leaving are
recorded with their time.
"""

from __future__ import annotations

from typing import Any

from recsvc.settings import Settings

STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "decision",
    "retention",
    "advocacy",
    "at_risk",
)

SEGMENTS: tuple[str, ...] = (
    "new_visitor",
    "returning_visitor",
    "engaged_browser",
    "has_cart",
    "first_time_buyer",
    "repeat_buyer",
    "high_value",
)

DAY = 86400.0


def is_lapsed(last_seen: float, now: float, settings: Settings) -> bool:
    """True when ``now`` is more than ``at_risk_days`` after ``last_seen`` (epoch seconds)."""
    return now - last_seen > settings.at_risk_days * DAY


def lapse_time(last_seen: float, settings: Settings) -> float:
    """The moment a customer last seen at ``last_seen`` becomes at_risk."""
    return last_seen + settings.at_risk_days * DAY


def compute_stage(
    counts: dict[str, int],
    orders: int,
    cart_items: int,
    last_seen: float,
    now: float,
    settings: Settings,
) -> str:
    """The journey stage for the given history (see the module docstring for the rules).

    Parameters
    ----------
    counts : events seen per event type (plus ``referral``), for this visitor.
    orders : orders of the stitched customer.
    cart_items : distinct items in the stitched customer's cart.
    last_seen, now : epoch seconds.
    """
    if orders > 0:
        if is_lapsed(last_seen, now, settings):
            return "at_risk"
        engaged = counts.get("survey_response", 0) > 0 or counts.get("referral", 0) > 0
        if orders >= settings.advocacy_min_purchases and engaged:
            return "advocacy"
        return "retention"
    if cart_items > 0 or counts.get("checkout_start", 0) > 0:
        return "decision"
    if (
        counts.get("product_view", 0) >= settings.consideration_min_views
        or counts.get("review_view", 0) > 0
        or counts.get("search", 0) > 0
    ):
        return "consideration"
    return "awareness"


def compute_segments(
    counts: dict[str, int],
    visits: int,
    orders: int,
    spend: float,
    cart_items: int,
    settings: Settings,
) -> list[str]:
    """The segments this history belongs to, in the order of ``SEGMENTS``."""
    member = {
        "new_visitor": visits <= 1,
        "returning_visitor": visits > 1,
        "engaged_browser": counts.get("product_view", 0) >= settings.engaged_min_product_views,
        "has_cart": cart_items > 0,
        "first_time_buyer": orders == 1,
        "repeat_buyer": orders >= 2,
        "high_value": spend >= settings.high_value_min_spend,
    }
    return [name for name in SEGMENTS if member[name]]


def record_stage(history: list[dict[str, Any]], stage: str, at: float, limit: int) -> None:
    """Append a stage change to ``history`` (oldest first) unless ``stage`` is current."""
    if history and history[-1]["stage"] == stage:
        return
    previous = history[-1]["stage"] if history else None
    history.append({"stage": stage, "from": previous, "at": at})
    del history[:-limit]


def record_segments(
    history: list[dict[str, Any]], old: list[str], new: list[str], at: float, limit: int
) -> None:
    """Append ``enter``/``leave`` entries for the difference between two segment lists."""
    for name in new:
        if name not in old:
            history.append({"segment": name, "action": "enter", "at": at})
    for name in old:
        if name not in new:
            history.append({"segment": name, "action": "leave", "at": at})
    del history[:-limit]
