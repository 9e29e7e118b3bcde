"""The real-time visitor profile: applying one event to it, and showing it.

Two plain JSON documents hold a visitor's state (the store layer keeps them in Redis):

- the *visitor document*: first/last seen, visits, touches, counts, stage and segments with
  their histories, recent items, funnel progress;
- the *shared document*: cart and purchases. It belongs to the customer: once a visitor is
  seen with a ``user_id`` it lives under that user, so two devices of one logged-in
  customer share one cart and one purchase history (user stitching). Before that it lives
  inside the visitor document under ``"shared"``.

Times inside the documents are epoch seconds (floats); ``show_profile`` renders ISO 8601.
Recent items are stored compactly as ``[item_id, event_type, at, touches]``, newest first:
the latest touch's type and time and how many events the item had since it entered the
list (documents written before ``touches`` existed hold three fields: read them as 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsvc.core import funnel, journey, nudges
from recsvc.core.events import event_day, format_timestamp, parse_timestamp
from recsvc.settings import Settings

CART_EVENTS = frozenset({"add_to_cart", "remove_from_cart", "purchase"})
# An event whose properties name one of these (truthy) was an offer taken up: deal seeking.
DEAL_PROPERTIES = ("discount", "coupon", "promo")


def new_shared() -> dict[str, Any]:
    return {
        "cart": {"items": {}, "updated_at": None},
        "purchases": {"orders": 0, "value": 0.0, "items": [], "last_at": None, "last_order": None},
    }


def new_visitor(visitor_id: str, at: float) -> dict[str, Any]:
    return {
        "visitor_id": visitor_id,
        "user_id": None,
        "first_seen": at,
        "last_seen": at,
        "visit_start": at,
        "visits": 0,
        "events": 0,
        "counts": {},
        "first_touch": None,
        "last_touch": None,
        "sources": {},
        "stage": "awareness",
        "stage_history": [],
        "segments": [],
        "segment_history": [],
        "recent_items": [],
        "funnel": {},
        "shared": new_shared(),
    }


def merge_shared(into: dict[str, Any], other: dict[str, Any], limit: int) -> None:
    """Fold an anonymous visitor's cart and purchases into a customer's (on first login)."""
    cart = into["cart"]["items"]
    for item_id, line in other["cart"]["items"].items():
        mine = cart.setdefault(item_id, {"quantity": 0, "price": line.get("price")})
        mine["quantity"] += line["quantity"]
    times = [t for t in (into["cart"]["updated_at"], other["cart"]["updated_at"]) if t]
    into["cart"]["updated_at"] = max(times) if times else None
    mine, theirs = into["purchases"], other["purchases"]
    mine["orders"] += theirs["orders"]
    mine["value"] = round(mine["value"] + theirs["value"], 2)
    mine["items"] = sorted(mine["items"] + theirs["items"], key=lambda line: line[3])[-limit:]
    if theirs["last_at"] and (not mine["last_at"] or theirs["last_at"] > mine["last_at"]):
        # The newer order decides whether the next line without an order id is new.
        mine["last_order"] = theirs.get("last_order")
    times = [t for t in (mine["last_at"], theirs["last_at"]) if t]
    mine["last_at"] = max(times) if times else None


def new_customer(user_id: str) -> dict[str, Any]:
    """A logged-in customer's document: the shared cart and purchases of their devices."""
    return {"user_id": user_id, "visitor_ids": [], **new_shared()}


