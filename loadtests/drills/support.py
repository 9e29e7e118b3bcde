"""What every drill shares: a Redis of its own, the service on it, traffic that records every
answer, and the verdict.

A drill breaks things on purpose, so nothing it touches is shared: ``OwnRedis`` is a
``redis-server`` started on a free loopback port with its own folder and append-only file
(the shared Redis at ``REDIS_URL`` is never killed, paused or reconfigured), and the
service (``loadtests.server.running_service``) runs on it with API keys on. ``Traffic``
is the load: threads in a closed loop, each over one keep-alive connection, recording
for every request when it started and ended (seconds since the traffic started), its
status, ``Retry-After`` and the JSON answer. It is no benchmark generator (wrk is, in
``loadtests.phases``): a drill needs each answer, not the highest rate.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from loadtests.server import ADMIN_HEADERS, free_port
from recsvc.keys import KeySpace
from recsvc.store.stream import decode_entry

# (method, path, JSON body or None) for one request; drawn afresh for every request.
RequestMaker = Callable[[random.Random], tuple[str, str, Any]]


# --- Redis -------------------------------------------------------------------------------
def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from recsvc.redis_client import redis_server_binary as embedded

    return embedded()


class OwnRedis:
    """A ``redis-server`` only this drill uses: ``127.0.0.1:<free port>``, data in a
    temporary folder, append-only file with ``appendfsync`` (``always``: an event answered
    202 survives a SIGKILL of Redis; ``everysec`` may lose the last second)."""

    def __init__(self, appendfsync: str = "always") -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="recsvc-drill-redis-"))
        self.appendfsync = appendfsync
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30, **options)

    def start(self, timeout: float = 30.0) -> float:
        """Start (again, from the same append-only file); seconds until it answered PING
        (loading the file included)."""
        started = time.monotonic()
        command = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.dir), "--appendonly", "yes"]
        command += ["--appendfsync", self.appendfsync, "--save", ""]
        command += ["--logfile", str(self.dir / "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.dir / 'redis.log'}")
            try:
                if probe.ping():
                    return time.monotonic() - started
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                time.sleep(0.02)
        raise TimeoutError(f"redis-server did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed beyond what the append-only file has."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def own_redis(appendfsync: str = "always") -> Iterator[OwnRedis]:
    server = OwnRedis(appendfsync)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stream_ids(client: redis.Redis, keys: KeySpace) -> Counter:
    """How often each event id is in the stream, every shard of it, once the outbox
    entries a writer could not relay (Redis went away between commit and relay) are
    relayed, as the exporter's sweep would (``recsvc.store.outbox``)."""
    from recsvc.settings import Settings
    from recsvc.store.outbox import Relay
    from recsvc.store.stream import stream_keys

    settings = Settings.from_env()  # the service's shards: the same environment
    Relay(client, keys, settings).sweep(older_than=0)
    ids: Counter = Counter()
    for stream in stream_keys(keys, settings.stream_shards):
        after = b"-"
        while True:
            chunk = client.xrange(stream, min=after, count=10_000)
            if after != b"-":
                chunk = chunk[1:]  # the entry ``after`` itself, read in the previous chunk
            if not chunk:
                break
            ids.update(decode_entry(fields)["id"] for _, fields in chunk)
            after = chunk[-1][0]
    return ids


# --- traffic -----------------------------------------------------------------------------
@dataclass(eq=False)  # each answer is its own: hashable by identity
class Answer:
    """One request: times in seconds since the traffic started; status 0 when no answer
    came (``error`` says why)."""

    name: str
    started: float
    ended: float
    status: int
    error: str = ""
    retry_after: str | None = None
    body: Any = None
    retried_stale: bool = False  # resent once after a kept-alive connection was found closed

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class _Stream:
    name: str
    make: RequestMaker
    threads: int
    interval: float


class Traffic:
    """Closed-loop traffic over keep-alive connections, every answer recorded.

    ``add(name, make, threads, interval)``: ``threads`` threads each send
    ``make(rng)`` requests one after the other, ``interval`` seconds apart at most as often.
    As a browser does, a request that finds its kept-alive connection closed by the server
    before any answer byte (the server restarted the worker holding it) is sent once more
    on a new connection, and marked ``retried_stale``.
    """

    def __init__(
        self, port: int, headers: dict[str, str] | None = None, timeout: float = 30.0
    ) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json", **(headers or ADMIN_HEADERS)}
        self.timeout = timeout
        self.answers: list[Answer] = []
        self._streams: list[_Stream] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.t0 = 0.0

    def add(self, name: str, make: RequestMaker, threads: int = 1, interval: float = 0.0):
        self._streams.append(_Stream(name, make, threads, interval))
        return self

    def now(self) -> float:
        return time.monotonic() - self.t0

    def __enter__(self) -> Traffic:
        self.t0 = time.monotonic()
        for stream in self._streams:
            for n in range(stream.threads):
                rng = random.Random(hash((stream.name, n)))
                thread = threading.Thread(target=self._loop, args=(stream, rng), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def of(self, name: str) -> list[Answer]:
        return [a for a in self.answers if a.name == name]

    def _loop(self, stream: _Stream, rng: random.Random) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            method, path, body = stream.make(rng)
            payload = None if body is None else json.dumps(body).encode()
            started = self.now()
            answer, connection = self._send(connection, stream.name, method, path, payload)
            answer.started = started
            with self._lock:
                self.answers.append(answer)
            if stream.interval:
                self._stop.wait(max(0.0, stream.interval - answer.latency))
        if connection is not None:
            connection.close()

    def _send(self, connection, name: str, method: str, path: str, payload: bytes | None):
        for attempt in (1, 2):
            reused = connection is not None
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, self.timeout)
            try:
                connection.request(method, path, body=payload, headers=self.headers)
                response = connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                connection.close()
                connection = None
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had closed: resend once
                return Answer(name, 0, self.now(), 0, f"{type(e).__name__}"), None
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                return Answer(name, 0, self.now(), 0, f"{type(e).__name__}: {e}"), None
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            answer = Answer(
                name,
                0,
                self.now(),
                response.status,
                retry_after=response.getheader("Retry-After"),
                body=body,
                retried_stale=attempt == 2,
            )
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
            return answer, connection
        raise AssertionError("unreachable")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank; nan for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- the verdict -------------------------------------------------------------------------
