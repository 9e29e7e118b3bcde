"""A flame graph per endpoint under wrk load, and where each request's time goes.

    python -m loadtests.profile_endpoints [--duration 10] [--out loadtests/profiles]
        [--endpoints noop,known,...] [--users 1000000] [--items 100000]
        [--sessions 300000] [--visitors 5000] [--workers 2] [--threads 1]

Needs py-spy (``pip install -e '.[profile]'``) and wrk. Publishes the benchmark store
(``loadtests.bench_model``: model, session model, catalog), banners, anonymous visitors
with sessions and abandoned carts, starts ``recsvc serve`` (sync workers by default: one
thread a worker, so a sample is what the worker does, no thread waiting for the GIL),
then for each endpoint drives wrk (the phases of the benchmarks: ``bench_serving``,
``bench_marketing``, ``bench_ingest``) and meanwhile records the workers twice with
py-spy:

- ``OUT/<endpoint>.svg``: a flame graph of on-CPU samples (``py-spy record
  --subprocesses --function``; idle threads left out), the picture to look at;
- raw stacks, with idle threads (``--idle``) and without, classified by
  ``loadtests.profile_breakdown`` into microseconds per request by category: a worker's
  wall time (Redis waits, and on a shared machine waits for a core, included: a sync
  worker waits through them) and its CPU time (the workers' CPU the kernel counted
  meanwhile, split by the shares of the samples not idle), printed and written to
  ``OUT/breakdown.json``.

Profiling slows the workers (samples are taken without pausing them, ``--nonblocking``,
but py-spy itself takes CPU), so req/s here are not benchmark figures: the shares are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from loadtests import (
    bench_ingest,
    bench_marketing,
    bench_serving,
    phases,
    procstat,
    profile_breakdown,
    wrk,
)
from loadtests.bench_model import publish_store
from loadtests.server import Service, benchmark_redis, running_service
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.store.namespace import delete_namespace

RATE = 200  # samples a second for the breakdown
ENDPOINTS = (
    "noop",
    "known",
    "known_active",
    "session",
    "popular",
    "similar",
    "cart",
    "banners_known",
    "banners_anon",
    "nudges",
    "ingest",
)


def py_spy() -> str:
    found = shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install -e '.[profile]'")
    return found


def record(service: Service, phase: phases.Phase, seconds: float, out: Path) -> dict:
    """wrk on ``phase`` while py-spy records the service twice (flame graph, raw stacks);
    the breakdown."""
    requests_file = wrk.write_requests(phase.requests, phase.headers)
    result: dict = {}

    def load() -> None:
        result["wrk"] = wrk.run(
            service.url, requests_file, seconds=seconds + 2, connections=8, name=phase.name
        )

    raw = {
        kind: Path(tempfile.mkstemp(prefix=f"recsvc-profile-{phase.name}-{kind}-")[1])
        for kind in ("wall", "cpu")
    }
    common = ["record", "--pid", str(service.master_pid), "--subprocesses", "--nonblocking"]
    common += ["--duration", str(round(seconds)), "--function"]
    commands = [
        [*common, "--format", "flamegraph", "-o", str(out / f"{phase.name}.svg")],
        [*common, "--idle", "--rate", str(RATE), "--format", "raw", "-o", str(raw["wall"])],
        [*common, "--rate", str(RATE), "--format", "raw", "-o", str(raw["cpu"])],
    ]
    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1)  # wrk is up to speed
    before = procstat.snapshot(service.master_pid)
    spies = [
        subprocess.Popen([py_spy(), *c], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    for spy in spies:
        spy.wait()
    used = procstat.cpu_between(before, procstat.snapshot(service.master_pid), 0.0)
    loader.join()
    answered = result["wrk"]
    requests = round(answered.rps * seconds)  # answered while py-spy recorded
    wall = profile_breakdown.read(raw["wall"], RATE)
    cpu = profile_breakdown.read(raw["cpu"], RATE)
    # py-spy's "not idle" is running or waiting for a core (on a shared machine, much of
    # it): its shares split the CPU time the kernel counted for the workers.
    service_cpu_us = used["service"] * 1e6 / max(answered.rps, 1e-9)
    cpu_share = {row["category"]: row["share"] for row in cpu.table(requests)}
    categories = wall.table(requests)
    for row in categories:
        row["cpu_us_per_request"] = round(cpu_share.get(row["category"], 0.0) * service_cpu_us, 1)
    return {
        "endpoint": phase.name,
        "rps_while_profiled": round(answered.rps),
        "statuses": answered.statuses,
        "idle_share": wall.idle_share(),
        "us_per_request": round(wall.busy / RATE / max(requests, 1) * 1e6),
        "cpu_us_per_request": round(service_cpu_us),
        "cpu_cores": used,
        "categories": categories,
    }


def store(service: Service, client, keys: KeySpace, args) -> dict[str, phases.Phase]:
    """Publish the store and create its visitors; every endpoint's phase by name."""
    artifact = publish_store(
        client, keys, users=args.users, items=args.items, sessions=args.sessions
    )
    for body in bench_marketing.banner_bodies(60):
        service.call("POST", "/v1/admin/banners", body, expect=(201,))
    anonymous = bench_serving.seed_anonymous_visitors(service, args.visitors, artifact)
    known = [f"u{n}" for n in np.random.default_rng(1).choice(args.users, args.visitors)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    carted = [f"cart-{n}" for n in range(args.visitors)]
    service.send_events(bench_marketing.visitor_events(carted, args.items, stamp))
    carts = [v for v in carted if bench_marketing.has_cart(client, keys, v)]
    bench_serving.wait_for_version(service, artifact.version)
    active = bench_serving.seed_known_visitors(service, args.visitors, artifact, args.users)
    read = bench_serving.read_phases(artifact, anonymous, args.users, active)
    measured = {p.name: p for p in read}
    marketing, _claims = bench_marketing.marketing_phases(known, anonymous, carts)
    measured.update({p.name: p for p in marketing if p.name != "claim"})
    ingest = bench_ingest.batch_requests(100, 1_000_000, same_visitors=False)
    measured["ingest"] = phases.Phase("ingest", ingest, allowed=frozenset({202}))
    measured["noop"] = phases.noop_phase()
    return measured


def print_table(rows: list[dict]) -> None:
    print(
        "\nus per request by category: a sync worker's wall time (Redis waits and waits for a"
        " core included), and CPU time (the kernel's count, split by py-spy's busy samples)"
    )
    for row in rows:
        print(
            f"\n{row['endpoint']}: {row['us_per_request']} us a request, "
            f"{row['cpu_us_per_request']} us of CPU; {row['rps_while_profiled']} req/s while "
            f"profiled, workers idle {row['idle_share']:.0%}; cores used by others (py-spy, wrk, "
            "other people) "
            f"{row['cpu_cores']['others']:.2f} of {row['cpu_cores']['cores']:.0f}"
        )
        for line in row["categories"]:
            print(
                f"  {line['category']:<50}{line['us_per_request']:>7.0f} us {line['share']:6.1%}"
                f"   CPU {line['cpu_us_per_request']:>6.0f} us"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("loadtests/profiles"))
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--visitors", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    py_spy()
    args.out.mkdir(parents=True, exist_ok=True)
    namespace = f"benchprof{uuid.uuid4().hex[:6]}"
    rows = []
    with benchmark_redis() as redis_url:
        client = connect(redis_url, socket_timeout=60)
        try:
            with running_service(
                redis_url,
                namespace=namespace,
                workers=args.workers,
                threads=args.threads,
                settings={"RECSVC_NUDGE_QUIET_HOURS": ""},
            ) as service:
                measured = store(service, client, KeySpace(namespace), args)
                for name in args.endpoints.split(","):
                    runner = phases.Runner(service, 2, 8)
                    runner.measure(measured[name])  # warm: caches, first loads
                    rows.append(record(service, measured[name], args.duration, args.out))
                    print(f"profiled {name}: {rows[-1]['us_per_request']} us/request", flush=True)
        finally:
            delete_namespace(client, namespace)
    print_table(rows)
    (args.out / "breakdown.json").write_text(
        json.dumps({"args": vars(args) | {"out": str(args.out)}, "endpoints": rows}, indent=1)
        + "\n"
    )


if __name__ == "__main__":
    main()
