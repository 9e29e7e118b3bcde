"""Rate limits on what callers send and read (``recsvc.store.rate_limits`` keeps the buckets).

Keys that run on the store's servers (server, sender, admin) and an open service are not
limited. For the others (public, analyst), every request is charged to token buckets in
one Lua call, and one that a bucket cannot pay is a 429 with ``Retry-After`` (whole
seconds), nothing written:

- events (``POST /v1/events``, after validation, one token per event): the bucket of the
  client's address (``recsvc.web.client_address``), of each visitor the events concern,
  and of the API key. The public key ships in every browser, so its bucket is what all of
  them may send together, a ceiling that keeps the stream from filling; the address
  bucket is far below it, so one attacker is refused long before they could exhaust it
  for every shopper;
- every other request (reads: recommendations, banners, nudges, profiles, items, cart
  add-ons, analytics; one token): the bucket of the client's address and, for a path
  about a visitor, that visitor's (``read-address``, ``read-visitor``: buckets of their
  own, so reading never costs a shopper their events). Each worker charges reads to Redis
  a few at a time (``RECSVC_RATE_LIMIT_READ_BATCH``, ``BatchedTakes``): a bucket may let
  through a few reads more than its burst before it refuses, for one round trip instead
  of several.

A rate of 0 turns a limit off. Fail open on purpose: when Redis cannot be asked, the
request goes on (and a write that follows answers 503 if Redis is really down); a limiter
must not turn a Redis hiccup into refused traffic.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from flask import Flask, request

from recsvc.redis_client import UNAVAILABLE_ERRORS
from recsvc.schemas.common import is_valid_id
from recsvc.settings import Settings
from recsvc.store.rate_limits import BatchedTakes, Bucket, RateLimiter, retry_after
from recsvc.web.auth import OPEN_PREFIXES, Caller, current_caller
from recsvc.web.client_address import client_address
from recsvc.web.errors import ApiError
from recsvc.web.metrics import RATE_LIMITED, RATE_LIMITER_UNAVAILABLE
from recsvc.web.services import services

log = logging.getLogger(__name__)

Limiter = RateLimiter | BatchedTakes

# Charged per event in the view, once the batch is valid (recsvc.api.events).
EVENTS_ENDPOINT = "events.post_events"


def check_bursts(settings: Settings) -> None:
    """Raise ValueError (at start) for an event burst smaller than a full batch (such a
    batch could never be let through, however long the caller waited) or a read burst
    under 1."""
    for scope in ("key", "visitor", "address"):
        rate = getattr(settings, f"rate_limit_{scope}_per_second")
        burst = getattr(settings, f"rate_limit_{scope}_burst")
        if rate > 0 and burst < settings.max_batch_events:
            raise ValueError(
                f"RECSVC_RATE_LIMIT_{scope.upper()}_BURST ({burst}) must be at least "
                f"RECSVC_MAX_BATCH_EVENTS ({settings.max_batch_events})"
            )
    for scope in ("read_address", "read_visitor"):
        rate = getattr(settings, f"rate_limit_{scope}_per_second")
        burst = getattr(settings, f"rate_limit_{scope}_burst")
        if rate > 0 and burst < 1:
            raise ValueError(f"RECSVC_RATE_LIMIT_{scope.upper()}_BURST ({burst}) must be >= 1")
    if settings.rate_limit_read_batch < 1:
        raise ValueError(
            f"RECSVC_RATE_LIMIT_READ_BATCH ({settings.rate_limit_read_batch}) must be >= 1"
        )


def _buckets(settings: Settings, named: Iterable[tuple[str, str, str, int]]) -> list[Bucket]:
    """Buckets of (setting scope, key scope, name, cost), leaving out limits turned off."""
    found = []
    for setting, scope, name, cost in named:
        rate = getattr(settings, f"rate_limit_{setting}_per_second")
        if rate > 0:
            burst = getattr(settings, f"rate_limit_{setting}_burst")
            found.append(Bucket(services().keys.rate_bucket(scope, name), rate, burst, cost))
    return found


def event_buckets(caller: Caller, events: list[dict[str, Any]]) -> list[Bucket]:
    """The buckets a batch of ``events`` from ``caller`` is charged to (none for a key
    that runs on the store's servers)."""
    if caller.can("server"):
        return []
    per_visitor = Counter(event["visitor_id"] for event in events)
    return _buckets(
        services().settings,
        [
            ("key", "key", caller.key_id, len(events)),
            ("address", "address", client_address(), len(events)),
            *[("visitor", "visitor", visitor, n) for visitor, n in per_visitor.items()],
        ],
    )


def read_buckets(caller: Caller) -> list[Bucket]:
    """The buckets a request other than events is charged to: its address's and, for a
    valid visitor id in the path, that visitor's (an invalid one is a 422 anyway)."""
    if caller.can("server"):
        return []
    named = [("read_address", "read-address", client_address(), 1)]
    visitor_id = (request.view_args or {}).get("visitor_id")
    if isinstance(visitor_id, str) and is_valid_id(visitor_id):
        named.append(("read_visitor", "read-visitor", visitor_id, 1))
    return _buckets(services().settings, named)


def charge(buckets: list[Bucket], what: str, limiter: Limiter | None = None) -> None:
    """Take from every bucket or from none (through ``limiter``, default the one that
    charges at once); a 429 ``rate_limited`` with ``Retry-After`` (whole seconds) when one
    of them is short."""
    if not buckets:
        return
    try:
        wait = (limiter or services().rate_limiter).take(buckets)
    except UNAVAILABLE_ERRORS as error:
        RATE_LIMITER_UNAVAILABLE.inc()
        log.warning("rate limiter unavailable: not limiting", extra={"error": repr(error)})
        return
    if wait > 0:
        RATE_LIMITED.inc()
        seconds = retry_after(wait)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many {what}; retry in {seconds} s.",
            {"retry_after_seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )


def charge_events(caller: Caller, events: list[dict[str, Any]]) -> None:
    """Charge ``events`` (validated) to their buckets (429 when one is short)."""
    charge(event_buckets(caller, events), "events from this key, address or visitor")


def init_app(app: Flask) -> None:
    """Charge every request but events (charged by their view) to the read buckets, once
    its key is known (register after ``recsvc.web.auth``)."""

    @app.before_request
    def _charge_reads() -> None:
        if request.url_rule is None or request.endpoint == EVENTS_ENDPOINT:
            return  # not routed (404, 405: nothing read), or charged per event
        if request.path.startswith(OPEN_PREFIXES) or request.method == "OPTIONS":
            return
        charge(
            read_buckets(current_caller()),
            "requests from this address or for this visitor",
            services().read_limiter,
        )
