"""Profiles rebuilt in memory from an event log, the way the live service builds them.

The service applies each event with ``recsvc.core.profile.apply_event`` to a visitor
document and a shared (cart and purchases) document, the latter moving to the customer on
the visitor's first ``user_id`` (``recsvc.store.events.EventWriter``). This module does the
same without Redis, so the backtest sees exactly the profiles the endpoints would read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from recsvc.core.events import PRODUCT_EVENT_TYPES, event_epoch
from recsvc.core.nudges import owner_of
from recsvc.core.profile import apply_event, merge_shared, new_shared, new_visitor
from recsvc.settings import Settings

# What applying a record needs; the service's schema guarantees them for what it logged.
REQUIRED_FIELDS = ("id", "type", "visitor_id", "timestamp")


@dataclass
class Timeline:
    """Records by (time, id), with their times; ``unusable`` counts the records left out
    because they lack a required field (an item for product events) or a valid timestamp,
    so none is dropped silently."""

    events: list[tuple[float, dict[str, Any]]]
    unusable: int = 0


def timeline(records: Iterable[dict[str, Any]]) -> Timeline:
    """Order records by (epoch seconds, id): log files are partitioned by day and a replay
    must not depend on how a day was split into files. The id breaks ties the same way on
    every run."""
    events, unusable = [], 0
    for record in records:
        at = _usable_time(record)
        if at is None:
            unusable += 1
        else:
            events.append((at, record))
    events.sort(key=lambda entry: (entry[0], entry[1]["id"]))
    return Timeline(events, unusable)


def _usable_time(record: dict[str, Any]) -> float | None:
    """The record's epoch seconds, or None when it cannot be applied."""
    if not all(record.get(name) for name in REQUIRED_FIELDS):
        return None
    if record["type"] in PRODUCT_EVENT_TYPES and not record.get("item_id"):
        return None
    try:
        return event_epoch(record)
    except (ValueError, TypeError, AttributeError, OverflowError):
        return None


def new_customer(user_id: str) -> dict[str, Any]:
    """A customer document as the event writer creates it."""
    return {"user_id": user_id, "visitor_ids": [], **new_shared()}


def shared_for(
    visitor: dict[str, Any],
    user_id: str | None,
    customers: dict[str, dict[str, Any]],
    purchased_items_max: int,
) -> dict[str, Any]:
    """The cart-and-purchases document an event updates, stitching on first login.

    Mirrors ``recsvc.store.events.EventWriter._shared_for`` line for line; the only
    difference is that the writer preloads a customer document for every ``user_id`` of the
    batch, where this creates it on first use. Both are to move onto one shared function.
    """
    if user_id and visitor["user_id"] != user_id:
        customer = customers.setdefault(user_id, new_customer(user_id))
        if visitor["user_id"] is None and "shared" in visitor:
            merge_shared(customer, visitor.pop("shared"), purchased_items_max)
        if visitor["visitor_id"] not in customer["visitor_ids"]:
            customer["visitor_ids"].append(visitor["visitor_id"])
        visitor["user_id"] = user_id
    if visitor["user_id"]:
        return customers.setdefault(visitor["user_id"], new_customer(visitor["user_id"]))
    return visitor["shared"]


@dataclass(frozen=True)
class Applied:
    """One event after it was applied: the documents as the service would now hold them."""

    record: dict[str, Any]
    at: float
    visitor: dict[str, Any]
    shared: dict[str, Any]
    owner: str  # cart owner after the event (``u:`` or ``v:``)
    previous_owner: str  # before it: differs when this event stitched the visitor


class ProfileReplay:
    """Every visitor and customer document of a log, kept in memory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.visitors: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}

    def apply(self, record: dict[str, Any]) -> Applied:
        at = event_epoch(record)
        visitor = self.visitors.get(record["visitor_id"])
        if visitor is None:
            visitor = new_visitor(record["visitor_id"], at)
            self.visitors[record["visitor_id"]] = visitor
        previous_owner = owner_of(visitor)
        shared = shared_for(
            visitor, record.get("user_id"), self.customers, self.settings.purchased_items_max
        )
        apply_event(visitor, shared, record, self.settings)
        return Applied(record, at, visitor, shared, owner_of(visitor), previous_owner)
