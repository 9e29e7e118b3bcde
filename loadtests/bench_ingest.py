"""Event ingestion benchmark: batches of 100 against the no-op endpoint, same server, same run.

    python -m loadtests.bench_ingest [--seconds 15] [--workers 4] [--concurrency 8]
        [--auth open|server|public] [--batches visitors|one]

Starts ``recsvc serve`` under gunicorn (on ``REDIS_URL`` if set, else the embedded Redis),
measures ``GET /healthz`` (the no-op JSON reference) and then ``POST /v1/events`` with
batches of 100 events from a pool of 100,000 visitors, and checks that every accepted event
is in the Redis stream. Target (DESIGN.md): at least 5,000 events/s, none lost.

``--batches visitors`` (the default) mixes 100 visitors in a batch, as a server-side batch
does; ``--batches one`` sends each batch for one logged-in visitor, with its ``user_id``, as
a browser does. ``--auth`` is how the service is keyed: ``open`` (no keys), ``server``
(requests with a server key), ``public`` (requests with the public key and, per batch, the
identity token the store's backend would give that browser; rate limits on, set high
enough not to refuse anything, so their Lua call is paid on every request). The generator's
CPU share and the load average are printed: read figures against them. So is the CPU time
the service (gunicorn master and workers) and Redis spent per batch while ingesting, which
a busy machine disturbs far less than throughput.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import time

import psutil

from loadtests import loadgen
from loadtests.server import running_service
from recsvc.core.events import SOURCES
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.namespace import delete_namespace
from recsvc.store.stream import total_length

TYPES = ["page_view", "product_view", "product_view", "product_view", "search", "add_to_cart"]


def event(rng: random.Random) -> dict:
    kind = rng.choice(TYPES)
    body = {"type": kind, "visitor_id": f"v{rng.randrange(100_000)}"}
    if kind in {"product_view", "add_to_cart"}:
        body["item_id"] = f"i{rng.randrange(100_000)}"
    if kind == "page_view":
        body["source"] = rng.choice(SOURCES)
    if kind == "search":
        body["properties"] = {"query": "red shoes"}
    return body


PUBLIC_KEY, SERVER_KEY = "bench-public", "bench-server"
SECRET = "bench-identity-secret-of-32-characters"
# Keys for --auth server and public; the rate limits high enough to refuse nothing.
AUTH_ENV = {
    "RECSVC_PUBLIC_KEYS": PUBLIC_KEY,
    "RECSVC_SERVER_KEYS": SERVER_KEY,
    "RECSVC_IDENTITY_SECRETS": SECRET,
    "RECSVC_RATE_LIMIT_KEY_PER_SECOND": "1000000",
    "RECSVC_RATE_LIMIT_KEY_BURST": "1000000",
    "RECSVC_RATE_LIMIT_VISITOR_PER_SECOND": "1000000",
    "RECSVC_RATE_LIMIT_VISITOR_BURST": "1000000",
}


def one_visitor_batch(rng: random.Random, batch_size: int) -> tuple[list[dict], str, str]:
    """A browser's batch: one visitor, logged in as its user."""
    number = rng.randrange(100_000)
    visitor, user = f"v{number}", f"u{number}"
    events = []
    for _ in range(batch_size):
        body = event(rng)
        body.update(visitor_id=visitor, user_id=user)
        events.append(body)
    return events, visitor, user


def batches(batch_size: int, auth: str = "open", per_batch: str = "visitors"):
    def make(connection: int):
        rng = random.Random(connection)
        requests = []
        for _ in range(50):
            headers = {}
            if per_batch == "one":
                events, visitor, user = one_visitor_batch(rng, batch_size)
            else:
                events = [event(rng) for _ in range(batch_size)]
            if auth == "server":
                headers["X-API-Key"] = SERVER_KEY
            elif auth == "public":
                # Imported here: the benchmark also runs against code from before tokens.
                from recsvc.identity.tokens import mint_token

                headers["X-API-Key"] = PUBLIC_KEY
                headers["X-Identity-Token"] = mint_token(SECRET, user_id=user, visitor_id=visitor)
            body = loadgen.json_body({"events": events})
            requests.append(loadgen.Request("POST", "/v1/events", body, headers))
        return itertools.cycle(requests)

    return make


