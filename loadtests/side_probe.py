"""A lone client beside a load test: what one more shopper's calls take, measured apart.

    python -m loadtests.side_probe [--host http://127.0.0.1:8000] [--duration 50]
        [--api-key KEY]

Every 0.05-0.2 s a new visitor sends a page view, then asks for its recommendations and
its nudges, each over a new connection (``http.client``, nothing shared with the load
generator's process). Run it beside ``locust`` (loadtests/README.md, "The storefront
load test"): where locust's p99 is far above this client's on the same endpoints at the
same time, the difference is in what the generator does: its own queueing, or bursts of
its own that this client does not meet (locust's ramp started every second's users in
one instant). Prints p50, p95, p98, p99 and max in milliseconds per call, and how many
took over 20 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import time
import uuid
from urllib.parse import urlsplit

SLOW_MS = 20.0


def timed_call(
    host: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[float, int]:
    """Milliseconds from connecting to the last byte of the answer, and its status."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000.0, answer.status


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50, p95, p98, p99 (nearest rank), max, and the count over ``SLOW_MS``."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return {"calls": 0}

    def rank(q: float) -> float:
        return ordered[round(q * (len(ordered) - 1))]

    return {
        "calls": len(ordered),
        **{f"p{round(q * 100)}": rank(q) for q in (0.5, 0.95, 0.98, 0.99)},
        "max": ordered[-1],
        f"over_{SLOW_MS:g}_ms": sum(x > SLOW_MS for x in ordered),
    }


def probe(base_url: str, duration: float, api_key: str) -> dict[str, dict[str, float]]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    latencies: dict[str, list[float]] = {"events": [], "recommendations": [], "nudges": []}
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        time.sleep(random.uniform(0.05, 0.2))
        visitor = f"probe-{uuid.uuid4().hex[:16]}"
        body = json.dumps({"events": [{"type": "page_view", "visitor_id": visitor}]})
        calls = {
            "events": ("POST", "/v1/events", body.encode()),
            "recommendations": ("GET", f"/v1/visitors/{visitor}/recommendations?n=10", b""),
            "nudges": ("GET", f"/v1/visitors/{visitor}/nudges", b""),
        }
        for name, (method, path, data) in calls.items():
            ms, status = timed_call(host, port, method, path, headers, data)
            latencies[name].append(ms)
            statuses[status] = statuses.get(status, 0) + 1
    report = {name: summary(values) for name, values in latencies.items()}
    report["statuses"] = statuses
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=float, default=50.0)
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    report = probe(args.host, args.duration, args.api_key)
    for name, figures in report.items():
        if name == "statuses":
            print(f"statuses: {figures}")
            continue
        shown = "  ".join(
            f"{key} {value:.1f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in figures.items()
        )
        print(f"{name:16s} {shown}")


if __name__ == "__main__":
    main()
