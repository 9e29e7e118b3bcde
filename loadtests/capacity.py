"""Capacity figures at three sizes, for ``docs/capacity.md``.

    python -m loadtests.capacity [--scale 1.0] [--skip-training]

Everything runs against a ``redis-server`` of its own on a free loopback port (nothing
shared is measured or disturbed). At three sizes each it measures:

1. **Ingestion**: Redis memory per visitor (profile, outbox, nudge state: what stays), the
   stream's bytes per event (what waits for the exporter), and Redis commands and Redis CPU
   per event, writing bench_ingest's events (batches of 100, 8 events per visitor) through
   ``EventWriter``.
2. **Serving**: Redis commands per recommendation request (the Flask app in-process, a
   published model), and the worker's memory for a model's item side (RSS of a fresh
   process before and after loading it).
3. **Models in Redis**: bytes per user vector and per item, publishing random ALS-shaped
   models (64 factors).
4. **Training**: the bare ``implicit`` ALS fit (64 factors, 15 iterations) on power-law
   interaction matrices (``recsvc train`` as a whole takes up to 2.5x that:
   ``loadtests/bench_train.py``).

Prints a line per measurement and one JSON report with per-unit figures and fits
(bytes per visitor, seconds per million interactions ...), which ``docs/capacity.md``
extrapolates.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from loadtests.bench_ingest import event
from loadtests.drills._cluster import publish_small_model, start_server
from recsvc.core.events import format_timestamp, new_event_id
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.events import EventWriter
from recsvc.store.stream import total_length

FACTORS = 64


def redis_figures(client) -> dict[str, float]:
    memory, stats, cpu = client.info("memory"), client.info("stats"), client.info("cpu")
    return {
        "memory": memory["used_memory"],
        "commands": stats["total_commands_processed"],
        "cpu": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
    }


def records_for(visitors: int, per_visitor: int, seed: int) -> list[dict]:
    """bench_ingest's event mix, ``per_visitor`` events for each of ``visitors``."""
    rng = random.Random(seed)
    now = format_timestamp(datetime.now(UTC))
    out = []
    for n in range(visitors * per_visitor):
        body = event(rng, f"v{n % visitors}")
        out.append({**body, "id": new_event_id(), "timestamp": now})
    return out


def measure_ingestion(url: str, visitors: int, per_visitor: int = 8) -> dict:
    settings = Settings(redis_url=url, namespace=f"cap{uuid.uuid4().hex[:6]}")
    client = connect(url, settings)
    keys = KeySpace(settings.namespace)
    writer = EventWriter(client, keys, settings)
    records = records_for(visitors, per_visitor, seed=visitors)
    before = redis_figures(client)
    started = time.perf_counter()
    for start in range(0, len(records), 100):
        writer.write(records[start : start + 100])
    seconds = time.perf_counter() - started
    after = redis_figures(client)
    stream_bytes = sum(
        client.memory_usage(keys.events_stream(s)) or 0 for s in range(settings.stream_shards)
    )
    events = len(records)
    assert total_length(client, keys, settings.stream_shards) == events
    kept = after["memory"] - before["memory"] - stream_bytes
    return {
        "visitors": visitors,
        "events": events,
        "bytes_per_visitor": round(kept / visitors),
        "stream_bytes_per_event": round(stream_bytes / events),
        "commands_per_event": round((after["commands"] - before["commands"]) / events, 2),
        "redis_cpu_us_per_event": round((after["cpu"] - before["cpu"]) / events * 1e6, 1),
        "client_events_per_s": round(events / seconds),
    }


def measure_model_in_redis(url: str, items: int, users: int) -> dict:
    from recsvc.scoring.artifact import ModelArtifact
    from recsvc.store.models import ModelStore

    namespace = f"cap{uuid.uuid4().hex[:6]}"
    client = connect(url)
    rng = np.random.default_rng(items)
    artifact = ModelArtifact(
        version="cap",
        manifest={"model": "als", "created": "2026-01-01", "params": {"factors": FACTORS}},
        item_ids=[f"item-{n}" for n in range(items)],
        user_ids=[f"user-{n}" for n in range(users)],
        item_factors=rng.normal(size=(items, FACTORS)).astype(np.float32),
        user_factors=rng.normal(size=(users, FACTORS)).astype(np.float32),
        popular=np.arange(100),
        trending=np.arange(100),
        similar_items=rng.integers(0, items, size=(items, 20)),
        similar_scores=np.sort(rng.random((items, 20)))[:, ::-1],
    )
    before = redis_figures(client)["memory"]
    started = time.perf_counter()
    ModelStore(client, KeySpace(namespace)).publish(artifact, make_current=True)
    seconds = time.perf_counter() - started
    total = redis_figures(client)["memory"] - before
    # Items' share: publish the same items with one user.
    one_user = {"version": "items", "user_ids": ["u"], "user_factors": artifact.user_factors[:1]}
    item_only = ModelArtifact(**{**artifact.__dict__, **one_user})
    before = redis_figures(client)["memory"]
    ModelStore(client, KeySpace(namespace)).publish(item_only, make_current=False)
    items_bytes = redis_figures(client)["memory"] - before
    return {
        "items": items,
        "users": users,
        "bytes_per_user": round((total - items_bytes) / users, 1),
        "bytes_per_item": round(items_bytes / items, 1),
        "publish_seconds": round(seconds, 2),
    }


