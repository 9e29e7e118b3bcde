"""Drill: the event-log exporter SIGKILLed again and again under ingestion load.

    python -m loadtests.drills.exporter_kill [--duration 30] [--kill-every 0.5-2.5]
        [--batch-size 500] [--rate 100]

Starts its own Redis and the service on it, sends event batches (``--rate`` batches of
20 a second at most, admin key) for ``--duration`` seconds, and runs ``recsvc
export-events --out DIR`` beside it, SIGKILLing it at random moments (every 0.5-2.5 s)
and starting it again at once, as a crash-looping deployment would. After the load it
drains the stream with ``export-events --once``.

Verdict: every event id answered 202 is in the log files exactly once; nothing is under
``_rejected``; the exporter's consumer group has nothing pending. Figures: kills, events,
files, how far the log lagged behind the stream.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson

from loadtests.drills import support
from loadtests.server import running_service
from recsvc.eventlog.reader import log_files
from recsvc.keys import EXPORTER_GROUP, KeySpace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--kill-every", default="0.5-2.5", help="seconds, a range")
    parser.add_argument("--batch-size", type=int, default=500, help="the exporter's")
    parser.add_argument("--rate", type=float, default=100, help="event batches a second")
    parser.add_argument("--workers", type=int, default=2)
    raise SystemExit(run(parser.parse_args()).report())


def exporter(redis_url: str, namespace: str, out: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url, "RECSVC_NAMESPACE": namespace}
    command = [sys.executable, "-m", "recsvc.cli", "export-events", "--out", str(out)]
    return subprocess.Popen(
        [*command, *options], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def ids_in_logs(out: Path) -> Counter:
    ids: Counter = Counter()
    for path in log_files(out):
        for line in path.read_bytes().splitlines():
            if line.strip():
                ids[orjson.loads(line)["id"]] += 1
    return ids


def run(args: argparse.Namespace) -> support.Verdict:
    verdict = support.Verdict("exporter_kill")
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    out = Path(tempfile.mkdtemp(prefix="recsvc-drill-log-"))
    low, _, high = args.kill_every.partition("-")
    rng = random.Random(11)
    kills = 0
    with (
        support.time_limit(args.duration + 240, "exporter_kill"),
        support.own_redis() as redis_server,
    ):
        store = support.DrillStore("", 1000, 1000, [])
        options = ("--batch-size", str(args.batch_size), "--max-wait", "0.2")
        with running_service(redis_server.url, namespace=namespace, workers=args.workers) as svc:
            traffic = support.Traffic(svc.port).add(
                "events", support.event_batches(store, size=20), 2, 2 / args.rate
            )
            with traffic:
                while traffic.now() < args.duration:
                    process = exporter(redis_server.url, namespace, out, *options)
                    time.sleep(rng.uniform(float(low), float(high or low)))
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
        client = redis_server.client()
        keys = KeySpace(namespace)
        lag = client.xlen(keys.events_stream())
        drained = exporter(redis_server.url, namespace, out, "--once", *options)
        drained.wait(timeout=120)
        pending = int(client.xpending(keys.events_stream(), EXPORTER_GROUP)["pending"])
    accepted = support.accepted_ids(traffic.of("events"))
    logged = ids_in_logs(out)
    missing = [i for i in accepted if logged[i] == 0]
    repeated = [i for i, n in logged.items() if n > 1]
    verdict.check(
        "every event answered 202 is in the log files exactly once",
        not missing and not repeated,
        f"{len(accepted)} accepted; {len(missing)} missing, {len(repeated)} more than once",
    )
    verdict.check("the final export succeeded", drained.returncode == 0, str(drained.returncode))
    rejected = list((out / "_rejected").glob("*")) if (out / "_rejected").exists() else []
    verdict.check("nothing rejected", not rejected, f"{len(rejected)} files under _rejected")
    verdict.check("nothing pending in the consumer group", pending == 0, str(pending))
    verdict.figures.update(
        {
            "exporter SIGKILLs": kills,
            "events accepted": len(accepted),
            "events in the logs": sum(logged.values()),
            "logged but not answered 202 (sent in flight, or refused after the write)": len(
                set(logged) - set(accepted)
            ),
            "log files": len(log_files(out)),
            "stream left for the final export": lag,
            "event batches": support.latency_figures(traffic.of("events")),
            "refused batches": sum(1 for a in traffic.of("events") if a.status != 202),
        }
    )
    shutil.rmtree(out, ignore_errors=True)
    return verdict


if __name__ == "__main__":
    main()
