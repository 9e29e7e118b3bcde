"""The event writer's cost per event: this checkout beside another one, same run.

    git worktree add /tmp/recsvc-before 5870335      # the code to compare with
    python -m loadtests.drills.writer_cost --other /tmp/recsvc-before [--rounds 2]

Each measurement is a fresh process that imports ``recsvc`` from one checkout, starts a
``redis-server`` of its own (or, with ``--cluster``, a 3-master cluster; Redis figures are
then not read), and writes 40 batches of 100 of bench_ingest's events (100 visitors per
batch) with ``EventWriter.write``, one writer. Printed per checkout and round: wall and
client CPU per batch, events/s of the one writer, and Redis commands (the scripts'
included) and Redis CPU per event. The two checkouts alternate, ``--rounds`` times, so the
machine's load falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

PROBE = """
import json, random, sys, tempfile, time, uuid
from datetime import UTC, datetime
from pathlib import Path
tree, helpers, mode = sys.argv[1:4]
sys.path[:0] = [tree]
import recsvc
assert recsvc.__file__.startswith(tree), recsvc.__file__
from recsvc.core.events import format_timestamp, new_event_id
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.events import EventWriter
sys.path.insert(0, helpers)
from loadtests.drills._cluster import start_cluster, start_server  # imports no recsvc

TYPES = ["page_view", "product_view", "product_view", "product_view", "search", "add_to_cart"]
SOURCES = ["google_ads", "facebook_ads", "organic_search", "email", "social", "direct", "referral"]

def event(rng):  # loadtests.bench_ingest.event (that module imports this checkout's recsvc)
    kind = rng.choice(TYPES)
    body = {"type": kind, "visitor_id": f"v{rng.randrange(100_000)}"}
    if kind in {"product_view", "add_to_cart"}:
        body["item_id"] = f"i{rng.randrange(100_000)}"
    if kind == "page_view":
        body["source"] = rng.choice(SOURCES)
    if kind == "search":
        body["properties"] = {"query": "red shoes"}
    return body

rng = random.Random(1)
now = format_timestamp(datetime.now(UTC))
batches = [[{**event(rng), "id": new_event_id(), "timestamp": now} for _ in range(100)]
           for _ in range(41)]
folder = Path(tempfile.mkdtemp(prefix="recsvc-writer-cost-"))
server = start_cluster(folder) if mode == "cluster" else start_server(folder / "s")
url = server.url if mode == "cluster" else f"redis://{server.address}"
settings = Settings(redis_url=url, namespace="w" + uuid.uuid4().hex[:6])
writer = EventWriter(connect(url, settings), KeySpace(settings.namespace), settings)
probe = None if mode == "cluster" else connect(url)

def redis_figures():
    if probe is None:
        return 0, 0.0
    cpu = probe.info("cpu")
    busy = cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    return probe.info("stats")["total_commands_processed"], busy

writer.write(batches[0])
commands, cpu = redis_figures()
started, client = time.perf_counter(), time.process_time()
for batch in batches[1:]:
    writer.write(batch)
wall, client = time.perf_counter() - started, time.process_time() - client
commands_after, cpu_after = redis_figures()
server.stop()
events = 100 * (len(batches) - 1)
print(json.dumps({
    "wall_ms_per_batch": round(wall / 40 * 1000, 1),
    "client_cpu_ms_per_batch": round(client / 40 * 1000, 1),
    "events_per_s": round(events / wall),
    "redis_commands_per_event": round((commands_after - commands) / events, 2) if probe else None,
    "redis_cpu_us_per_event": round((cpu_after - cpu) / events * 1e6, 1) if probe else None,
}))
"""


def measure(tree: Path, mode: str) -> dict:
    answer = subprocess.run(
        [sys.executable, "-c", PROBE, str(tree), str(HERE), mode],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="another checkout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cluster", action="store_true", help="on a 3-master cluster")
    args = parser.parse_args()
    mode = "cluster" if args.cluster else "single"
    results = []
    for round_ in range(args.rounds):
        for name, tree in (("other", args.other.resolve()), ("this", HERE)):
            figures = {"round": round_, "checkout": name, "mode": mode, **measure(tree, mode)}
            results.append(figures)
            print(figures)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
