"""Onsite nudge chances, written off the request path and many to a round trip.

The storefront asks for the onsite nudge on every page, and the first ask about an
abandoned cart records the chance (shown or held out) for the analytics: a script run of
its own, a second round trip after the profile read. On this service's machines a Redis
round trip costs about as much CPU as the rest of such a request, so a ``ChanceWriter``
takes that write out of the request: the page queues the chance and returns, and one
daemon thread per process writes what gathered within ``linger`` seconds in one pipeline.

What this changes, and why it is acceptable: the analytics count a chance up to
``linger`` seconds later (the nudge report ``flush``\\ es its own process's queue first,
so one process reads what it recorded); a process that dies holding chances loses them,
and a chance whose write fails is forgotten, so the visitor's next page (in any process)
queues it again. The script counts each cart once, whichever process writes it.

Each process remembers the carts it queued (up to ``remember``), so a visitor browsing
with an abandoned cart queues nothing after the first page. Forked children (gunicorn
workers) start with an empty queue, an empty memory and no thread: one starts on demand,
and stops after ``IDLE_SECONDS`` with nothing to write.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Chances gathered this long are written together: under load one round trip carries
# tens of them; the analytics lag by about this much.
LINGER_SECONDS = 0.05
# Carts a process remembers having queued (about 100 bytes each).
REMEMBERED = 50_000
# An idle writer thread exits after this long; the next chance starts another.
IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class Chance:
    """One cart's chance on a channel that takes no claims: shown, or held out."""

    owner: str
    channel: str
    changed: float  # cart_changed_at: the cart's identity
    held_out: bool
    now: float

    @property
    def cart(self) -> tuple[str, str, float]:
        return self.owner, self.channel, self.changed


_WRITERS: weakref.WeakSet[ChanceWriter] = weakref.WeakSet()


class ChanceWriter:
    """Queues chances and writes them in batches with ``write`` from a daemon thread."""

    def __init__(
        self,
        write: Callable[[list[Chance]], None],
        linger: float = LINGER_SECONDS,
        remember: int = REMEMBERED,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self._write = write
        self.linger = linger
        self.remember = remember
        self.idle = idle
        self._reset()
        _WRITERS.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child, where a lock may have been
        copied held and the parent's queue and thread are not this process's."""
        self._cond = threading.Condition()  # guards everything below
        self._queued: list[Chance] = []
        self._seen: OrderedDict[tuple[str, str, float], None] = OrderedDict()
        self._writing = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, chance: Chance) -> bool:
        """Queue ``chance`` unless this process queued its cart already; True when queued."""
        with self._cond:
            if chance.cart in self._seen:
                return False
            self._seen[chance.cart] = None
            if len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            self._queued.append(chance)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nudge-chances", daemon=True)
                self._thread.start()
        self._wake.set()
        return True

    def flush(self) -> None:
        """Write everything queued so far, in the calling thread; returns once it (and any
        batch the thread was writing) is in Redis or has failed."""
        self._write_queued()

    def _run(self) -> None:
        while self._wake.wait(self.idle) or not self._stop_if_idle():
            time.sleep(self.linger)  # let more gather: one round trip for all of them
            self._write_queued()

    def _stop_if_idle(self) -> bool:
        with self._cond:
            if self._queued:
                return False
            self._thread = None  # under the lock: the next ``add`` starts another
            return True

    def _write_queued(self) -> None:
        with self._cond:
            while self._writing:  # one batch at a time, in queue order
                self._cond.wait()
            batch, self._queued = self._queued, []
            self._wake.clear()
            if not batch:
                return
            self._writing = True
        try:
            self._write(batch)
        except Exception:  # Redis down or anything else: a later page queues them again
            log.warning("writing %d nudge chances failed", len(batch), exc_info=True)
            with self._cond:
                for chance in batch:
                    self._seen.pop(chance.cart, None)
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _reset_in_child() -> None:
    for writer in list(_WRITERS):
        writer._reset()


os.register_at_fork(after_in_child=_reset_in_child)
