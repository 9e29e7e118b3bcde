"""Abandoned-cart nudges: the pure rules the service and the backtest share.

A cart is *abandoned* when it has items, was last changed ``cart_abandon_seconds`` ago or
more, and no purchase came after that change. Each *nudge rule* is one channel: ``onsite``
(shown on the storefront's next page) or an off-site sender (``push``, ``email``, ``sms``)
that claims due carts. Every rule keeps a *holdout*: a fixed share of cart owners, chosen
by a hash of the owner and the rule so the same owner is always in or always out, who are
never nudged on that channel; their natural recovery is the baseline the analytics compare
recoveries with. Off-site rules also respect quiet hours and a weekly cap per owner.

A cart *owner* is the customer for a logged-in visitor (``u:<user_id>``), the visitor
otherwise (``v:<visitor_id>``): the same document that holds the cart (``recsvc.core.profile``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from recsvc.core.journey import DAY
from recsvc.settings import Settings

WEEK = 7 * DAY


def owner_of(visitor: dict[str, Any]) -> str:
    """The cart owner key of a visitor document."""
    if visitor.get("user_id"):
        return f"u:{visitor['user_id']}"
    return f"v:{visitor['visitor_id']}"


def cart_changed_at(shared: dict[str, Any]) -> float | None:
    """When the cart last changed, if it has items and no purchase came after the change;
    None for a cart that cannot be abandoned (empty, or bought from since)."""
    cart, purchases = shared["cart"], shared["purchases"]
    if not cart["items"] or cart["updated_at"] is None:
        return None
    last_purchase = purchases["last_at"]
    if last_purchase is not None and last_purchase >= cart["updated_at"]:
        return None
    return cart["updated_at"]


def abandoned_at(shared: dict[str, Any], settings: Settings) -> float | None:
    """The moment this cart is (or will be) abandoned, or None if it cannot be."""
    changed = cart_changed_at(shared)
    return None if changed is None else changed + settings.cart_abandon_seconds


def is_abandoned(shared: dict[str, Any], now: float, settings: Settings) -> bool:
    """True from exactly ``cart_abandon_seconds`` after the last change (inclusive)."""
    moment = abandoned_at(shared, settings)
    return moment is not None and now >= moment


def cart_value(shared: dict[str, Any]) -> float:
    items = shared["cart"]["items"].values()
    return round(sum((line.get("price") or 0) * line["quantity"] for line in items), 2)


def channel_delay(channel: str, settings: Settings) -> float:
    """Seconds after abandonment before a nudge on ``channel`` is due."""
    if channel == "onsite":
        return 0.0
    return float(getattr(settings, f"nudge_delay_{channel}_seconds"))


def due_at(shared: dict[str, Any], channel: str, settings: Settings) -> float | None:
    """When a nudge on ``channel`` becomes due for this cart, or None if it never will."""
    moment = abandoned_at(shared, settings)
    return None if moment is None else moment + channel_delay(channel, settings)


def in_holdout(owner: str, channel: str, share: float) -> bool:
    """Deterministic, stable membership of the ``channel`` rule's holdout: the owner's
    place in [0, 1) from a hash of rule and owner, below ``share``. Independent per rule,
    so one owner may be held out of email and still see the onsite nudge."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"holdout|abandoned_cart:{channel}|{owner}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def parse_quiet_hours(text: str) -> tuple[int, int] | None:
    """``"21-8"`` -> (21, 8): quiet from 21:00 until 08:00. Empty -> None (never quiet)."""
    text = text.strip()
    if not text:
        return None
    start, _, end = text.partition("-")
    hours = int(start), int(end)
    if not all(0 <= h <= 23 for h in hours) or hours[0] == hours[1]:
        raise ValueError(f"quiet hours {text!r}: want START-END, two different hours 0-23")
    return hours


def local_time(now: float, settings: Settings) -> datetime:
    return datetime.fromtimestamp(now, ZoneInfo(settings.marketing_timezone))


def quiet_until(now: float, channel: str, settings: Settings) -> float | None:
    """The end of the quiet hours ``now`` falls in for ``channel``, or None when a nudge
    may go out now. The onsite nudge is never quiet: the visitor is on the site."""
    hours = parse_quiet_hours(settings.nudge_quiet_hours)
    if channel == "onsite" or hours is None:
        return None
    start, end = hours
    local = local_time(now, settings)
    hour = local.hour
    quiet = start <= hour < end if start < end else hour >= start or hour < end
    if not quiet:
        return None
    until = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.timestamp()


def within_cap(claimed_times: Iterable[float], now: float, settings: Settings) -> bool:
    """True while the owner has had fewer than ``nudge_cap_per_week`` off-site nudges in
    the last 7 days."""
    recent = [t for t in claimed_times if now - t < WEEK]
    return len(recent) < settings.nudge_cap_per_week


@dataclass(frozen=True)
class Attribution:
    """A purchase ``at`` counts for a nudge (or a holdout chance) given at ``given_at`` when
    it comes after it, within ``nudge_attribution_days``."""

    given_at: float

    def covers(self, at: float, settings: Settings) -> bool:
        return self.given_at <= at <= self.given_at + settings.nudge_attribution_days * DAY


def message_for(lines: list[dict[str, Any]]) -> str:
    """The onsite nudge's text, naming the first item by title when the catalog has one
    (and counting the other products, not their units)."""
    count = sum(line["quantity"] for line in lines)
    first = lines[0].get("title") if lines else None
    if first and len(lines) == 1:
        return f"{first} is still in your cart."
    if first:
        others = len(lines) - 1
        return f"{first} and {others} more item{'s' if others != 1 else ''} are still in your cart."
    return f"You left {count} item{'s' if count != 1 else ''} in your cart."
