"""Abandoned-cart nudges over a replayed log: one rule per channel, from cart change to send.

Every cart change of an owner (``recsvc.core.nudges.owner_of``) schedules one nudge per
channel, due at ``recsvc.core.nudges.due_at``. Time moves with the log: before each event
(and at the end, up to the last event's time) the nudges that became due fire, in due
order. A firing nudge is

- ``held_out`` when its owner is in the channel's holdout (``in_holdout``);
- ``quiet_delayed`` when an off-site channel is in quiet hours (``quiet_until``): it waits
  for their end, still pending (a purchase or a cart change may still cancel it);
- ``capped`` when the owner already had ``nudge_cap_per_week`` off-site sends
  (``within_cap`` over the sends simulated here, all off-site channels together);
- else ``sent``.

A nudge not fired yet is ``cancelled_by_purchase`` when a purchase leaves no abandonable
cart, ``cancelled_cart_emptied`` when the visitor empties the cart, ``rescheduled`` when the
cart changes again (the new change schedules a new one), ``pending_at_end`` when the log
ends first. A purchase within the attribution window after a send counts as ``recovered``,
after a held-out chance as ``holdout_recovered``: the natural-recovery baseline.

When an anonymous visitor logs in, their cart moves to the customer
(``recsvc.core.profile.shared_for``), and so do their pending nudges and open
attribution windows, unless the customer already has nudges of their own pending (then the
visitor's are ``rescheduled``: the merged cart schedules anew).
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from recsvc.core import nudges
from recsvc.core.events import NUDGE_CHANNELS, OFFSITE_NUDGE_CHANNELS
from recsvc.core.profile import banner_day, labels_at
from recsvc.marketing.replay import Applied
from recsvc.settings import Settings


@dataclass(eq=False)
class Pending:
    """A scheduled nudge. ``due`` moves once, to the end of quiet hours."""

    owner: str
    channel: str
    due: float
    was_due: bool = False
    alive: bool = True


@dataclass(frozen=True)
class Chance:
    """A send (or a held-out chance) waiting for a purchase to be attributed to it."""

    channel: str
    given_at: float
    held_out: bool


@dataclass
class OwnerState:
    changed_at: float | None = None  # the cart change the pending nudges are for
    pending: dict[str, Pending] = field(default_factory=dict)
    offsite_sends: list[float] = field(default_factory=list)
    chances: list[Chance] = field(default_factory=list)
    # The owner's documents as of the last event: the stage at a send is read from them.
    visitor: dict[str, Any] | None = None
    shared: dict[str, Any] | None = None


# Every scheduled nudge ends as exactly one of these.
ENDINGS: tuple[str, ...] = (
    "sent",
    "held_out",
    "capped",
    "cancelled_by_purchase",
    "cancelled_cart_emptied",
    "rescheduled",
    "pending_at_end",
)
# Counted along the way: nudges on their way, and purchases after a send or a chance.
PASSAGES: tuple[str, ...] = ("scheduled", "due", "quiet_delayed")
RECOVERIES: tuple[str, ...] = ("recovered", "holdout_recovered")
COUNTERS: tuple[str, ...] = (*PASSAGES, *ENDINGS, *RECOVERIES)


@dataclass
class ChannelStats:
    """One nudge rule's counts (``COUNTERS``) and whom it reached."""

    channel: str
    scheduled: int = 0
    due: int = 0
    quiet_delayed: int = 0
    sent: int = 0
    held_out: int = 0
    capped: int = 0
    cancelled_by_purchase: int = 0
    cancelled_cart_emptied: int = 0
    rescheduled: int = 0
    pending_at_end: int = 0
    recovered: int = 0
    holdout_recovered: int = 0
    reached_owners: set[str] = field(default_factory=set)
    reached_by_day: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    reached_by_stage: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


