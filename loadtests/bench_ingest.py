"""Event ingestion benchmark: batches of 100 against the no-op endpoint, same server, same run.

    python -m loadtests.bench_ingest [--seconds 15] [--workers 4] [--concurrency 8]

Starts ``recsvc serve`` under gunicorn (on ``REDIS_URL`` if set, else the embedded Redis),
measures ``GET /healthz`` (the no-op JSON reference) and then ``POST /v1/events`` with
batches of 100 events from a pool of 100,000 visitors, and checks that every accepted event
is in the Redis stream. Target (DESIGN.md): at least 5,000 events/s, none lost.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random

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


def batches(batch_size: int):
    def make(connection: int):
        rng = random.Random(connection)
        bodies = [
            loadgen.json_body({"events": [event(rng) for _ in range(batch_size)]})
            for _ in range(50)
        ]
        return (loadgen.Request("POST", "/v1/events", body) for body in itertools.cycle(bodies))

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    with running_service(args.workers, args.threads) as (port, namespace, redis_url):
        host = "127.0.0.1"
        loadgen.run(host, port, loadgen.repeat(loadgen.Request("GET", "/healthz")), seconds=2)
        noop = loadgen.run(
            host,
            port,
            loadgen.repeat(loadgen.Request("GET", "/healthz")),
            concurrency=args.concurrency,
            seconds=args.seconds,
            name="noop GET /healthz",
        )
        ingest = loadgen.run(
            host,
            port,
            batches(args.batch_size),
            concurrency=args.concurrency,
            seconds=args.seconds,
            name=f"POST /v1/events x{args.batch_size}",
            keep_bodies=True,
        )
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
        f"events/s {events_per_s:.0f} (target 5000); batch req/s over no-op req/s "
        f"{report['ingest_rps_over_noop_rps']}; accepted {len(accepted_ids)}, "
        f"in stream {stream_len}, lost {report['lost']}"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
