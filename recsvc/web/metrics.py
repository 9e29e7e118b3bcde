"""Prometheus metrics: requests by endpoint and status, latency, events accepted.

Under gunicorn every worker is a process, so the metrics use prometheus-client's
multiprocess mode whenever ``PROMETHEUS_MULTIPROC_DIR`` is set (the gunicorn config sets
it); ``/metrics`` then adds up all workers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "recsvc_http_requests_total", "HTTP requests answered.", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "recsvc_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
EVENTS_ACCEPTED = Counter("recsvc_events_accepted_total", "Events accepted.", ["type"])
EVENTS_REJECTED = Counter("recsvc_events_rejected_total", "Event batches rejected.", ["reason"])
REDIS_UNAVAILABLE = Counter(
    "recsvc_redis_unavailable_total", "Requests that found Redis unreachable.", ["endpoint"]
)


def registry() -> CollectorRegistry:
    """The registry to expose: all workers' metrics in multiprocess mode, else this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    from prometheus_client import REGISTRY

    return REGISTRY


def metrics_response() -> Response:
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        # The route pattern, not the path: one series per endpoint, not per visitor id.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        return response