class NudgeSimulation:
    """Schedules, fires and cancels nudges as the replay moves through time."""

    def __init__(self, settings: Settings, channels: tuple[str, ...] = NUDGE_CHANNELS) -> None:
        self.settings = settings
        self.channels = channels
        self.stats = {channel: ChannelStats(channel) for channel in channels}
        self.owners: dict[str, OwnerState] = {}
        # (due, order, nudge): at one moment the first scheduled fires first, so channels
        # of one cart change fire in ``channels`` order (push before email for the cap).
        self._queue: list[tuple[float, int, Pending]] = []
        self._order = itertools.count()

    # --- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Fire every pending nudge due at or before ``now``, in due order."""
        while self._queue and self._queue[0][0] <= now:
            due, _, pending = heapq.heappop(self._queue)
            if pending.alive and pending.due == due:
                self._fire(pending)

    def finish(self, last_at: float | None) -> None:
        """The log ended at ``last_at``: fire what was due by then, count the rest."""
        if last_at is not None:
            self.advance(last_at)
        for state in self.owners.values():
            for pending in state.pending.values():
                if pending.alive:
                    self._close(pending, "pending_at_end")

    def _push(self, pending: Pending) -> None:
        heapq.heappush(self._queue, (pending.due, next(self._order), pending))

    def _fire(self, pending: Pending) -> None:
        settings, at, channel = self.settings, pending.due, pending.channel
        state = self.owners[pending.owner]
        if not pending.was_due:
            pending.was_due = True
            self._bump(channel, "due")
            if nudges.in_holdout(pending.owner, channel, settings.nudge_holdout_share):
                state.chances.append(Chance(channel, at, held_out=True))
                self._close(pending, "held_out")
                return
        quiet_end = nudges.quiet_until(at, channel, settings)
        if quiet_end is not None and quiet_end > at:
            self._bump(channel, "quiet_delayed")
            pending.due = quiet_end
            self._push(pending)
            return
        offsite = channel in OFFSITE_NUDGE_CHANNELS
        if offsite and not nudges.within_cap(state.offsite_sends, at, settings):
            self._close(pending, "capped")
            return
        if offsite:
            state.offsite_sends.append(at)
        state.chances.append(Chance(channel, at, held_out=False))
        self._close(pending, "sent")
        self._reach(channel, pending.owner, state, at)

    def _reach(self, channel: str, owner: str, state: OwnerState, at: float) -> None:
        stats = self.stats[channel]
        stats.reached_owners.add(owner)
        stats.reached_by_day[banner_day(at, self.settings)].add(owner)
        if state.visitor is not None and state.shared is not None:
            stage, _ = labels_at(state.visitor, state.shared, at, self.settings)
            stats.reached_by_stage[stage].add(owner)

    def _close(self, pending: Pending, outcome: str) -> None:
        pending.alive = False
        self._bump(pending.channel, outcome)

    def _bump(self, channel: str, counter: str) -> None:
        stats = self.stats[channel]
        setattr(stats, counter, getattr(stats, counter) + 1)

    # --- events ----------------------------------------------------------------------------

    def observe(self, applied: Applied) -> None:
        """Follow the owner's cart after an event (call ``advance`` to its time first)."""
        if applied.owner != applied.previous_owner:
            self._stitch(applied.previous_owner, applied.owner)
        state = self.owners.get(applied.owner)
        changed_at = nudges.cart_changed_at(applied.shared)
        if state is None:
            if changed_at is None:
                return  # nothing to follow yet: no cart, no open chance
            state = self.owners[applied.owner] = OwnerState()
        state.visitor, state.shared = applied.visitor, applied.shared
        if applied.record["type"] == "purchase":
            self._attribute(state, applied.at)
        if changed_at == state.changed_at:
            return
        if changed_at is None:
            bought = applied.record["type"] == "purchase"
            self._cancel(state, "cancelled_by_purchase" if bought else "cancelled_cart_emptied")
        else:
            self._cancel(state, "rescheduled")
            self._schedule(applied.owner, state, applied.shared)
        state.changed_at = changed_at

    def _schedule(self, owner: str, state: OwnerState, shared: dict[str, Any]) -> None:
        for channel in self.channels:
            due = nudges.due_at(shared, channel, self.settings)
            if due is None:
                continue
            pending = Pending(owner, channel, due)
            state.pending[channel] = pending
            self._bump(channel, "scheduled")
            self._push(pending)

    def _cancel(self, state: OwnerState, outcome: str) -> None:
        for pending in state.pending.values():
            if pending.alive:
                self._close(pending, outcome)
        state.pending.clear()

    def _attribute(self, state: OwnerState, at: float) -> None:
        """Credit a purchase to every send and held-out chance whose window covers it. Each
        is credited once, and the others have closed (every chance is given before the
        purchase that is being applied), so none stays open."""
        for chance in state.chances:
            if nudges.Attribution(chance.given_at).covers(at, self.settings):
                self._bump(chance.channel, "holdout_recovered" if chance.held_out else "recovered")
        state.chances.clear()

    def _stitch(self, previous: str, owner: str) -> None:
        """A visitor logged in: their cart now lives with the customer (merged)."""
        if not previous.startswith("v:"):
            return  # a visitor switching customers leaves the old customer's cart there
        moved = self.owners.pop(previous, None)
        if moved is None:
            return
        state = self.owners.setdefault(owner, OwnerState())
        state.chances.extend(moved.chances)
        if any(p.alive for p in state.pending.values()):
            self._cancel(moved, "rescheduled")
            return
        for pending in moved.pending.values():
            pending.owner = owner
        state.pending, state.changed_at = moved.pending, moved.changed_at
