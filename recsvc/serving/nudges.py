"""Abandoned-cart nudges as the storefront and the senders see them.

``onsite_nudges`` answers the storefront's page-by-page question (is there a nudge for
this visitor now?) with one read, through the visitor reader's fast client and breaker
like every other read on a page: Redis trouble costs the nudge, never the page. The chance it
records goes through the store's background writer, and the add-ons come from the
worker's cache of them when the cart asked before. ``claimed_nudges`` hands
a sender (push, email, sms) the carts it claimed. Both describe a cart the same way
(``nudge_view``): its lines with catalog fields, quantity, value and a message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recsvc.core.events import format_timestamp
from recsvc.core.nudges import (
    abandoned_at,
    cart_changed_at,
    cart_value,
    in_holdout,
    is_abandoned,
    message_for,
    owner_of,
    quiet_until,
)
from recsvc.serving.disclosure import FULL, Disclosure
from recsvc.serving.holder import ModelHolder
from recsvc.serving.similar import cart_answer
from recsvc.serving.tiles import Tiles
from recsvc.serving.visitors import VisitorReader, owned
from recsvc.settings import Settings
from recsvc.store.nudges import DueCart, NudgeStore

KIND = "abandoned_cart"
ONSITE = "onsite"
# Add-ons shown with the onsite nudge.
RECOMMENDATIONS = 3


def iso(at: float) -> str:
    return format_timestamp(datetime.fromtimestamp(at, UTC))


def nudge_id(owner: str, channel: str, changed: float) -> str:
    """Names one nudge: the owner, the channel and the cart (when it last changed, in ms),
    so a sender can pass it back in ``nudge_sent``'s ``properties.nudge_id``."""
    return f"{owner}|{channel}|{int(changed * 1000)}"


def cart_lines(shared: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"item_id": item_id, "quantity": line["quantity"], "price": line.get("price")}
        for item_id, line in shared["cart"]["items"].items()
    ]


def with_tiles(tiles: Tiles, lines: list[dict[str, Any]]) -> None:
    """Catalog tile fields on every line, in one read for all of them. A cart line keeps the
    price it was added at: that is what the visitor saw and what the value sums."""
    prices = [line.get("price") for line in lines]
    tiles.add(lines)
    for line, price in zip(lines, prices, strict=True):
        if "quantity" in line and price is not None:
            line["price"] = price


def nudge_view(
    owner: str,
    channel: str,
    shared: dict[str, Any],
    lines: list[dict[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    """What every nudge says, whoever shows it; ``lines`` are the cart's, with tiles."""
    return {
        "id": nudge_id(owner, channel, cart_changed_at(shared)),
        "kind": KIND,
        "channel": channel,
        "abandoned_at": iso(abandoned_at(shared, settings)),
        "cart": {
            "items": lines,
            "quantity": sum(line["quantity"] for line in lines),
            "value": cart_value(shared),
        },
        "message": message_for(lines),
    }


# --- onsite ------------------------------------------------------------------------------
def onsite_nudges(
    reader: VisitorReader,
    holder: ModelHolder,
    tiles: Tiles,
    store: NudgeStore,
    settings: Settings,
    visitor_id: str,
    now: float,
    disclosure: Disclosure = FULL,
) -> dict[str, Any]:
    """``GET /v1/visitors/<visitor_id>/nudges``: the abandoned-cart nudge for this visitor,
    if their cart is abandoned and they are not in the onsite rule's holdout; the chance
    (shown or held out) is recorded once per cart for the analytics. A cart the request
    may not see (``disclosure``: a customer's, on a device proven without that customer)
    has no nudge here, and no chance is recorded."""
    state = reader.read(visitor_id, None)
    if state is None:
        return {"nudges": [], "fallback": "unavailable"}
    shared = state.shared
    if state.visitor is None or shared is None or not is_abandoned(shared, now, settings):
        return {"nudges": []}
    if not disclosure.owns(state.visitor):
        return {"nudges": []}
    owner = owner_of(state.visitor)
    held_out = in_holdout(owner, ONSITE, settings.nudge_holdout_share)
    _record_onsite(store, owner, cart_changed_at(shared), held_out, now)
    if held_out:
        return {"nudges": []}
    lines = cart_lines(shared)
    addons = cart_answer(
        holder,
        reader,
        tiles,
        [line["item_id"] for line in lines],
        visitor_id,
        RECOMMENDATIONS,
        owned_items=owned(shared),
        with_tiles=False,
    )["items"]
    with_tiles(tiles, lines + addons)  # one catalog read for the page
    nudge = nudge_view(owner, ONSITE, shared, lines, settings)
    nudge.update(
        visitor_id=visitor_id, user_id=state.visitor.get("user_id"), recommendations=addons
    )
    return {"nudges": [nudge]}


def _record_onsite(
    store: NudgeStore, owner: str, changed: float, held_out: bool, now: float
) -> None:
    """Queued for the store's writer thread, not written here: Redis trouble or a slow
    write costs one count in the analytics, never the page, and the page does not wait
    for a second round trip (``recsvc.store.chance_writer``)."""
    store.record_chance(owner, ONSITE, changed, held_out, now)


# --- senders -----------------------------------------------------------------------------
def claimed_nudges(
    tiles: Tiles, store: NudgeStore, settings: Settings, channel: str, limit: int, now: float
) -> dict[str, Any]:
    """``POST /v1/nudges/claim``: claim up to ``limit`` due carts for ``channel``, or none
    with the end of the quiet hours."""
    quiet = quiet_until(now, channel, settings)
    if quiet is not None:
        return {"nudges": [], "quiet_until": iso(quiet)}
    carts = store.claim(channel, limit, now)
    lines = [cart_lines(cart.shared) for cart in carts]
    with_tiles(tiles, [line for cart in lines for line in cart])  # one read for all
    return {
        "nudges": [
            _claimed_view(cart, channel, its_lines, settings)
            for cart, its_lines in zip(carts, lines, strict=True)
        ]
    }


def _claimed_view(
    cart: DueCart, channel: str, lines: list[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    nudge = nudge_view(cart.owner, channel, cart.shared, lines, settings)
    kind, _, name = cart.owner.partition(":")
    if kind == "u":
        # The device the customer used last: their most recently stitched visitor id.
        visitor_ids = cart.document.get("visitor_ids") or [None]
        nudge.update(owner=cart.owner, visitor_id=visitor_ids[-1], user_id=name)
    else:
        nudge.update(owner=cart.owner, visitor_id=name, user_id=None)
    return nudge
