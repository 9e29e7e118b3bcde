"""Visitor states rebuilt from a log the way the service's profile builds them.

Each chosen visitor's events are replayed, in time order, through
:func:`recsvc.core.profile.apply_event`, the function the ingestion path runs on every
event (an event the service would refuse, a cart beyond its caps, is left out as the
service leaves it out): recent items capped and ordered as the profile keeps them (with their touch
counts), the cart as adds, removals and purchases leave it, the purchases. The documents
then become :class:`~recsvc.scoring.state.VisitorState` through
:func:`~recsvc.scoring.state.state_from_profile`, as a serving worker turns what it reads
from Redis. The evaluation therefore asks the strategy objects about the visitors the
service would have seen, not about a matrix row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recsvc.core.events import EVENT_TYPES, format_timestamp
from recsvc.core.profile import CartLimitExceeded, apply_event, new_visitor
from recsvc.scoring.state import VisitorState, state_from_profile
from recsvc.settings import Settings
from training.interactions import Interactions


def replay_profiles(
    interactions: Interactions,
    users: np.ndarray,
    settings: Settings | None = None,
    *,
    show_progress: bool = False,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The (visitor, shared) documents of each of ``users`` after all their events.

    Parameters
    ----------
    interactions : Interactions
        The log (the train part, for an evaluation).
    users : ndarray, shape (u,), int
        Indices into ``interactions.users``; a user with no event gets an empty profile.
    settings : Settings, optional
        The service's (caps, visit gap, stage rules); default the environment's.

    Yields
    ------
    (visitor, shared) per user, in the order of ``users``.
    """
    settings = settings or Settings.from_env()
    order = np.lexsort((interactions.time, interactions.user))
    by_user = interactions.user[order]
    starts = np.searchsorted(by_user, users, side="left")
    stops = np.searchsorted(by_user, users, side="right")
    for user, start, stop in tqdm(
        zip(np.asarray(users).tolist(), starts, stops, strict=True),
        total=len(users),
        desc="replay profiles",
        disable=not show_progress,
    ):
        yield _replay(interactions, order[start:stop], str(interactions.users[user]), settings)


def _replay(
    interactions: Interactions, events: np.ndarray, visitor_id: str, settings: Settings
) -> tuple[dict[str, Any], dict[str, Any]]:
    first = float(interactions.time[events[0]]) if len(events) else 0.0
    visitor = new_visitor(visitor_id, first)
    shared = visitor["shared"]
    items = interactions.items
    for event in events.tolist():
        at = datetime.fromtimestamp(float(interactions.time[event]), UTC)
        record = {
            "type": EVENT_TYPES[int(interactions.event[event])],
            "visitor_id": visitor_id,
            "item_id": str(items[interactions.item[event]]),
            "timestamp": format_timestamp(at),
        }
        # The service refuses such an event (422) and writes nothing of it: so does the replay.
        with suppress(CartLimitExceeded):
            apply_event(visitor, shared, record, settings)
    return visitor, shared


def states_from_log(
    interactions: Interactions,
    users: np.ndarray,
    row_of: dict[str, int],
    vectors: np.ndarray | None = None,
    settings: Settings | None = None,
    *,
    show_progress: bool = False,
) -> list[VisitorState]:
    """A :class:`VisitorState` per user from the replayed profiles.

    Parameters
    ----------
    interactions, users, settings
        As :func:`replay_profiles` takes them.
    row_of : dict of str to int
        The scoring model's item rows by id.
    vectors : ndarray, shape (u, f), float32, optional
        Each user's long-term vector (row ``i`` for ``users[i]``); None: anonymous.
    """
    profiles = replay_profiles(interactions, users, settings, show_progress=show_progress)
    return [
        state_from_profile(row_of, visitor, shared, None if vectors is None else vectors[n])
        for n, (visitor, shared) in enumerate(profiles)
    ]
