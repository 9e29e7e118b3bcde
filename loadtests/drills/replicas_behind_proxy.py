"""Drill: two service instances behind HAProxy, one Redis; a model switch; one instance
killed under load.

    python -m loadtests.drills.replicas_behind_proxy [--load-seconds 4] [--workers 2]

Starts, on free loopback ports, its own ``redis-server``, two ``recsvc serve`` instances on
it and HAProxy in front (``loadtests/drills/haproxy.cfg``); publishes model ``m1``. Then:

1. **Model switch.** Makes ``m2`` current and asks each instance directly, over fresh
   connections (so every worker answers in turn), until 20 answers in a row name ``m2``;
   the slower instance's time is the figure (target: within 1 s).
2. **Instance killed under load.** Sends events and recommendation reads through the proxy,
   SIGKILLs one instance's whole process group (master and workers) mid-load, goes on for
   a few seconds. A failed request (no HTTP answer, or 5xx) counts as *in flight* when it
   was sent before the kill and answered after it; any other failure fails the drill.
   Every event answered 202 must be in the stream.

Prints one JSON report; exits 0 when the verdict is PASS. Bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from loadtests.drills._cluster import (
    free_port,
    publish_small_model,
    start_server,
    start_service,
)
from loadtests.drills._traffic import Traffic, summary
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.models import ModelStore
from recsvc.store.outbox import Relay
from recsvc.store.stream import read_records

CONFIG = Path(__file__).with_name("haproxy.cfg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=4.0)
    parser.add_argument("--after-seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="recsvc-proxy-"))
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    redis_server = start_server(folder / "redis", "--appendonly", "yes")
    url = f"redis://{redis_server.address}"
    services, proxy = [], None
    try:
        publish_small_model(url, namespace, "m1")
        for name in ("a", "b"):
            services.append(
                start_service(url, namespace, folder / f"{name}.log", workers=args.workers)
            )
        proxy_port = free_port()
        proxy = start_proxy(folder, proxy_port, services[0].port, services[1].port)
        switch = model_switch(url, namespace, services)
        killed = kill_under_load(url, namespace, services, proxy_port, args)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for service in services:
            service.stop()
        redis_server.stop()
    report = {"model_switch": switch, "instance_killed": killed, "folder": str(folder)}
    checks = {
        "switch_seen_by_both_within_1s": switch["slowest_seconds"] <= 1.0,
        "no_failures_beyond_in_flight": killed["failed_not_in_flight"] == 0,
        "nothing_accepted_lost": killed["lost"] == 0,
        "survivor_kept_answering": killed["answered_after_kill"] > 0,
    }
    report["checks"] = checks
    report["verdict"] = "PASS" if all(checks.values()) else "FAIL"
    print(json.dumps(report, indent=2))
    return 0 if report["verdict"] == "PASS" else 1


def start_proxy(folder: Path, proxy_port: int, port_a: int, port_b: int) -> subprocess.Popen:
    """HAProxy with the committed config, its ports filled in; returns once it answers."""
    config = folder / "haproxy.cfg"
    config.write_text(
        CONFIG.read_text().format(proxy_port=proxy_port, port_a=port_a, port_b=port_b)
    )
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    log = (folder / "haproxy.log").open("wb")
    proxy = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if status(proxy_port, "/healthz") == 200:
            return proxy
        time.sleep(0.1)
    proxy.kill()
    raise RuntimeError(f"haproxy did not answer; see {folder}/haproxy.log")


def status(port: int, path: str) -> int:
    return answer(port, path)[0]


def answer(port: int, path: str) -> tuple[int, dict]:
    """One GET over a fresh connection: (status, JSON body); (0, {}) when none."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith(b"{") else {}
    except (OSError, http.client.HTTPException, ValueError):
        return 0, {}
    finally:
        connection.close()


def model_switch(url: str, namespace: str, services: list, in_a_row: int = 20) -> dict:
    """Make ``m2`` current; seconds until each instance answers with it ``in_a_row``
    times running (fresh connections, so its workers take turns)."""
    publish_small_model(url, namespace, "m2")  # published and made current at once
    switched = time.monotonic()
    seconds = []
    for service in services:
        streak, n = 0, 0
        while streak < in_a_row and time.monotonic() - switched < 30:
            n += 1
            _, body = answer(service.port, f"/v1/visitors/s{n}/recommendations?n=5")
            streak = streak + 1 if body.get("model_version") == "m2" else 0
        seen = time.monotonic() - switched
        seconds.append(round(seen, 3) if streak >= in_a_row else None)
    current = ModelStore(connect(url), KeySpace(namespace)).current_version()
    slowest = max((s if s is not None else float("inf")) for s in seconds)
    return {"current": current, "seconds_per_instance": seconds, "slowest_seconds": slowest}


def kill_under_load(url: str, namespace: str, services: list, proxy_port: int, args) -> dict:
    traffic = Traffic(
        f"http://127.0.0.1:{proxy_port}", writers=2, readers=2, max_seconds=args.max_seconds
    ).start()
    time.sleep(args.load_seconds)
    killed_at = time.monotonic()
    services[0].stop(kill=True)
    # In flight: sent before every process of the instance was gone (a request can sit in
    # the dying instance's accept queue), answered after the kill began.
    gone_at = time.monotonic()
    time.sleep(args.after_seconds)
    answers = traffic.stop()
    failed = [a for a in answers if not a.ok]

    def in_flight_at_kill(a) -> bool:
        return a.sent < gone_at and a.done >= killed_at

    in_flight = [a for a in failed if in_flight_at_kill(a)]
    others = [a for a in failed if not in_flight_at_kill(a)]
    accepted = {i for a in answers if a.kind == "event" and a.ok for i in a.ids}
    settings = Settings(redis_url=url, namespace=namespace)
    client = connect(url, settings)
    Relay(client, KeySpace(namespace), settings).sweep(older_than=0)
    stored = {r["id"] for r in read_records(client, KeySpace(namespace), settings.stream_shards)}
    return {
        "events": summary(answers, "event"),
        "reads": summary(answers, "read"),
        "failed": len(failed),
        "failed_in_flight": len(in_flight),
        "failed_not_in_flight": len(others),
        "failed_not_in_flight_detail": [
            {
                "kind": a.kind,
                "status": a.status,
                "error": a.error,
                "sent_after_kill_s": round(a.sent - killed_at, 3),
                "answered_after_kill_s": round(a.done - killed_at, 3),
            }
            for a in others
        ],
        "kill_took_seconds": round(gone_at - killed_at, 3),
        "answered_after_kill": sum(1 for a in answers if a.sent > gone_at and a.ok),
        "events_accepted": len(accepted),
        "lost": len(accepted - stored),
    }


if __name__ == "__main__":
    sys.exit(main())
