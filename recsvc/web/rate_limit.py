"""Rate limits on what callers send (``recsvc.store.rate_limits`` keeps the buckets).

Events are charged, one token each, to the bucket of the request's API key and to the
bucket of each visitor they concern; a request over either is a 429 with ``Retry-After``
and nothing is written. Keys that run on the store's servers (server, sender, admin) and
an open service are not limited. The per-key bucket caps what every browser of a store
together may send (the public key is shared), so one caller cannot fill the event stream;
the per-visitor bucket stops one visitor id from taking all of that.

Fail open on purpose: when Redis cannot be asked, the request goes on (and the write that
follows answers 503 if Redis is really down); a limiter must not turn a Redis hiccup into
refused traffic.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from recsvc.redis_client import UNAVAILABLE_ERRORS
from recsvc.settings import Settings
from recsvc.store.rate_limits import Bucket, retry_after
from recsvc.web.auth import Caller
from recsvc.web.errors import ApiError
from recsvc.web.metrics import RATE_LIMITED, RATE_LIMITER_UNAVAILABLE
from recsvc.web.services import services

log = logging.getLogger(__name__)


def check_bursts(settings: Settings) -> None:
    """Raise ValueError (at start) for a burst smaller than a full batch: such a batch
    could never be let through, however long the caller waited."""
    for scope in ("key", "visitor"):
        rate = getattr(settings, f"rate_limit_{scope}_per_second")
        burst = getattr(settings, f"rate_limit_{scope}_burst")
        if rate > 0 and burst < settings.max_batch_events:
            raise ValueError(
                f"RECSVC_RATE_LIMIT_{scope.upper()}_BURST ({burst}) must be at least "
                f"RECSVC_MAX_BATCH_EVENTS ({settings.max_batch_events})"
            )


def event_buckets(caller: Caller, events: list[dict[str, Any]]) -> list[Bucket]:
    """The buckets a batch of ``events`` from ``caller`` is charged to (none for a key
    that runs on the store's servers; a rate of 0 turns a limit off)."""
    if caller.can("server"):
        return []
    svc = services()
    settings = svc.settings
    buckets = []
    if settings.rate_limit_key_per_second > 0:
        buckets.append(
            Bucket(
                svc.keys.rate_bucket("key", caller.key_id),
                settings.rate_limit_key_per_second,
                settings.rate_limit_key_burst,
                len(events),
            )
        )
    if settings.rate_limit_visitor_per_second > 0:
        per_visitor = Counter(event["visitor_id"] for event in events)
        buckets += [
            Bucket(
                svc.keys.rate_bucket("visitor", visitor_id),
                settings.rate_limit_visitor_per_second,
                settings.rate_limit_visitor_burst,
                count,
            )
            for visitor_id, count in per_visitor.items()
        ]
    return buckets


def charge_events(caller: Caller, events: list[dict[str, Any]]) -> None:
    """Charge ``events`` (validated) to their buckets; a 429 ``rate_limited`` with
    ``Retry-After`` (whole seconds) when one of them is short."""
    buckets = event_buckets(caller, events)
    if not buckets:
        return
    try:
        wait = services().rate_limiter.take(buckets)
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
            f"Too many events from this key or visitor; retry in {seconds} s.",
            {"retry_after_seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )
