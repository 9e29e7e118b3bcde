"""Drill: Redis Sentinel failover under load.

    python -m loadtests.drills.sentinel_failover [--load-seconds 4] [--wait-replicas 1]

Starts, on free loopback ports, its own Redis master (``min-replicas-to-write 1``), one
replica, one sentinel (quorum 1, master down after 1 s), and ``recsvc serve`` on
``redis+sentinel://`` with ``RECSVC_REDIS_WAIT_REPLICAS``; publishes a small model; sends
events and recommendation reads; SIGKILLs the master; keeps the traffic going through the
promotion of the replica; restarts the old master (Sentinel makes it a replica of the new
one); then checks:

- reads: every recommendation read answered 2xx, before, during and after (served from
  memory while there is no master);
- ingestion: 202 before the kill, 503 while there is no master, 202 again after the
  promotion (the gap is measured);
- loss: every event answered 202 is in the stream after the failover (the relay's sweep
  run first, as the exporter would); otherwise the loss is counted and set beside the
  WAIT setting that bounds it.

Prints one JSON report and exits 0 when the verdict is PASS. Bounded: the whole drill takes
about 30 s, and at most ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from loadtests.drills._cluster import (
    publish_small_model,
    restart,
    start_sentinel,
    start_service,
)
from loadtests.drills._traffic import Traffic, summary
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.outbox import Relay
from recsvc.store.stream import read_records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=4.0, help="before the kill")
    parser.add_argument("--after-seconds", type=float, default=4.0, help="after recovery")
    parser.add_argument("--wait-replicas", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="recsvc-sentinel-"))
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    setup = start_sentinel(
        folder, {"min-replicas-to-write": "1", "min-replicas-max-lag": "2"}, down_after_ms=1000
    )
    service = None
    try:
        publish_small_model(setup.url, namespace, "m1")
        service = start_service(
            setup.url,
            namespace,
            folder / "service.log",
            workers=2,
            RECSVC_REDIS_WAIT_REPLICAS=str(args.wait_replicas),
        )
        report = drill(setup, service, namespace, args, started)
    finally:
        if service is not None:
            service.stop()
        setup.stop()
    report["folder"] = str(folder)
    print(json.dumps(report, indent=2))
    return 0 if report["verdict"] == "PASS" else 1


def drill(setup, service, namespace: str, args, started: float) -> dict:
    traffic = Traffic(service.base, writers=2, readers=2, max_seconds=args.max_seconds).start()
    time.sleep(args.load_seconds)
    old_port = setup.master.port
    killed_at = time.monotonic()
    setup.master.kill()
    promoted_at = None
    while time.monotonic() - started < args.max_seconds - args.after_seconds:
        port = setup.master_port()
        if port and port != old_port:
            promoted_at = time.monotonic()
            break
        time.sleep(0.05)
    # The old master comes back; Sentinel turns it into the new master's replica.
    setup.master = restart(setup.master, "--appendonly", "yes")
    time.sleep(args.after_seconds)
    answers = traffic.stop()

    events = [a for a in answers if a.kind == "event"]
    reads = [a for a in answers if a.kind == "read"]
    before = [a for a in events if a.done < killed_at]
    gap = [a for a in events if a.sent >= killed_at and not a.ok]
    back = next((a for a in events if a.sent > killed_at and a.ok), None)
    accepted = {i for a in events if a.ok for i in a.ids}
    accepted_before = {i for a in before if a.ok for i in a.ids}

    settings = Settings(redis_url=setup.url, namespace=namespace)
    client = connect(setup.url, settings)
    Relay(client, KeySpace(namespace), settings).sweep(older_than=0)
    stored = {r["id"] for r in read_records(client, KeySpace(namespace), settings.stream_shards)}
    lost_before = sorted(accepted_before - stored)
    lost_any = sorted(accepted - stored)
    read_failures = [a for a in reads if not a.ok]
    report = {
        "wait_replicas": args.wait_replicas,
        "min_replicas_to_write": 1,
        "promotion_seconds": round(promoted_at - killed_at, 2) if promoted_at else None,
        "ingestion_gap_seconds": round(back.sent - killed_at, 2) if back else None,
        "events": summary(answers, "event"),
        "reads": summary(answers, "read"),
        "read_failures": len(read_failures),
        "events_accepted": len(accepted),
        "events_accepted_before_kill": len(accepted_before),
        "lost_accepted_before_kill": len(lost_before),
        "lost_accepted_any_time": len(lost_any),
        "statuses_during_gap": sorted({a.status for a in gap}),
    }
    checks = {
        "promoted": promoted_at is not None,
        "reads_kept_answering": not read_failures and len(reads) > 0,
        "ingestion_accepted_before": any(a.ok for a in before),
        "ingestion_503_without_master": bool(gap) and {a.status for a in gap} <= {503},
        "ingestion_202_after_promotion": back is not None,
        "nothing_accepted_lost": not lost_any,
    }
    report["checks"] = checks
    report["verdict"] = "PASS" if all(checks.values()) else "FAIL"
    return report


if __name__ == "__main__":
    sys.exit(main())
