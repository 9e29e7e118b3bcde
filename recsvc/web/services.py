"""The per-app objects views use: settings, clock, the Redis client and the stores."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from recsvc.clock import Clock, SystemClock
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.catalog import CatalogStore
from recsvc.store.events import EventWriter
from recsvc.store.funnel import FunnelStore
from recsvc.store.models import ModelStore
from recsvc.store.profiles import ProfileStore

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

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        client = connect(settings.redis_url, settings)
        keys = KeySpace(settings.namespace)
        return cls(
            settings=settings,
            clock=clock or SystemClock(),
            client=client,
            keys=keys,
            events=EventWriter(client, keys, settings),
            profiles=ProfileStore(client, keys),
            funnel=FunnelStore(client, keys),
            catalog=CatalogStore(client, keys),
            models=ModelStore(client, keys),
        )


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]
