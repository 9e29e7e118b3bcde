"""Prometheus metrics: requests by endpoint and status, latency, events accepted.

Every label takes its values from a closed set (route patterns, known methods, event
types, status codes the app answers), so no caller can create series.

Under gunicorn every worker is a process, so the metrics use prometheus-client's
multiprocess mode whenever ``PROMETHEUS_MULTIPROC_DIR`` is set (the gunicorn config sets
it); ``/metrics`` then adds up all workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import redis
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from recsvc.eventlog.exporter import exporter_lag
from recsvc.keys import KeySpace
from recsvc.redis_client import UNAVAILABLE_ERRORS

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
RATE_LIMITED = Counter("recsvc_rate_limited_total", "Requests refused by a rate limit (429).")
RATE_LIMITER_UNAVAILABLE = Counter(
    "recsvc_rate_limiter_unavailable_total", "Requests let through: Redis could not be asked."
)
# The method label takes these values and "other": every new method string a caller
# invents would otherwise be a new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


class ExporterLagCollector(Collector):
    """Read at scrape time from Redis: how far the event-log exporter is behind. Yields
    nothing when Redis is unreachable (the scrape itself still succeeds)."""

    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lag = exporter_lag(self.client, self.keys)
        except UNAVAILABLE_ERRORS:
            return
        for name, key, text in (
            ("recsvc_event_stream_length", "stream_length", "Events in the stream, unexported."),
            ("recsvc_event_stream_pending", "pending", "Events read by the exporter, not acked."),
            (
                "recsvc_event_stream_oldest_unexported_age_seconds",
                "oldest_unexported_age_seconds",
                "Age of the oldest event not yet in the log files.",
            ),
        ):
            yield GaugeMetricFamily(name, text, value=float(lag[key]))


def metrics_response(client: redis.Redis, keys: KeySpace) -> Response:
    """Every worker's metrics (multiprocess mode) or this process's, plus exporter lag."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (
            REQUESTS,
            LATENCY,
            EVENTS_ACCEPTED,
            EVENTS_REJECTED,
            REDIS_UNAVAILABLE,
            RATE_LIMITED,
            RATE_LIMITER_UNAVAILABLE,
        ):
            registry.register(collector)
    registry.register(ExporterLagCollector(client, keys))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        # Labels from closed sets: the route pattern, not the path (one series per
        # endpoint, not per visitor id); a known method or "other".
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        return response