def shared_for(
    visitor: dict[str, Any],
    user_id: str | None,
    customers: dict[str, dict[str, Any]],
    purchased_items_max: int,
    on_stitch: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The cart-and-purchases document an event of ``visitor`` (carrying ``user_id``)
    updates, stitching the visitor to the customer on first login: the anonymous cart and
    purchases merge into the customer's, and ``on_stitch(visitor_id, user_id, customer)``
    lets the caller move what it keeps per cart owner. ``customers`` holds the customer
    documents by user id (missing ones are created); the ingestion writer and the rule
    backtest both call this, so they stitch alike."""
    if user_id and visitor["user_id"] != user_id:
        customer = customers.setdefault(user_id, new_customer(user_id))
        if visitor["user_id"] is None and "shared" in visitor:
            merge_shared(customer, visitor.pop("shared"), purchased_items_max)
            if on_stitch is not None:
                on_stitch(visitor["visitor_id"], user_id, customer)
        if visitor["visitor_id"] not in customer["visitor_ids"]:
            customer["visitor_ids"].append(visitor["visitor_id"])
        visitor["user_id"] = user_id
    if visitor["user_id"]:
        return customers.setdefault(visitor["user_id"], new_customer(visitor["user_id"]))
    return visitor["shared"]


@dataclass
class FunnelMark:
    """One funnel counter to bump: this visitor reached ``step`` on ``day``."""

    day: str
    step: str
    source: str
    visitor_type: str


@dataclass
class EventEffect:
    """What applying an event changed beyond the two documents."""

    funnel_marks: list[FunnelMark] = field(default_factory=list)
    stage_changed: bool = False


def apply_event(
    visitor: dict[str, Any], shared: dict[str, Any], record: dict[str, Any], settings: Settings
) -> EventEffect:
    """Apply one event record to a visitor document and its shared document, in place.

    Events may arrive out of time order (batches, replays): visits and last-seen only move
    forward, and an earlier event never starts a visit.
    """
    at = parse_timestamp(record["timestamp"]).timestamp()
    orders_before = shared["purchases"]["orders"]
    if (
        orders_before
        and visitor["events"]
        and journey.is_lapsed(visitor["last_seen"], at, settings)
    ):
        lapsed_at = journey.lapse_time(visitor["last_seen"], settings)
        journey.record_stage(
            visitor["stage_history"], "at_risk", lapsed_at, settings.stage_history_max
        )
    _record_timed_segments(visitor, shared, at, settings)
    starts_visit = _track_visit(visitor, at, settings)
    _count(visitor, record, at)
    _count_banner_impression(visitor, record, at, settings)
    _remember_item(visitor, record, at, settings)
    if record["type"] in CART_EVENTS:
        _apply_cart(shared, record, at, settings)
    effect = EventEffect()
    effect.stage_changed = _refresh_labels(visitor, shared, at, settings)
    effect.funnel_marks = _funnel_marks(visitor, shared, record, starts_visit)
    return effect


def _track_visit(visitor: dict[str, Any], at: float, settings: Settings) -> bool:
    starts_visit = visitor["visits"] == 0 or at - visitor["last_seen"] > settings.visit_gap_seconds
    if starts_visit:
        visitor["visits"] += 1
        visitor["visit_start"] = at
    visitor["first_seen"] = min(visitor["first_seen"], at)
    visitor["last_seen"] = max(visitor["last_seen"], at)
    return starts_visit


def _count(visitor: dict[str, Any], record: dict[str, Any], at: float) -> None:
    visitor["events"] += 1
    counts = visitor["counts"]
    counts[record["type"]] = counts.get(record["type"], 0) + 1
    properties = record.get("properties") or {}
    if properties.get("referral"):
        counts["referral"] = counts.get("referral", 0) + 1
    if any(properties.get(name) for name in DEAL_PROPERTIES):
        counts["deal"] = counts.get("deal", 0) + 1
    if record.get("user_id"):
        visitor["user_id"] = record["user_id"]
    source = record.get("source")
    if source:
        touch = {"source": source, "at": at}
        if visitor["first_touch"] is None or at < visitor["first_touch"]["at"]:
            visitor["first_touch"] = touch
        if visitor["last_touch"] is None or at >= visitor["last_touch"]["at"]:
            visitor["last_touch"] = touch
        visitor["sources"][source] = visitor["sources"].get(source, 0) + 1


def _record_timed_segments(
    visitor: dict[str, Any], shared: dict[str, Any], at: float, settings: Settings
) -> None:
    """Write down timed segments (an abandoned cart, a churn risk) entered since the last
    event, at the moment they were entered, before this event moves the visitor on."""
    if not visitor["events"]:
        return
    facts = segment_facts(visitor, shared, at, settings)
    entered = [
        name
        for name in journey.compute_segments(facts, settings)
        if name in journey.TIMED_SEGMENTS and name not in visitor["segments"]
    ]
    for name in entered:
        visitor["segment_history"].append(
            {
                "segment": name,
                "action": "enter",
                "at": journey.segment_entered_at(name, facts, settings),
            }
        )
        visitor["segments"].append(name)
    del visitor["segment_history"][: -settings.stage_history_max]


def banner_day(at: float, settings: Settings) -> str:
    """The store-local day (YYYY-MM-DD) a banner impression counts toward a daily cap."""
    return nudges.local_time(at, settings).date().isoformat()


def _count_banner_impression(
    visitor: dict[str, Any], record: dict[str, Any], at: float, settings: Settings
) -> None:
    """Per banner, impressions on the store-local day of the latest one: what frequency
    caps count. Older days are forgotten, so the document stays small."""
    banner_id = (record.get("properties") or {}).get("banner_id")
    if record["type"] != "banner_impression" or not banner_id:
        return
    day = banner_day(at, settings)
    seen = visitor.setdefault("banner_impressions", {})
    last_day, count = seen.get(banner_id, (None, 0))
    if last_day == day:
        seen[banner_id] = [day, count + 1]
    elif last_day is None or day > last_day:
        seen[banner_id] = [day, 1]


def impressions_today(
    visitor: dict[str, Any], banner_id: str, now: float, settings: Settings
) -> int:
    """Impressions of ``banner_id`` this visitor had on the store-local day of ``now``."""
    return impressions_on(visitor, banner_id, banner_day(now, settings))


def impressions_on(visitor: dict[str, Any], banner_id: str, day: str) -> int:
    """Impressions of ``banner_id`` this visitor had on ``day`` (``banner_day``): for a
    caller checking several banners at one moment, which works the day out once."""
    last_day, count = (visitor.get("banner_impressions") or {}).get(banner_id, (None, 0))
    return count if last_day == day else 0


def _remember_item(
    visitor: dict[str, Any], record: dict[str, Any], at: float, settings: Settings
) -> None:
    item_id = record.get("item_id")
    if not item_id:
        return
    touches = 1
    recent = []
    for entry in visitor["recent_items"]:
        if entry[0] == item_id:
            touches += entry[3] if len(entry) > 3 else 1
        else:
            recent.append(entry)
    recent.insert(0, [item_id, record["type"], at, touches])
    visitor["recent_items"] = recent[: settings.recent_items_max]


def _apply_cart(
    shared: dict[str, Any], record: dict[str, Any], at: float, settings: Settings
) -> None:
    cart = shared["cart"]
    items = cart["items"]
    item_id = record["item_id"]
    quantity = record.get("quantity")
    kind = record["type"]
    if kind == "add_to_cart":
        line = items.setdefault(item_id, {"quantity": 0, "price": None})
        line["quantity"] += quantity or 1
        if record.get("price") is not None:
            line["price"] = record["price"]
    elif kind == "remove_from_cart":
        if item_id not in items:
            return  # nothing changed: an abandonment clock must not restart
        remaining = items[item_id]["quantity"] - quantity if quantity else 0
        if remaining > 0:
            items[item_id]["quantity"] = remaining
        else:
            del items[item_id]
    elif kind == "purchase":
        _record_purchase(shared["purchases"], record, at, settings)
        items.pop(item_id, None)
    cart["updated_at"] = max(cart["updated_at"] or at, at)


def _record_purchase(
    purchases: dict[str, Any], record: dict[str, Any], at: float, settings: Settings
) -> None:
    """Add a purchased line; a new order starts with a new ``properties.order_id`` or, when
    the storefront sends none, with a purchase more than a visit gap after the last one."""
    order_id = (record.get("properties") or {}).get("order_id")
    last_at = purchases["last_at"]
    if order_id is not None:
        is_new_order = str(order_id) != purchases["last_order"]
        purchases["last_order"] = str(order_id)
    else:
        is_new_order = last_at is None or abs(at - last_at) > settings.visit_gap_seconds
    if is_new_order:
        purchases["orders"] += 1
    quantity = record.get("quantity") or 1
    price = record.get("price")
    if price is not None:
        purchases["value"] = round(purchases["value"] + price * quantity, 2)
    purchases["items"].append([record["item_id"], quantity, price, at])
    del purchases["items"][: -settings.purchased_items_max]
    purchases["last_at"] = max(last_at or at, at)


def _refresh_labels(
    visitor: dict[str, Any], shared: dict[str, Any], at: float, settings: Settings
) -> bool:
    stage, segments = labels_at(visitor, shared, max(at, visitor["last_seen"]), settings)
    changed = stage != visitor["stage"] or not visitor["stage_history"]
    journey.record_stage(visitor["stage_history"], stage, at, settings.stage_history_max)
    visitor["stage"] = stage
    journey.record_segments(
        visitor["segment_history"], visitor["segments"], segments, at, settings.stage_history_max
    )
    visitor["segments"] = segments
    return changed


def labels_at(
    visitor: dict[str, Any], shared: dict[str, Any], now: float, settings: Settings
) -> tuple[str, list[str]]:
    """The stage and segments of this visitor at time ``now`` (epoch seconds)."""
    purchases = shared["purchases"]
    cart_items = len(shared["cart"]["items"])
    stage = journey.compute_stage(
        visitor["counts"], purchases["orders"], cart_items, visitor["last_seen"], now, settings
    )
    segments = journey.compute_segments(segment_facts(visitor, shared, now, settings), settings)
    return stage, segments


def segment_facts(
    visitor: dict[str, Any], shared: dict[str, Any], now: float, settings: Settings
) -> journey.SegmentFacts:
    purchases = shared["purchases"]
    return journey.SegmentFacts(
        counts=visitor["counts"],
        visits=visitor["visits"],
        orders=purchases["orders"],
        spend=purchases["value"],
        cart_items=len(shared["cart"]["items"]),
        abandoned_at=nudges.abandoned_at(shared, settings),
        last_seen=visitor["last_seen"],
        now=now,
    )


def _funnel_marks(
    visitor: dict[str, Any], shared: dict[str, Any], record: dict[str, Any], starts_visit: bool
) -> list[FunnelMark]:
    is_customer = shared["purchases"]["orders"] > 0
    step = funnel.step_reached(record["type"], starts_visit, is_customer)
    if step is None:
        return []
    day = event_day(record)
    visitor_type = "new" if visitor["visits"] <= 1 else "returning"
    source = (visitor["first_touch"] or {}).get("source") or funnel.UNKNOWN_SOURCE
    steps = funnel.new_marks(visitor["funnel"], day, visitor_type, step)
    return [FunnelMark(day, funnel.FUNNEL_STEPS[s], source, visitor_type) for s in steps]


def _iso(at: float | None) -> str | None:
    return None if at is None else format_timestamp(datetime.fromtimestamp(at, UTC))


def show_profile(
    visitor: dict[str, Any], shared: dict[str, Any], now: float, settings: Settings
) -> dict[str, Any]:
    """The profile as the API returns it, with the stage as of ``now``: a customer whose
    recency lapsed since their last event reads as ``at_risk`` (recorded in the stage history
    for good when their next event arrives)."""
    stage, segments = labels_at(visitor, shared, now, settings)
    history = [dict(entry) for entry in visitor["stage_history"]]
    if stage == "at_risk" and (not history or history[-1]["stage"] != "at_risk"):
        lapsed = journey.lapse_time(visitor["last_seen"], settings)
        history.append({"stage": "at_risk", "from": visitor["stage"], "at": lapsed})
    segment_history = list(visitor["segment_history"])
    facts = segment_facts(visitor, shared, now, settings)
    for name in segments:
        if name in journey.TIMED_SEGMENTS and name not in visitor["segments"]:
            at = journey.segment_entered_at(name, facts, settings)
            segment_history.append({"segment": name, "action": "enter", "at": at})
    cart, purchases = shared["cart"], shared["purchases"]
    cart_lines = [
        {"item_id": item_id, "quantity": line["quantity"], "price": line["price"]}
        for item_id, line in cart["items"].items()
    ]
    return {
        "visitor_id": visitor["visitor_id"],
        "user_id": visitor["user_id"],
        "first_seen": _iso(visitor["first_seen"]),
        "last_seen": _iso(visitor["last_seen"]),
        "visits": visitor["visits"],
        "events": visitor["events"],
        "event_counts": {k: v for k, v in visitor["counts"].items() if k != "referral"},
        "first_touch": _touch(visitor["first_touch"]),
        "last_touch": _touch(visitor["last_touch"]),
        "sources": visitor["sources"],
        "visitor_type": "new" if visitor["visits"] <= 1 else "returning",
        "stage": stage,
        "stage_history": [{**entry, "at": _iso(entry["at"])} for entry in history],
        "segments": segments,
        "segment_history": [{**e, "at": _iso(e["at"])} for e in segment_history],
        "recent_items": [
            {
                "item_id": entry[0],
                "type": entry[1],
                "at": _iso(entry[2]),
                "touches": entry[3] if len(entry) > 3 else 1,
            }
            for entry in visitor["recent_items"]
        ],
        "cart": {
            "items": cart_lines,
            "quantity": sum(line["quantity"] for line in cart_lines),
            "value": round(sum((ln["price"] or 0) * ln["quantity"] for ln in cart_lines), 2),
            "updated_at": _iso(cart["updated_at"]),
        },
        "purchases": {
            "count": purchases["orders"],
            "value": purchases["value"],
            "items": [
                {"item_id": item_id, "quantity": qty, "price": price, "at": _iso(at)}
                for item_id, qty, price, at in purchases["items"]
            ],
            "last_at": _iso(purchases["last_at"]),
        },
    }


def _touch(touch: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if touch is None else {"source": touch["source"], "at": _iso(touch["at"])}
