"""The per-app objects views use: settings, clock, the Redis client and the stores."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from recsvc.clock import Clock, SystemClock
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.serving.banners import BannerService
from recsvc.serving.breaker import CircuitBreaker
from recsvc.serving.holder import ModelHolder
from recsvc.serving.recommend import Recommender
from recsvc.serving.tiles import Tiles
from recsvc.serving.visitors import VisitorReader
from recsvc.settings import Settings
from recsvc.store.banners import BannerStore
from recsvc.store.catalog import CatalogStore
from recsvc.store.events import EventWriter
from recsvc.store.funnel import FunnelStore
from recsvc.store.models import ModelStore
from recsvc.store.nudges import NudgeStore
from recsvc.store.profiles import ProfileStore
from recsvc.store.rate_limits import BatchedTakes, RateLimiter

EXTENSION = "recsvc"


@dataclass
class Services:
    settings: Settings
    clock: Clock
    client: redis.Redis
    keys: KeySpace
    events: EventWriter
    profiles: ProfileStore
    funnel: FunnelStore
    catalog: CatalogStore
    models: ModelStore
    holder: ModelHolder
    reader: VisitorReader
    tiles: Tiles
    recommender: Recommender
    nudges: NudgeStore
    banners: BannerStore
    banner_service: BannerService
    rate_limiter: RateLimiter
    # Reads are charged a few at a time (settings.rate_limit_read_batch).
    read_limiter: BatchedTakes
    # Writes' own breaker (recsvc.api.events): a read's failure says nothing of the
    # writes' Redis client, whose timeouts are longer.
    write_breaker: CircuitBreaker

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        client = connect(settings.redis_url, settings)
        keys = KeySpace(settings.namespace)
        clock = clock or SystemClock()
        models, catalog = ModelStore(client, keys), CatalogStore(client, keys)
        holder = ModelHolder(
            models, catalog, settings.model_poll_seconds, settings.session_answer_cache
        )
        fast = _fast_client(settings)
        breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_seconds, clock)
        reader = VisitorReader(fast, keys, ModelStore(fast, keys), breaker)
        tiles = Tiles(holder, CatalogStore(fast, keys), breaker)
        limiter = RateLimiter(client)
        return cls(
            settings=settings,
            clock=clock,
            client=client,
            keys=keys,
            events=EventWriter(client, keys, settings),
            profiles=ProfileStore(client, keys),
            funnel=FunnelStore(client, keys),
            catalog=catalog,
            models=models,
            holder=holder,
            reader=reader,
            tiles=tiles,
            recommender=Recommender(reader, tiles, holder, settings, clock),
            nudges=NudgeStore(client, keys, settings),
            banners=BannerStore(client, keys),
            banner_service=BannerService(
                BannerStore(fast, keys),
                CatalogStore(fast, keys),
                reader,
                holder,
                settings,
                clock,
                catalog_scan=catalog,
            ),
            rate_limiter=limiter,
            read_limiter=BatchedTakes(limiter, settings.rate_limit_read_batch),
            write_breaker=CircuitBreaker(
                settings.breaker_failures, settings.breaker_reset_seconds, clock
            ),
        )


def _fast_client(settings: Settings) -> redis.Redis:
    """Request-path reads get a client of their own: a short timeout and no retries, so a
    slow Redis costs one timeout and then the breaker, never a slow answer per retry."""
    return connect(
        settings.redis_url,
        settings,
        socket_timeout=settings.serving_redis_timeout,
        socket_connect_timeout=settings.serving_redis_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]
