"""Profiles rebuilt in memory from an event log, the way the live service builds them.

The service applies each event with ``recsvc.core.profile.apply_event`` to a visitor
document and a shared (cart and purchases) document, the latter moving to the customer on
the visitor's first ``user_id`` (``recsvc.store.events.EventWriter``). This module does the
same without Redis, so the backtest sees exactly the profiles the endpoints would read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from recsvc.core.events import PRODUCT_EVENT_TYPES, event_epoch
from recsvc.core.nudges import owner_of
from recsvc.core.profile import CartLimitExceeded, apply_event, new_visitor, shared_for
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
        settings = self.settings
        shared = shared_for(
            visitor,
            record.get("user_id"),
            self.customers,
            settings.purchased_items_max,
            cart_caps=(settings.cart_max_lines, settings.cart_max_quantity),
        )
        with contextlib.suppress(CartLimitExceeded):
            # The service refuses such an event (a 422): the documents stay as they were.
            apply_event(visitor, shared, record, settings)
        return Applied(record, at, visitor, shared, owner_of(visitor), previous_owner)
