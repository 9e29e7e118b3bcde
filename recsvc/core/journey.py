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
recorded with their time. Two depend on time alone (``TIMED_SEGMENTS``): a cart becomes
abandoned, a customer becomes a churn risk, while the visitor does nothing. Those are read
as of "now" whenever the profile is shown, and written to the history, at the moment they
happened, when the visitor's next event arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    "cart_abandoner",
    "deal_seeker",
    "first_time_buyer",
    "repeat_buyer",
    "loyal",
    "high_value",
    "churn_risk",
)

# Segments a visitor can enter with no event of theirs, as time passes: their entry is
# recorded at the moment it happened, when their next event arrives.
TIMED_SEGMENTS: frozenset[str] = frozenset({"cart_abandoner", "churn_risk"})

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


@dataclass(frozen=True)
class SegmentFacts:
    """What segment rules look at, read off a visitor's profile (``recsvc.core.profile``).

    ``counts`` are events per type (plus ``referral`` and ``deal``: events whose properties
    carry a discount, coupon or promo); ``abandoned_at`` is when the cart is or will be
    abandoned (None when it cannot be); times are epoch seconds.
    """

    counts: dict[str, int]
    visits: int
    orders: int
    spend: float
    cart_items: int
    abandoned_at: float | None
    last_seen: float
    now: float


def compute_segments(facts: SegmentFacts, settings: Settings) -> list[str]:
    """The segments this history belongs to at ``facts.now``, in the order of ``SEGMENTS``."""
    counts = facts.counts
    idle = facts.now - facts.last_seen
    member = {
        "new_visitor": facts.visits <= 1,
        "returning_visitor": facts.visits > 1,
        "engaged_browser": counts.get("product_view", 0) >= settings.engaged_min_product_views,
        "has_cart": facts.cart_items > 0,
        "cart_abandoner": facts.abandoned_at is not None and facts.now >= facts.abandoned_at,
        "deal_seeker": counts.get("deal", 0) >= settings.deal_seeker_min_events,
        "first_time_buyer": facts.orders == 1,
        "repeat_buyer": facts.orders >= 2,
        "loyal": facts.orders >= settings.loyal_min_orders,
        "high_value": facts.spend >= settings.high_value_min_spend,
        "churn_risk": facts.orders > 0 and idle > settings.churn_risk_days * DAY,
    }
    return [name for name in SEGMENTS if member[name]]


def segment_entered_at(name: str, facts: SegmentFacts, settings: Settings) -> float:
    """When a visitor entered the timed segment ``name`` without doing anything."""
    if name == "cart_abandoner" and facts.abandoned_at is not None:
        return facts.abandoned_at
    if name == "churn_risk":
        return facts.last_seen + settings.churn_risk_days * DAY
    return facts.now


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
