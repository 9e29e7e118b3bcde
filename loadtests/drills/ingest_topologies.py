"""Ingestion on one Redis server beside a 3-master Redis Cluster: same generator, same run.

    python -m loadtests.drills.ingest_topologies [--seconds 10] [--workers 2] [--concurrency 8]

For each topology it starts its own Redis on free loopback ports (one ``redis-server``;
three ``--cluster-enabled`` ones joined by ``redis-cli --cluster create``), then
``recsvc serve`` on it, and drives it with ``loadtests.bench_ingest``'s generator (batches
of 100 events over 100,000 visitors): first the no-op ``GET /healthz`` as the reference,
then ``POST /v1/events``. It counts every accepted event in the stream's shards. Prints a
line per topology and one JSON report; the ratio to the no-op of the same topology is the
figure to compare (the machine's load moves both). Also prints the generator's CPU
seconds: on a 2-core machine the generator, gunicorn and Redis share the cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import uuid
from pathlib import Path

from loadtests import loadgen
from loadtests.bench_ingest import batches
from loadtests.drills._cluster import start_cluster, start_server, start_service
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.stream import total_length


def measure(name: str, redis_url: str, folder: Path, args: argparse.Namespace) -> dict:
    """The no-op and the ingestion load against a fresh service on ``redis_url``."""
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    service = start_service(redis_url, namespace, folder / f"{name}.log", workers=args.workers)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        host, port = "127.0.0.1", service.port
        healthz = loadgen.repeat(loadgen.Request("GET", "/healthz"))
        loadgen.run(host, port, healthz, seconds=1)
        noop = loadgen.run(
            host, port, healthz, concurrency=args.concurrency, seconds=args.seconds, name="noop"
        )
        ingest = loadgen.run(
            host,
            port,
            batches(100),
            concurrency=args.concurrency,
            seconds=args.seconds,
            name="POST /v1/events x100",
            keep_bodies=True,
        )
    finally:
        service.stop()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    accepted = [
        i
        for body in ingest.bodies
        if body.startswith(b'{"accepted"')
        for i in json.loads(body)["ids"]
    ]
    stored = total_length(connect(redis_url), KeySpace(namespace), Settings.stream_shards)
    generator_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    return {
        "topology": name,
        "noop_rps": round(noop.rps, 1),
        "ingest": ingest.summary() | {"bodies": None},
        "events_per_s": round(len(accepted) / ingest.seconds, 1),
        "batch_rps_over_noop_rps": round(ingest.rps / noop.rps, 3),
        "events_accepted": len(accepted),
        "events_in_stream": stored,
        "lost": len(accepted) - stored,
        "generator_cpu_s": round(generator_cpu, 1),
        "wall_s": round(noop.seconds + ingest.seconds, 1),
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
            f"lost {r['lost']}  generator CPU {r['generator_cpu_s']} s of {r['wall_s']} s"
        )
    print(json.dumps(reports))


if __name__ == "__main__":
    main()
