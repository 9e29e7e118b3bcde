"""The columnar interaction log every loader produces and every later step reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsvc.core.events import EVENT_TYPES

# Event codes index this tuple; int8 is enough for the service's 14 types.
EVENT_CODES: dict[str, int] = {name: code for code, name in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class Interactions:
    """Events as parallel columns, sorted by time (ties by user, item, event).

    Attributes
    ----------
    user : ndarray, shape (n,), int32
        Index into ``users``.
    item : ndarray, shape (n,), int32
        Index into ``items``.
    time : ndarray, shape (n,), float64
        When the event happened: seconds since the Unix epoch, UTC.
    event : ndarray, shape (n,), int8
        Index into :data:`recsvc.core.events.EVENT_TYPES`.
    value : ndarray, shape (n,), float32
        A per-event multiplier of the event type's weight (a weight column, a
        quantity); 1 where the source has none.
    users : ndarray, shape (n_users,), str
        External user (or visitor) ids, unique; may hold ids no event uses after a
        subset, which :func:`training.matrix.build_matrix` leaves out.
    items : ndarray, shape (n_items,), str
        External item ids, unique, as ``users``.
    """

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    event: np.ndarray
    value: np.ndarray
    users: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The events where ``mask`` (bool, shape (n,), or an index array) selects, same
        id vocabularies, same order."""
        return Interactions(
            user=self.user[mask],
            item=self.item[mask],
            time=self.time[mask],
            event=self.event[mask],
            value=self.value[mask],
            users=self.users,
            items=self.items,
        )

    def event_counts(self) -> dict[str, int]:
        """Events per type name, types with none left out."""
        counts = np.bincount(self.event.astype(np.intp), minlength=len(EVENT_TYPES))
        return {EVENT_TYPES[code]: int(n) for code, n in enumerate(counts) if n}

    def event_mask(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Bool, shape (n,): the events whose type is one of ``names``."""
        codes = [EVENT_CODES[name] for name in names]
        return np.isin(self.event, np.array(codes, dtype=np.int8))

    def time_range(self) -> tuple[float, float] | None:
        """(first, last) event time in epoch seconds, or None when empty."""
        if len(self) == 0:
            return None
        return float(self.time[0]), float(self.time[-1])