@dataclass
class Verdict:
    """A drill's checks and figures; ``report()`` prints them and returns the exit code."""

    drill: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, what: str, passed: bool, detail: str = "") -> bool:
        self.checks.append((what, bool(passed), detail))
        return bool(passed)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def report(self) -> int:
        print(f"\n{self.drill}")
        for what, ok, detail in self.checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {what}" + (f": {detail}" if detail else ""))
        for name, value in self.figures.items():
            print(f"  {name}: {value}")
        print(f"VERDICT {self.drill}: {'PASS' if self.passed else 'FAIL'}")
        print(
            json.dumps(
                {
                    "drill": self.drill,
                    "passed": self.passed,
                    "figures": self.figures,
                    "checks": [{"check": w, "passed": ok, "detail": d} for w, ok, d in self.checks],
                },
                default=str,
            )
        )
        sys.stdout.flush()
        return 0 if self.passed else 1


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Abort the block (TimeoutError) if it runs past ``seconds``: a drill is bounded even
    when what it breaks does not come back."""

    def expire(_signum, _frame):
        raise TimeoutError(f"{what} ran past its {seconds:.0f} s bound")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the store and its requests ----------------------------------------------------------
@dataclass(frozen=True)
class DrillStore:
    """What a drill published: the model's version, its users and items, and anonymous
    visitors with a few product views each."""

    version: str
    users: int
    items: int
    anonymous: list[str]


def publish_drill_store(
    redis_url: str, namespace: str, users: int, items: int, sessions: int = 0
) -> tuple[Any, DrillStore]:
    """The benchmark store (``loadtests.bench_model``), published as current; returns the
    artifact and the store (anonymous visitors are added by ``seed_visitors``)."""
    from loadtests.bench_model import publish_store

    client = redis.Redis.from_url(redis_url, socket_timeout=60)
    artifact = publish_store(
        client, KeySpace(namespace), users=users, items=items, sessions=sessions
    )
    return artifact, DrillStore(artifact.version, users, items, [])


def seed_visitors(service, artifact, store: DrillStore, count: int) -> DrillStore:
    from loadtests.bench_serving import seed_anonymous_visitors

    visitors = seed_anonymous_visitors(service, count, artifact)
    return DrillStore(store.version, store.users, store.items, visitors)


def known_recommendations(store: DrillStore) -> RequestMaker:
    return lambda rng: ("GET", f"/v1/visitors/u{rng.randrange(store.users)}/recommendations", None)


def anonymous_recommendations(store: DrillStore) -> RequestMaker:
    return lambda rng: ("GET", f"/v1/visitors/{rng.choice(store.anonymous)}/recommendations", None)


def similar_items(store: DrillStore) -> RequestMaker:
    return lambda rng: ("GET", f"/v1/items/i{rng.randrange(store.items)}/similar?n=10", None)


def banners(store: DrillStore) -> RequestMaker:
    return lambda rng: ("GET", f"/v1/visitors/u{rng.randrange(store.users)}/banners", None)


def nudges(store: DrillStore) -> RequestMaker:
    return lambda rng: ("GET", f"/v1/visitors/u{rng.randrange(store.users)}/nudges", None)


def event_batches(store: DrillStore, size: int = 10, visitors: int = 100_000) -> RequestMaker:
    """``POST /v1/events`` of ``size`` product views by random visitors."""

    def make(rng: random.Random) -> tuple[str, str, Any]:
        events = [
            {
                "type": "product_view",
                "visitor_id": f"dv{rng.randrange(visitors)}",
                "item_id": f"i{rng.randrange(store.items)}",
            }
            for _ in range(size)
        ]
        return "POST", "/v1/events", {"events": events}

    return make


def accepted_ids(answers: list[Answer]) -> list[str]:
    """Event ids of the answers 202."""
    return [i for a in answers if a.status == 202 and a.body for i in a.body["ids"]]


def latency_figures(answers: list[Answer]) -> dict[str, float]:
    latencies = [a.latency * 1000 for a in answers if a.status]
    return {
        "requests": len(answers),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
    }


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's workers now."""
    from loadtests.procstat import children

    return children(master)


def log_lines(path: Path, message: str, **fields: Any) -> list[dict[str, Any]]:
    """The service's JSON log lines with ``message`` and these ``fields``, each with its
    time as a Unix timestamp under ``"at"``."""
    from datetime import datetime

    found = []
    for raw in path.read_text(errors="replace").splitlines():
        if message not in raw or not raw.startswith("{"):
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if line.get("message") == message and all(line.get(k) == v for k, v in fields.items()):
            line["at"] = datetime.fromisoformat(line["ts"]).timestamp()
            found.append(line)
    return found


# --- nginx in front ----------------------------------------------------------------------
NGINX_CONF = Path(__file__).with_name("nginx.conf")


@contextlib.contextmanager
def nginx_in_front(upstream_port: int) -> Iterator[int]:
    """nginx (the Debian binary) with ``loadtests/drills/nginx.conf`` on a free loopback
    port in front of ``127.0.0.1:upstream_port``; yields its port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = Path(tempfile.mkdtemp(prefix="recsvc-drill-nginx-"))
    port = free_port()
    config = (
        NGINX_CONF.read_text()
        .replace("@PREFIX@", str(prefix))
        .replace("@LISTEN@", f"127.0.0.1:{port}")
        .replace("@UPSTREAM@", f"127.0.0.1:{upstream_port}")
    )
    (prefix / "nginx.conf").write_text(config)
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {process.stderr.read().decode()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("nginx did not listen within 10 s")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(prefix, ignore_errors=True)