def service_cpu_seconds(port: int) -> float:
    """User and system CPU seconds of the ``recsvc serve`` listening on ``port``: its
    master and every worker."""
    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "serve" in cmdline and str(port) in cmdline:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def redis_cpu_seconds(redis_url: str) -> float:
    cpu = connect(redis_url).info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def timed(run):
    """``run()``'s result, with this process's CPU seconds (the generator's) over the wall."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = run()
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return result, round(share, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--auth", choices=["open", "server", "public"], default="open")
    parser.add_argument("--batches", choices=["visitors", "one"], default="visitors")
    args = parser.parse_args()
    if args.auth == "public" and args.batches != "one":
        parser.error("--auth public sends one logged-in visitor per batch: --batches one")

    load_before = os.getloadavg()
    env = AUTH_ENV if args.auth != "open" else None
    with running_service(args.workers, args.threads, extra_env=env) as (port, namespace, redis_url):
        host = "127.0.0.1"
        loadgen.run(host, port, loadgen.repeat(loadgen.Request("GET", "/healthz")), seconds=2)
        noop, noop_cpu = timed(
            lambda: loadgen.run(
                host,
                port,
                loadgen.repeat(loadgen.Request("GET", "/healthz")),
                concurrency=args.concurrency,
                seconds=args.seconds,
                name="noop GET /healthz",
            )
        )
        service_cpu, redis_cpu = service_cpu_seconds(port), redis_cpu_seconds(redis_url)
        ingest, ingest_cpu = timed(
            lambda: loadgen.run(
                host,
                port,
                batches(args.batch_size, args.auth, args.batches),
                concurrency=args.concurrency,
                seconds=args.seconds,
                name=f"POST /v1/events x{args.batch_size}",
                keep_bodies=True,
            )
        )
        batches_done = max(ingest.requests, 1)
        cpu_ms_per_batch = {
            "service": round((service_cpu_seconds(port) - service_cpu) * 1000 / batches_done, 2),
            "redis": round((redis_cpu_seconds(redis_url) - redis_cpu) * 1000 / batches_done, 2),
        }
        accepted_ids = [
            event_id
            for body in ingest.bodies
            if body.startswith(b'{"accepted"')
            for event_id in json.loads(body)["ids"]
        ]
        # Every shard of the stream (docs/redis.md).
        stream_len = total_length(connect(redis_url), KeySpace(namespace), Settings.stream_shards)
        delete_namespace(connect(redis_url), namespace)  # leave a shared Redis as found

    events_per_s = len(accepted_ids) / ingest.seconds
    report = {
        "auth": args.auth,
        "batches": args.batches,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "generator_cpu_share": {"noop": noop_cpu, "ingest": ingest_cpu},
        "cpu_ms_per_batch": cpu_ms_per_batch,
        "noop": noop.summary(),
        "ingest": ingest.summary(),
        "events_accepted": len(accepted_ids),
        "events_per_s": round(events_per_s, 1),
        "ingest_rps_over_noop_rps": round(ingest.rps / noop.rps, 3),
        "events_in_stream": stream_len,
        "lost": len(accepted_ids) - stream_len,
        "target_events_per_s": 5000,
        "meets_target": events_per_s >= 5000 and stream_len == len(accepted_ids),
    }
    for line in (noop.summary(), ingest.summary()):
        print(
            f"{line['name']:<28} {line['rps']:>9.1f} req/s  p50 {line['p50_ms']:.2f} ms"
            f"  p99 {line['p99_ms']:.2f} ms  errors {line['errors']}  {line['statuses']}"
        )
    print(
        f"auth {args.auth}, batches {args.batches}; load average before/after "
        f"{report['load_average_before_after']}; generator CPU share noop {noop_cpu}, "
        f"ingest {ingest_cpu}; CPU ms per batch: service {cpu_ms_per_batch['service']}, "
        f"redis {cpu_ms_per_batch['redis']}"
    )
    print(
        f"events/s {events_per_s:.0f} (target 5000); batch req/s over no-op req/s "
        f"{report['ingest_rps_over_noop_rps']}; accepted {len(accepted_ids)}, "
        f"in stream {stream_len}, lost {report['lost']}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
