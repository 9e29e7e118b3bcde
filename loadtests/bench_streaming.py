"""Peak memory of building the training matrix against log size: streaming beside in-memory.

    python -m loadtests.bench_streaming [--sizes 300000,1000000,3000000] [--train]

Writes synthetic exported logs (``recsvc.eventlog`` layout, one partition per day) of each
size over the same 20,000 visitors and 2,000 items, so the matrix grows far slower than
the log; then, each in a fresh process, builds the matrix with
``training.streaming.stream_matrix`` and with ``training.loaders.load_events`` +
``training.matrix.build_matrix``, and prints each one's peak RSS (``ru_maxrss``), time and
non-zeros. The streaming build's peak should stay flat as the log grows; the in-memory
one's grows with it. With ``--train``, whole ``recsvc train`` runs as well: ``--streaming``
(``training.streamed_training``: the matrix streamed, the last 30 days held for trending
and the session model) beside the in-memory command with ``--test-days 0`` (the same
work: fit, lists, session model; no evaluation).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# A store whose matrix fills up early: the log then grows with repeat visits, the matrix
# hardly, which is when a build that holds every event pays for it.
VISITORS, ITEMS, PER_DAY = 20_000, 2_000, 200_000

PROBE = """
import json, resource, sys, time
from pathlib import Path
how, log = sys.argv[1], Path(sys.argv[2])
started = time.perf_counter()
if how == "streaming":
    from training.streaming import stream_matrix
    nonzeros = stream_matrix(log).matrix.nnz
elif how.startswith("train"):
    import tempfile
    from training.commands import train
    models = Path(tempfile.mkdtemp())
    args = ["--events", str(log), "--models-dir", str(models), "--factors", "64"]
    extra = ["--streaming"] if how == "train-streaming" else ["--test-days", "0"]
    train.main(args + extra, standalone_mode=False)
    manifest = json.loads(next(models.glob("*/manifest.json")).read_text())
    nonzeros = manifest["data"]["nonzeros"]
else:
    from training.loaders import load_events
    from training.matrix import build_matrix
    nonzeros = build_matrix(load_events(log)[0]).matrix.nnz
print(json.dumps({
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "seconds": round(time.perf_counter() - started, 1),
    "nonzeros": int(nonzeros),
}))
"""


def write_log(folder: Path, events: int, seed: int = 0, per_day: int = PER_DAY) -> int:
    """A log of ``events`` product views and carts, ``per_day`` a day; returns its size
    in bytes."""
    rng = np.random.default_rng(seed)
    size, written, day = 0, 0, 0
    start = np.datetime64("2026-01-01")
    while written < events:
        n = min(per_day, events - written)
        visitors = rng.integers(0, VISITORS, n)
        items = np.minimum(rng.zipf(1.3, n), ITEMS) - 1
        kinds = np.where(rng.random(n) < 0.9, "product_view", "add_to_cart")
        seconds = np.sort(rng.integers(0, 86_400, n))
        date = str(start + day)
        partition = folder / f"date={date}"
        partition.mkdir(parents=True)
        stamp = f"{date}T"
        lines = [
            f'{{"id":"{written + k:032x}","type":"{kinds[k]}","visitor_id":"v{visitors[k]}",'
            f'"item_id":"i{items[k]}","timestamp":"{stamp}{seconds[k] // 3600:02d}:'
            f'{seconds[k] // 60 % 60:02d}:{seconds[k] % 60:02d}.000Z"}}\n'
            for k in range(n)
        ]
        path = partition / "part-0000000000000_000000-0000000000000_000000.jsonl"
        path.write_text("".join(lines))
        size += path.stat().st_size
        written += n
        day += 1
    return size


def measure(how: str, log: Path) -> dict:
    answer = subprocess.run(
        [sys.executable, "-c", PROBE, how, str(log)], capture_output=True, text=True, check=True
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300000,1000000,3000000")
    parser.add_argument("--train", action="store_true", help="whole recsvc train runs too")
    args = parser.parse_args()
    builds = ["streaming", "in-memory"]
    builds += ["train-streaming", "train-in-memory"] if args.train else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="recsvc-streaming-") as tmp:
        for events in (int(n) for n in args.sizes.split(",")):
            log = Path(tmp) / f"log-{events}"
            started = time.perf_counter()
            # With --train the log spans 120 days: the streamed train holds the last 30.
            size = write_log(log, events, per_day=events // 120 + 1 if args.train else PER_DAY)
            took = time.perf_counter() - started
            print(f"wrote {events} events ({size / 2**20:.0f} MiB) in {took:.0f} s")
            for how in builds:
                row = {"events": events, "log_mib": round(size / 2**20), "build": how}
                row |= measure(how, log)
                rows.append(row)
                print(row)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
