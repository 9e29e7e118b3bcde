"""Ingestion on one Redis server beside a 3-master Redis Cluster: same generator, same run.

    python -m loadtests.drills.ingest_topologies [--seconds 10] [--workers 2] [--concurrency 8]

For each topology it starts its own Redis on free loopback ports (one ``redis-server``;
three ``--cluster-enabled`` ones joined by ``redis-cli --cluster create``), then
``recsvc serve`` on it, and drives it with wrk (``loadtests.phases``) on
``loadtests.bench_ingest``'s batches (100 events over 100,000 visitors): first the no-op
``GET /healthz`` as the reference, then ``POST /v1/events``. Every event id answered 202
is checked in the stream's shards (``bench_ingest.StreamCheck``). Prints a line per
topology and one JSON report; the ratio to the no-op of the same topology is the figure
to compare (the machine's load moves both). Also prints wrk's and everybody else's CPU:
on a 2-core machine the generator, gunicorn and Redis share the cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from pathlib import Path

from loadtests import phases
from loadtests.bench_ingest import StreamCheck, batch_requests
from loadtests.drills._cluster import start_cluster, start_server, start_service
from loadtests.server import Service
from recsvc.keys import KeySpace
from recsvc.redis_client import connect


def measure(name: str, redis_url: str, folder: Path, args: argparse.Namespace) -> dict:
    """The no-op and the ingestion load (wrk, ``loadtests.phases``) against a fresh service
    on ``redis_url``; every event id answered 202 checked in the stream's shards."""
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    started = start_service(redis_url, namespace, folder / f"{name}.log", workers=args.workers)
    service = Service(started.port, namespace, redis_url, started.process, started.log)
    check = StreamCheck(connect(redis_url), KeySpace(namespace), 100, args.concurrency)
    ingest = phases.Phase(
        "ingest",
        batch_requests(100, 100_000, same_visitors=False),
        marker='"accepted"',
        allowed=frozenset({202}),
        check=check,
        capture=check.capture,
    )
    runner = phases.Runner(service, args.seconds, args.concurrency)
    try:
        runner.warm_up([ingest], seconds=1)
        check.reset()
        noop = runner.measure(phases.noop_phase())
        result = runner.measure(ingest)
        problems = check(result)
    finally:
        started.stop()
    figures = check.figures["ingest"]
    return {
        "topology": name,
        "noop_rps": round(noop.rps, 1),
        "ingest": result.summary(),
        "events_per_s": figures["events_per_s"],
        "batch_rps_over_noop_rps": round(result.rps / noop.rps, 3),
        "events_accepted": figures["events_accepted"],
        "events_in_stream": figures["stream_added"],
        "lost": figures["missing"],
        "problems": problems,
        "generator_cores": result.cpu["generator"],
        "others_cores": result.cpu["others"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="recsvc-topologies-"))
    reports = []
    single = start_server(folder / "single", "--appendonly", "yes", "--appendfsync", "everysec")
    try:
        reports.append(measure("single", f"redis://{single.address}", folder, args))
    finally:
        single.stop()
    cluster = start_cluster(folder / "cluster")
    try:
        reports.append(measure("cluster-3", cluster.url, folder, args))
    finally:
        cluster.stop()
    for r in reports:
        print(
            f"{r['topology']:<10} {r['events_per_s']:>8.0f} events/s  "
            f"batch req/s over no-op {r['batch_rps_over_noop_rps']:.3f}  "
            f"p50 {r['ingest']['p50_ms']:.1f} ms  p99 {r['ingest']['p99_ms']:.1f} ms  "
            f"lost {r['lost']}  cores: wrk {r['generator_cores']:.2f}, "
            f"others {r['others_cores']:.2f}"
        )
    print(json.dumps(reports))


if __name__ == "__main__":
    main()