WORKER_PROBE = """
import json, sys
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.store.models import ModelStore
from recsvc.web.app import create_app
from recsvc.settings import Settings

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

url, namespace, version = sys.argv[1:4]
base = rss()
store = ModelStore(connect(url), KeySpace(namespace))
side = store.load_item_side(version)
print(json.dumps({"base_rss": base, "item_side_rss": rss() - base}))
"""


def measure_worker(url: str, items: int) -> dict:
    namespace = f"cap{uuid.uuid4().hex[:6]}"
    publish_small_model(url, namespace, "w", items=items)
    probe = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE, url, namespace, "w"],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(probe.stdout)
    return {
        "items": items,
        "worker_base_rss_mb": round(figures["base_rss"] / 2**20, 1),
        "item_side_bytes_per_item": round(figures["item_side_rss"] / items, 1),
    }


def measure_request_commands(url: str, requests: int = 300) -> dict:
    """Redis commands per recommendation request, the app in-process (idle polling
    measured over the same time and taken off)."""
    from recsvc.web.app import create_app

    settings = Settings(redis_url=url, namespace=f"cap{uuid.uuid4().hex[:6]}", log_level="WARNING")
    publish_small_model(url, settings.namespace, "r", items=2000)
    client = connect(url)
    EventWriter(client, KeySpace(settings.namespace), settings).write(records_for(200, 3, seed=1))
    app = create_app(settings).test_client()
    app.get("/v1/visitors/v1/recommendations?n=10")
    before, started = redis_figures(client), time.perf_counter()
    for n in range(requests):
        assert app.get(f"/v1/visitors/v{n % 200}/recommendations?n=10").status_code == 200
    busy = time.perf_counter() - started
    after = redis_figures(client)
    time.sleep(min(busy, 5))
    idle = (redis_figures(client)["commands"] - after["commands"]) / min(busy, 5) * busy
    per_request = (after["commands"] - before["commands"] - idle) / requests
    return {"requests": requests, "commands_per_request": round(per_request, 2)}


TRAIN_PROBE = """
import json, sys, time
import numpy as np, scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
users, items, nnz = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
rows = rng.integers(0, users, nnz)
cols = np.minimum((rng.pareto(1.2, nnz) * items / 50).astype(np.int64), items - 1)
matrix = sp.csr_matrix((np.ones(nnz, np.float32), (rows, cols)), shape=(users, items))
matrix.sum_duplicates()
model = AlternatingLeastSquares(factors=64, iterations=15, random_state=0)
started = time.perf_counter()
model.fit(matrix, show_progress=False)
print(json.dumps({"interactions": int(matrix.nnz), "seconds": time.perf_counter() - started}))
"""


def measure_training(interactions: int) -> dict:
    users, items = interactions // 8, max(1000, interactions // 40)
    # One BLAS thread, as implicit asks (it runs its own threads over users).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", TRAIN_PROBE, str(users), str(items), str(interactions)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    figures = json.loads(probe.stdout)
    return {
        "interactions": figures["interactions"],
        "users": users,
        "items": items,
        "fit_seconds": round(figures["seconds"], 2),
    }


def fit_per_unit(rows: list[dict], x: str, y: str) -> float:
    """Slope of ``y`` against ``x`` through the three sizes (least squares)."""
    xs = np.array([r[x] for r in rows], float)
    ys = np.array([r[y] for r in rows], float)
    return float(np.polyfit(xs, ys, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    s = args.scale
    folder = Path(tempfile.mkdtemp(prefix="recsvc-capacity-"))
    server = start_server(folder / "redis")
    url = f"redis://{server.address}"
    report: dict = {}
    try:
        report["ingestion"] = [measure_ingestion(url, int(n * s)) for n in (1000, 3000, 10000)]
        for r in report["ingestion"]:
            print("ingestion", r)
        report["request"] = measure_request_commands(url)
        print("request", report["request"])
        sizes = [(10_000, 20_000), (30_000, 60_000), (100_000, 200_000)]
        report["model"] = [measure_model_in_redis(url, int(i * s), int(u * s)) for i, u in sizes]
        for r in report["model"]:
            print("model", r)
        report["worker"] = [measure_worker(url, int(i * s)) for i in (10_000, 30_000, 100_000)]
        for r in report["worker"]:
            print("worker", r)
    finally:
        server.stop()
    if not args.skip_training:
        report["training"] = [measure_training(int(n * s)) for n in (100_000, 300_000, 1_000_000)]
        for r in report["training"]:
            print("training", r)
        report["fit_seconds_per_million_interactions"] = round(
            fit_per_unit(report["training"], "interactions", "fit_seconds") * 1e6, 2
        )
    totals = [
        {"visitors": r["visitors"], "bytes": r["bytes_per_visitor"] * r["visitors"]}
        for r in report["ingestion"]
    ]
    report["bytes_per_visitor"] = round(fit_per_unit(totals, "visitors", "bytes"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
