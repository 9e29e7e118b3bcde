"""Banner targeting: what a rule may ask of a visitor, and whether a visitor matches it.

A banner's ``rules`` is an object whose keys are targeting kinds; every kind present must
match (AND), and a list inside one kind matches when any of its values does (OR):

=================  ===================================================================
``stages``         journey stage (``recsvc.core.journey.STAGES``)
``segments``       any of these segments (``recsvc.core.journey.SEGMENTS``)
``sources``        first-touch source (``recsvc.core.events.SOURCES``)
``visitor_type``   ``new`` or ``returning``
``has_cart``       true or false
``cart_value_min`` cart value at least this
``cart_value_max`` cart value at most this
``categories``     the visitor's recent items include one of these categories (affinity)
``days``           store-local day of week: ``mon`` ... ``sun``
``hours``          store-local hour, 0-23
``start``/``end``  epoch seconds (the API takes ISO 8601): live from start, until end
=================  ===================================================================

This module is pure: the service (``recsvc.serving.banners``) and the rule backtest
(``recsvc.marketing.backtest``) build a ``Visitor`` from a profile and call ``match``, so
what the backtest reports is what the live endpoint decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recsvc.core import nudges
from recsvc.core.profile import labels_at, new_shared
from recsvc.settings import Settings

RULE_KINDS: tuple[str, ...] = (
    "stages",
    "segments",
    "sources",
    "visitor_type",
    "has_cart",
    "cart_value_min",
    "cart_value_max",
    "categories",
    "days",
    "hours",
    "start",
    "end",
)
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
VISITOR_TYPES: tuple[str, ...] = ("new", "returning")

CategoryOf = Callable[[str], str | None]


@dataclass(frozen=True)
class Visitor:
    """What targeting reads of one visitor, at one moment."""

    visitor_id: str
    stage: str
    segments: frozenset[str]
    source: str | None  # first touch
    visitor_type: str
    cart_value: float
    cart_items: int
    # Category -> how many of the visitor's recent items are in it.
    categories: Counter[str] = field(default_factory=Counter)
    recent_items: tuple[str, ...] = ()  # newest first
    recent_categories: tuple[str | None, ...] = ()  # of each recent item
    day: str = "mon"  # store-local
    hour: int = 0  # store-local
    now: float = 0.0


def visitor_from_profile(
    visitor: dict[str, Any] | None,
    shared: dict[str, Any] | None,
    now: float,
    settings: Settings,
    category_of: CategoryOf,
    visitor_id: str = "",
) -> Visitor:
    """The targeting view of a visitor's profile documents; a visitor never seen (None) is
    a new visitor in awareness with nothing in the cart."""
    local = nudges.local_time(now, settings)
    moment = {"day": DAYS[local.weekday()], "hour": local.hour, "now": now}
    if visitor is None:
        return Visitor(
            visitor_id, "awareness", frozenset({"new_visitor"}), None, "new", 0.0, 0, **moment
        )
    # A logged-in visitor's cart lives in the customer document; if that is gone (expired
    # on its own), the visitor document no longer holds one either: an empty cart.
    shared = shared or visitor.get("shared") or new_shared()
    stage, segments = labels_at(visitor, shared, now, settings)
    recent = tuple(entry[0] for entry in visitor["recent_items"])
    recent_categories = tuple(map(category_of, recent))
    categories = Counter(c for c in recent_categories if c)
    return Visitor(
        visitor_id=visitor["visitor_id"],
        stage=stage,
        segments=frozenset(segments),
        source=(visitor["first_touch"] or {}).get("source"),
        visitor_type="new" if visitor["visits"] <= 1 else "returning",
        cart_value=nudges.cart_value(shared),
        cart_items=len(shared["cart"]["items"]),
        categories=categories,
        recent_items=recent,
        recent_categories=recent_categories,
        **moment,
    )


def _in(values: list[Any], value: Any) -> Any:
    return value if value in values else None


# kind -> (rule value, visitor) -> the visitor's value that matched, or None.
# ``False`` and ``0`` are real matches (``has_cart: false``, hour 0), hence ``_MISS``.
_MISS = object()


def _matcher(kind: str, wanted: Any, visitor: Visitor) -> Any:
    if kind == "stages":
        return _in(wanted, visitor.stage) or _MISS
    if kind == "segments":
        hits = [s for s in wanted if s in visitor.segments]
        return hits or _MISS
    if kind == "sources":
        return _in(wanted, visitor.source) or _MISS
    if kind == "visitor_type":
        return visitor.visitor_type if visitor.visitor_type == wanted else _MISS
    if kind == "has_cart":
        return (visitor.cart_items > 0) if (visitor.cart_items > 0) == wanted else _MISS
    if kind == "cart_value_min":
        return visitor.cart_value if visitor.cart_value >= wanted else _MISS
    if kind == "cart_value_max":
        return visitor.cart_value if visitor.cart_value <= wanted else _MISS
    if kind == "categories":
        hits = [c for c in wanted if visitor.categories.get(c)]
        return hits or _MISS
    if kind == "days":
        return _in(wanted, visitor.day) or _MISS
    if kind == "hours":
        return visitor.hour if visitor.hour in wanted else _MISS
    if kind == "start":
        return visitor.now if visitor.now >= wanted else _MISS
    if kind == "end":
        return visitor.now if visitor.now < wanted else _MISS
    raise ValueError(f"unknown targeting kind {kind!r}")


def match(rules: dict[str, Any], visitor: Visitor) -> dict[str, Any] | None:
    """For a visitor who meets every rule: each rule kind with the visitor's value that met
    it (what the answer shows as the matched rule). None when any rule fails."""
    matched: dict[str, Any] = {}
    for kind, wanted in rules.items():
        value = _matcher(kind, wanted, visitor)
        if value is _MISS:
            return None
        matched[kind] = value
    return matched
