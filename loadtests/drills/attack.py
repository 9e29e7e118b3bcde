"""Attack drill: 10,000 hostile requests with the public key, and a verdict.

    python -m loadtests.drills.attack [--requests 10000] [--seconds 240] [--concurrency 8]

Loopback only, bounded in time, nothing shared touched: it starts its own redis-server and
its own ``recsvc serve`` on free ports, seeds a store (a banner, and a victim customer who
logged in through the store's backend, filled a cart and bought), then sends what an
attacker holding the storefront's public key would: backdated and future events, huge
carts, impressions of made-up banners, invented methods, ``//`` paths and over-long URLs,
hostile JSON (deep, lone surrogates, 5,000-digit numbers, a chunked body over the limit),
floods of valid events, stitching attempts, reads about the victim (profile, nudges,
recommendations, banners, cart add-ons for the victim's visitor id, without a token or with
the attacker's own) and of the analytics. The victim's cart is abandoned within a second
(``DRILL_SETTINGS``) and a banner targets carts like theirs, so an answer that gave away
what they carted, bought or are worth would show. Before sending, it computes from the
settings how many events the rate limits can let through in the time allowed and what
that can cost Redis at most (keys and bytes). The verdict passes when:

- no answer was a 5xx;
- no answer holds the victim's items, user id or cart value (``VICTIM_MARKERS``);
- the Redis keys and memory added stay under the bound computed beforehand;
- every Redis value of the victim (visitor document, customer document, nudge state) is
  byte for byte what it was before the attack.

Exit status 0 when the verdict passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis
from tqdm import tqdm

from recsvc.core.events import EVENT_TYPES, SOURCES
from recsvc.core.funnel import FUNNEL_STEPS, VISITOR_TYPES
from recsvc.identity.tokens import mint_token
from recsvc.keys import KeySpace
from recsvc.redis_client import redis_server_binary
from recsvc.schemas.events import largest_event
from recsvc.settings import Settings
from recsvc.store.stream import encode_entry, total_length

PUBLIC, SERVER, ADMIN = "drill-public-key", "drill-server-key", "drill-admin-key"
NAMESPACE = "drill"
VICTIM_USER, VICTIM_VISITOR = "victim@example.com", "v-victim-7f3a"
ATTACKER_USER, ATTACKER_VISITOR = "mallory@example.com", "v-mallory"
# The drill's limits: small, so the bound is tight enough to mean something.
# (The bursts are at least a full batch of 1,000, as the service requires.)
LIMITS = {
    "RECSVC_RATE_LIMIT_KEY_PER_SECOND": "20",
    "RECSVC_RATE_LIMIT_KEY_BURST": "1000",
    "RECSVC_RATE_LIMIT_VISITOR_PER_SECOND": "5",
    "RECSVC_RATE_LIMIT_VISITOR_BURST": "1000",
}
# The victim's cart is abandoned a second after it changed, and every cart owner may be
# nudged (no holdout): a nudge answer would hold the cart.
DRILL_SETTINGS = {"RECSVC_CART_ABANDON_SECONDS": "1", "RECSVC_NUDGE_HOLDOUT_SHARE": "0"}
# What the victim's data looks like in an answer: their items, user id, cart value.
VICTIM_MARKERS = (b'"ring"', b'"watch"', VICTIM_USER.encode(), b"900.0")
# What one accepted event can add to a visitor's document at most, beyond its stream entry:
# a recent item, a cart line, a purchase line and a banner impression (each with a
# 128-character id), a stage change and an entry and exit of every segment, a counter and
# a source (JSON of each, measured generously). A new visitor's document (the first event)
# is NEW_DOCUMENT_BYTES.
EVENT_DOCUMENT_BYTES = 4 * 200 + 120 + 2 * 14 * 90 + 60
NEW_DOCUMENT_BYTES = 1200
# Redis's own cost per key and per stream entry (dict entry, object header, key name,
# expiry entry; a stream node of its own for an entry over half a node) and the
# allocator's rounding up to size classes, taken generously.
PER_KEY_BYTES = 400
# Ingestion relays each visitor's commit from an outbox (docs/redis.md) and keeps its entry
# id ``<token>:<visitor id>`` (up to 16 + 1 + 128 characters) as an idempotence mark: in
# its stream shard's ``relayed`` set for 10 minutes and, when it counted nudge counters or
# moved a cart, in ``{marketing}:relayed`` for a day. At most one commit per event, two
# marks each, with the sorted set's node and dict entry.
RELAY_MARK_BYTES = 2 * 300
ALLOCATOR_FACTOR = 1.5
HLL_BYTES = 12 * 1024 + 400


@dataclass
class Bound:
    """What the attack can cost at most, from the settings and the time it is given."""

    events: int
    keys: int
    bytes: int
    lines: list[str] = field(default_factory=list)


def compute_bound(settings: Settings, seconds: float, entry_bytes: int) -> Bound:
    """Every hostile event goes through the public key's bucket: at most its burst plus its
    rate times the time allowed are accepted. Each accepted event adds at most one stream
    entry (``entry_bytes``, the largest event's), one visitor document and its rate-limit
    bucket, one nudge state, and the relay's idempotence marks of one commit; the funnel's
    counters are a closed set over the days a public key may write to; nudge statistics
    one hash per such day; per stream shard a stream, its relay marks and pending marks."""
    events = int(settings.rate_limit_key_burst + settings.rate_limit_key_per_second * seconds)
    days = settings.public_event_max_age_seconds // 86400 + settings.max_future_seconds // 86400 + 2
    sources = len(SOURCES) + 1  # and the unknown source
    funnel = days * len(FUNNEL_STEPS) * sources * len(VISITOR_TYPES)
    shard_keys = 3 * settings.stream_shards
    # documents, buckets, nudge states; streams and their marks; indexes, marketing marks
    keys = 3 * events + funnel + days + shard_keys + 8
    entry = entry_bytes
    per_event = (
        entry + NEW_DOCUMENT_BYTES + EVENT_DOCUMENT_BYTES + RELAY_MARK_BYTES + 3 * PER_KEY_BYTES
    )
    total = int(ALLOCATOR_FACTOR * (events * per_event + funnel * HLL_BYTES))
    lines = [
        f"events the public key can get accepted: {settings.rate_limit_key_burst:,} burst + "
        f"{settings.rate_limit_key_per_second:g}/s x {seconds:g} s = {events:,}",
        f"largest stream entry {entry:,} B (measured); per event at most {per_event:,} B "
        f"(entry, new document {NEW_DOCUMENT_BYTES} B, growth {EVENT_DOCUMENT_BYTES} B, "
        f"relay marks {RELAY_MARK_BYTES} B, 3 keys x {PER_KEY_BYTES} B)",
        f"funnel counters: {days} days x {len(FUNNEL_STEPS)} steps x {sources} sources x "
        f"{len(VISITOR_TYPES)} types = {funnel:,} keys of at most {HLL_BYTES:,} B",
        f"keys added <= 3 x {events:,} + {funnel:,} + {days} + {shard_keys} + 8 = {keys:,}",
        f"bytes added <= {ALLOCATOR_FACTOR} x ({events:,} x {per_event:,} + {funnel:,} x "
        f"{HLL_BYTES:,}) = {total / 2**20:,.1f} MiB",
    ]
    return Bound(events, keys, total, lines)


def stream_entry_bytes(client: redis.Redis, settings: Settings, n: int = 2000) -> int:
    """Redis memory one stream entry of the largest valid event takes, measured: ``n`` of
    them added to a scratch stream (default node sizes), then deleted. At least the
    entry's JSON length."""
    entry = encode_entry(largest_event(settings))
    before = client.info("memory")["used_memory"]
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.xadd("drill-scratch-stream", entry)
    pipe.execute()
    used = (client.info("memory")["used_memory"] - before) / n
    client.delete("drill-scratch-stream")
    return max(int(used + 0.5), len(entry["e"]))


def worst_case_stream(settings: Settings, entry_bytes: int) -> str:
    """The README's figure: a stream full to its cap of the largest events."""
    total = settings.stream_max_len * entry_bytes
    return (
        f"worst-case stream memory at the defaults: {settings.stream_max_len:,} events x "
        f"{entry_bytes:,} B = {total / 2**30:,.1f} GiB"
    )


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[redis.Redis]:
    """A redis-server of the drill's own, on a free loopback port, without persistence."""
    port = free_port()
    command = [
        redis_server_binary(),
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        wait_for(lambda: client.ping(), "redis-server")
        yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def own_service(redis_port: int, secret: str, workdir: Path) -> Iterator[int]:
    """``recsvc serve`` with two workers on a free loopback port, keys and limits set."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}",
        "RECSVC_NAMESPACE": NAMESPACE,
        "RECSVC_LOG_LEVEL": "WARNING",
        "RECSVC_PUBLIC_KEYS": PUBLIC,
        "RECSVC_SERVER_KEYS": SERVER,
        "RECSVC_ADMIN_KEYS": ADMIN,
        "RECSVC_IDENTITY_SECRETS": secret,
        **LIMITS,
        **DRILL_SETTINGS,
    }
    command = [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port), "--workers", "2"]
    log = (workdir / "service.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: call(port, "GET", "/readyz")[0] == 200, "the service", process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def wait_for(check, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


# --- requests ----------------------------------------------------------------------------


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})} if body else headers or {}
        connection.request(method, path, body=body, headers=sent)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def raw_call(port: int, data: bytes) -> tuple[int, bytes]:
    """Bytes as they are (lowercase methods, chunked bodies): the status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def public(token: str | None = None) -> dict[str, str]:
    found = {"X-API-Key": PUBLIC}
    if token:
        found["X-Identity-Token"] = token
    return found


def events_body(events: list[dict]) -> bytes:
    return json.dumps({"events": events}).encode()


class Attacker:
    """Makes hostile requests, each a ``() -> (kind, status, body)``."""

    def __init__(self, port: int, rng: random.Random, forged_secret: str, now: float) -> None:
        self.port = port
        self.rng = rng
        self.forged_secret = forged_secret
        self.now = now
        # The attacker's own account is real: the backend gives them a token for it.
        self.own_token = ""
        self.kinds = [
            ("backdated", self.backdated),
            ("future", self.future),
            ("huge_cart", self.huge_cart),
            ("many_lines", self.many_lines),
            ("made_up_banners", self.made_up_banners),
            ("flood", self.flood),
            ("stitch_no_token", self.stitch_no_token),
            ("stitch_own_token", self.stitch_own_token),
            ("stitch_forged", self.stitch_forged),
            ("read_victim", self.read_victim),
            ("read_analytics", self.read_analytics),
            ("random_method", self.random_method),
            ("odd_path", self.odd_path),
            ("hostile_json", self.hostile_json),
        ]

    def visitor(self) -> str:
        return f"v-bot-{self.rng.randrange(10**9)}"

    def post(self, events: list[dict], token: str | None = None) -> tuple[int, bytes]:
        return call(self.port, "POST", "/v1/events", events_body(events), public(token))

    def backdated(self):
        visitor = self.visitor()
        events = [
            {
                "type": "page_view",
                "visitor_id": visitor,
                "source": self.rng.choice(SOURCES),
                "timestamp": f"{self.rng.randrange(1970, 2026)}-01-01T00:00:00Z",
            }
            for _ in range(self.rng.choice((1, 100, 1000)))
        ]
        return self.post(events)

    def future(self):
        day = time.strftime("%Y-%m-%d", time.gmtime(self.now + self.rng.randrange(2, 4000) * 86400))
        event = {"type": "page_view", "visitor_id": self.visitor(), "timestamp": f"{day}T00:00:00Z"}
        return self.post([event])

    def huge_cart(self):
        event = {
            "type": "add_to_cart",
            "visitor_id": self.visitor(),
            "item_id": "i-1",
            "quantity": self.rng.choice((1001, 5000, 10_000)),
        }
        return self.post([event])

    def many_lines(self):
        visitor = self.visitor()
        lines = [
            {"type": "add_to_cart", "visitor_id": visitor, "item_id": f"i-{n}-" + "x" * 100}
            for n in range(self.rng.choice((101, 150, 500)))
        ]
        return self.post(lines)

    def made_up_banners(self):
        visitor = self.visitor()
        shown = [
            {
                "type": "banner_impression",
                "visitor_id": visitor,
                "properties": {"banner_id": f"b-made-up-{self.rng.randrange(10**12)}"},
            }
            for _ in range(self.rng.choice((1, 20, 200)))
        ]
        return self.post(shown)

    def flood(self):
        events = [
            {"type": self.rng.choice(EVENT_TYPES[:4]), "visitor_id": self.visitor(), "item_id": "i"}
            for _ in range(1000)
        ]
        return self.post(events)

    def stitch(self, token: str | None, kind: str = "add_to_cart"):
        event = {
            "type": kind,
            "visitor_id": ATTACKER_VISITOR,
            "user_id": VICTIM_USER,
            "item_id": "i-stolen",
        }
        return self.post([event], token)

    def stitch_no_token(self):
        return self.stitch(None, self.rng.choice(("page_view", "add_to_cart", "purchase")))

    def stitch_own_token(self):
        return self.stitch(self.own_token)

    def stitch_forged(self):
        forged = mint_token(self.forged_secret, user_id=VICTIM_USER, visitor_id=ATTACKER_VISITOR)
        return self.stitch(forged)

    def read_victim(self):
        token = self.rng.choice((None, self.own_token))
        what = self.rng.choice(("profile", "nudges", "recommendations", "banners", "cart"))
        if what == "cart":
            body = json.dumps({"items": ["i-1"], "visitor_id": VICTIM_VISITOR}).encode()
            return call(self.port, "POST", "/v1/recommendations/cart", body, public(token))
        return call(self.port, "GET", f"/v1/visitors/{VICTIM_VISITOR}/{what}", None, public(token))

    def read_analytics(self):
        path = self.rng.choice(("/v1/analytics/funnel", "/v1/analytics/nudges"))
        return call(self.port, "GET", path, None, public())

    def random_method(self):
        method = self.rng.choice(
            ("FOO", "PROPFIND", "TRACE", "CONNECTX", "M" * 20, "get", "pOsT", "DELETE", "PATCH")
        )
        method += str(self.rng.randrange(1000)) if self.rng.random() < 0.5 else ""
        path = self.rng.choice(("/v1/events", "/v1/admin/banners", "/v1/visitors/x/profile", "/"))
        line = f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {PUBLIC}\r\n"
        return raw_call(self.port, line.encode() + b"Connection: close\r\n\r\n")

    def odd_path(self):
        path = self.rng.choice(
            (
                "//v1/admin/banners",
                "/v1//admin/banners",
                "/v1/admin//models",
                "/v1/visitors//profile",
                "/v1/visitors/" + "a" * self.rng.choice((300, 3000, 5000)) + "/profile",
                "/v1/visitors/v/recommendations?exclude=" + "a," * 3000,
            )
        )
        line = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {PUBLIC}\r\nConnection: close\r\n\r\n"
        return raw_call(self.port, line.encode())

    def hostile_json(self):
        choice = self.rng.randrange(5)
        if choice == 0:
            body = b"[" * 50_000 + b"]" * 50_000
        elif choice == 1:
            body = b'{"type": "search", "visitor_id": "v-x", "properties": {"q": "\\ud800"}}'
        elif choice == 2:
            body = b'{"items": ["a"], "n": 1' + b"0" * 5000 + b"}"
            return call(self.port, "POST", "/v1/recommendations/cart", body, public())
        elif choice == 3:
            return self.chunked_over_limit()
        else:
            body = b'{"type": "page_view", "visitor_id": "v-x", "price": 1e400}'
        return call(self.port, "POST", "/v1/events", body, public())

    def chunked_over_limit(self):
        body = events_body([{"type": "page_view", "visitor_id": self.visitor()}])
        body += b" " * (2 * 1024 * 1024 + 4096 - len(body))
        chunks = b"".join(
            b"%x\r\n" % len(body[i : i + 65536]) + body[i : i + 65536] + b"\r\n"
            for i in range(0, len(body), 65536)
        )
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: {PUBLIC}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        )
        return raw_call(self.port, head.encode() + chunks + b"0\r\n\r\n")

    def plan(self, n: int) -> list[tuple[str, object]]:
        """``n`` requests, the kinds in turn, shuffled; the heavy ones (a 2 MiB body, a
        50,000-deep array) are kept rare by ``hostile_json``'s own mix."""
        planned = [self.kinds[i % len(self.kinds)] for i in range(n)]
        self.rng.shuffle(planned)
        return planned


# --- the drill ---------------------------------------------------------------------------


def seed(port: int, secret: str) -> None:
    """Banners (one for big carts like the victim's), and the victim: logged in through
    the backend, a cart, a purchase."""
    banners = [
        {"id": "b-real", "placement": "home", "content": {"title": "Sale", "link": "/sale"}},
        {
            "id": "b-big-carts",
            "placement": "home",
            "content": {"title": "Free shipping"},
            "rules": {"has_cart": True, "cart_value_min": 500},
        },
    ]
    for banner in banners:
        status, body = call(
            port, "POST", "/v1/admin/banners", json.dumps(banner).encode(), {"X-API-Key": ADMIN}
        )
        assert status == 201, body
    token = mint_token(secret, user_id=VICTIM_USER, visitor_id=VICTIM_VISITOR)
    events = [
        {
            "type": "page_view",
            "visitor_id": VICTIM_VISITOR,
            "user_id": VICTIM_USER,
            "source": "email",
        },
        {"type": "add_to_cart", "visitor_id": VICTIM_VISITOR, "item_id": "ring", "price": 900},
        {"type": "purchase", "visitor_id": VICTIM_VISITOR, "item_id": "watch", "price": 300},
    ]
    status, body = call(port, "POST", "/v1/events", events_body(events), public(token))
    assert status == 202, body


def victim_state(client: redis.Redis, keys: KeySpace) -> dict[str, bytes | None]:
    names = [
        keys.visitor_profile(VICTIM_VISITOR),
        keys.customer(VICTIM_USER),
        keys.nudge_state(f"u:{VICTIM_USER}"),
    ]
    return {name: client.dump(name) for name in names}


def attack(
    attacker: Attacker, n: int, seconds: float, concurrency: int
) -> tuple[Counter, Counter, Counter, int]:
    """Send ``n`` hostile requests within ``seconds``: statuses overall, 5xx per kind and
    answers holding the victim's data per kind."""
    statuses: Counter = Counter()
    server_errors: Counter = Counter()
    leaks: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    sent = 0

    def one(item):
        nonlocal sent
        kind, make = item
        if time.monotonic() > deadline:
            return
        try:
            status, answer = make()
        except OSError:
            status, answer = 0, b""  # the connection failed: counted, fails the verdict
        with lock:
            sent += 1
            statuses[status] += 1
            if status >= 500 or status == 0:
                server_errors[kind] += 1
            if any(marker in answer for marker in VICTIM_MARKERS):
                leaks[kind] += 1
            progress.update()

    with (
        tqdm(total=n, desc="hostile requests", unit="req") as progress,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        list(pool.map(one, attacker.plan(n)))
    return statuses, server_errors, leaks, sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=240.0, help="time allowed to send")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    settings = Settings.from_env(LIMITS)
    secret = secrets.token_urlsafe(32)
    workdir = Path(tempfile.mkdtemp(prefix="recsvc-drill-"))
    keys = KeySpace(NAMESPACE)
    try:
        with own_redis(workdir) as client:
            entry = stream_entry_bytes(client, settings)
            print(worst_case_stream(Settings(), entry))
            bound = compute_bound(settings, args.seconds, entry)
            print("bound, computed before the attack:")
            for line in bound.lines:
                print(f"  {line}")
            redis_port = client.connection_pool.connection_kwargs["port"]
            with own_service(redis_port, secret, workdir) as port:
                seed(port, secret)
                time.sleep(1.5)  # the victim's cart abandoned: a nudge would show it
                before = victim_state(client, keys)
                keys_before = client.dbsize()
                memory_before = client.info("memory")["used_memory"]
                rng = random.Random(args.seed)
                attacker = Attacker(port, rng, secrets.token_urlsafe(32), time.time())
                attacker.own_token = mint_token(
                    secret, user_id=ATTACKER_USER, visitor_id=ATTACKER_VISITOR
                )
                started = time.monotonic()
                statuses, server_errors, leaks, sent = attack(
                    attacker, args.requests, args.seconds, args.concurrency
                )
                took = time.monotonic() - started
                keys_added = client.dbsize() - keys_before
                memory_added = client.info("memory")["used_memory"] - memory_before
                after = victim_state(client, keys)
                accepted = total_length(client, keys, settings.stream_shards) - 3
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    outcome = Outcome(
        statuses,
        server_errors,
        sent,
        args.requests,
        took,
        keys_added,
        memory_added,
        accepted,
        leaks,
    )
    return verdict(bound, outcome, before == after)


@dataclass
class Outcome:
    """What the attack got: statuses, 5xx per kind, and what Redis gained."""

    statuses: Counter
    server_errors: Counter
    sent: int
    wanted: int
    seconds: float
    keys_added: int
    memory_added: int
    accepted: int
    leaks: Counter = field(default_factory=Counter)


def verdict(bound: Bound, outcome: Outcome, victim_unchanged: bool) -> int:
    """Print each check and the verdict; the exit status (0 when every check passed)."""
    statuses, server_errors, sent, wanted = (
        outcome.statuses,
        outcome.server_errors,
        outcome.sent,
        outcome.wanted,
    )
    keys_added, memory_added, accepted = outcome.keys_added, outcome.memory_added, outcome.accepted
    print(f"\n{sent:,} of {wanted:,} hostile requests in {outcome.seconds:.1f} s")
    print("statuses: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items())))
    checks = [
        (sent == wanted, f"all {wanted:,} requests sent within the time allowed"),
        (not server_errors, f"no 5xx (or failed connection): {dict(server_errors) or 'none'}"),
        (
            not outcome.leaks,
            f"no answer held the victim's data: {dict(outcome.leaks) or 'none'}",
        ),
        (accepted <= bound.events, f"hostile events accepted {accepted:,} <= {bound.events:,}"),
        (keys_added <= bound.keys, f"Redis keys added {keys_added:,} <= {bound.keys:,}"),
        (
            memory_added <= bound.bytes,
            f"Redis memory added {memory_added / 2**20:,.1f} MiB <= {bound.bytes / 2**20:,.1f} MiB",
        ),
        (victim_unchanged, "the victim's documents byte for byte unchanged"),
    ]
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    passed = all(ok for ok, _ in checks)
    print("VERDICT:", "PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
