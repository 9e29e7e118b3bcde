"""What each piece of per-request middleware costs, in CPU per request, in one process.

    python -m loadtests.bench_middleware [--requests 1000] [--runs 15]

The wrk comparison (``python -m loadtests.bench_variants --middleware``) measures the
pieces under gunicorn, where a shared machine moves req/s by more than the pieces cost.
This one calls each variant of ``loadtests.app_variants`` as a WSGI app in this process,
``--requests`` times per run on the no-op (``GET /healthz``: request id, access log,
metrics; no key check on operations endpoints) and on ``GET /v1/items/<id>/similar``
with an API key (the key check too; no model is published, so the answer is the empty
list, the endpoint's cheapest path), the variants interleaved run by run, and prints the
best (least disturbed) CPU microseconds per request of the runs (``time.process_time``:
other processes' load counts only through the caches and cores they share) and each
piece's cost as the difference from the shipped app. Logs go to a
temporary file at INFO, as the service's stderr would; metrics to multiprocess files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

VARIANTS = ("shipped", "no-access-log", "no-request-id", "no-metrics", "no-auth", "bare")
ENDPOINTS = {"noop": "/healthz", "similar": "/v1/items/i1/similar?n=10"}


def cpu_us_per_request(app, path: str, headers: dict[str, str], requests: int) -> float:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, headers=headers).get_environ()

    def start_response(status, response_headers, exc_info=None):
        return None

    started = time.process_time()
    for _ in range(requests):
        for _chunk in app(dict(environ), start_response):
            pass
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="recsvc-mw-"))
    from loadtests.app_variants import apply_logging, create
    from loadtests.server import KEYS
    from recsvc.redis_client import connect
    from recsvc.settings import Settings
    from recsvc.store.namespace import delete_namespace
    from recsvc.web.logs import JsonFormatter

    log_path = Path(tempfile.mkdtemp(prefix="recsvc-mw-")) / "service.log"
    handler = logging.StreamHandler(log_path.open("w"))  # open until the process exits
    handler.setFormatter(JsonFormatter())
    settings = Settings.from_env(
        namespace=f"benchmw{uuid.uuid4().hex[:6]}",
        log_level="INFO",
        public_keys=(KEYS["public"],),
        admin_keys=(KEYS["admin"],),
    )
    if not settings.redis_url:
        raise SystemExit("set REDIS_URL")
    apps = {v: create(v, settings) for v in VARIANTS}
    root = logging.getLogger()
    root.handlers = [handler]  # the service's stderr, as a file
    headers = {"X-API-Key": KEYS["public"]}
    figures: dict[str, dict[str, list[float]]] = {e: {v: [] for v in VARIANTS} for e in ENDPOINTS}
    try:
        for variant, app in apps.items():  # warm: first requests build caches
            apply_logging(variant)
            for path in ENDPOINTS.values():
                cpu_us_per_request(app, path, headers, 200)
        for _ in range(args.runs):
            for endpoint, path in ENDPOINTS.items():
                for variant, app in apps.items():
                    apply_logging(variant)
                    figures[endpoint][variant].append(
                        cpu_us_per_request(app, path, headers, args.requests)
                    )
    finally:
        delete_namespace(connect(settings.redis_url), settings.namespace)
    report = {}
    for endpoint, by_variant in figures.items():
        medians = {v: min(values) for v, values in by_variant.items()}
        shipped = medians["shipped"]
        print(f"{endpoint} ({ENDPOINTS[endpoint]}): CPU us per request, best of {args.runs}")
        for variant, value in medians.items():
            saved = shipped - value
            print(
                f"  {variant:<16}{value:8.1f}   saves {saved:6.1f} us ({saved / shipped:5.1%})"
                f"   runs {', '.join(f'{x:.0f}' for x in by_variant[variant])}"
            )
        report[endpoint] = {v: round(m, 1) for v, m in medians.items()}
    print(json.dumps({"args": vars(args), "cpu_us_per_request": report}))


if __name__ == "__main__":
    main()
