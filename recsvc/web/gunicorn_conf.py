"""gunicorn settings for recsvc (``gunicorn -c python:recsvc.web.gunicorn_conf``).

Each default is here with its reason; ``RECSVC_BIND``, ``RECSVC_WORKERS``,
``RECSVC_THREADS`` and ``RECSVC_TIMEOUT`` override them.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile

# Prometheus' multiprocess mode must know its folder before prometheus_client is imported
# by the app (preload imports it in the master, right after this file).
# One BLAS thread per process: the workers are the parallelism. A multi-threaded BLAS in
# every worker oversubscribes the cores; a 20k-item scoring took 8 ms instead of 0.3 ms on
# the 2-core machine under load. Set before the app (and numpy) is imported, and again
# after each fork (post_fork) in case something imported numpy first.
for _blas_threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")

# Every request logs a JSON access line (recsvc.web.logs), and no line shows its caller's
# file and line or a process name: skip looking them up for each record (the logging
# HOWTO's "Optimization"). Process and thread ids stay: gunicorn's own lines print the pid.
logging._srcfile = None
logging.logMultiprocessing = False

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="recsvc-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]

wsgi_app = "recsvc.web.app:create_app()"
bind = os.environ.get("RECSVC_BIND", "127.0.0.1:8000")
# One sync worker per core: each worker serves one request at a time, the cores are the
# parallelism, and every request is a new connection that the kernel hands to whichever
# worker is free. Measured side by side with wrk on 2 cores, quiet machine (python -m
# loadtests.bench_variants --variants 2x1,2x4 --runs 3; loadtests/README.md): gthread with
# 4 threads answered 1.00-1.11x the sync workers' requests a second at 1.02-1.09x their
# CPU per request, with 1.8-2.8x their p99; and in 4 of 15 phases it collapsed to
# 0.38-0.43x: its kept-alive connections had all landed on one worker while the other
# idled (the service used 1.1 of 2 cores). A slow client holds a sync worker for as long
# as it is slow, so sync workers must not face clients: the deployment puts nginx in
# front, which reads each request whole and buffers each answer (loadtests/drills/
# nginx.conf, exercised by the slow_clients drill). RECSVC_THREADS > 1 selects the
# gthread worker; RECSVC_WORKERS sets the count. One more sync worker than cores fills
# the Redis waits: 3 on 2 cores took about 1.3x the events a second of 2 (loadtests/
# bench_ingest: 15,424 in one run against 11,268-12,852), and in bench_variants' same
# runs 1.05-1.11x the known-visitor and popular reads but 0.94x the cart add-ons (more
# CPU a request), for one more worker's memory.
workers = int(os.environ.get("RECSVC_WORKERS", os.cpu_count() or 1))
threads = int(os.environ.get("RECSVC_THREADS", 1))
# Load the app once in the master and fork: faster start, shared read-only memory.
preload_app = True
# Recycle workers now and then so a slow leak cannot grow forever; jitter keeps them from
# restarting all at once (warehouse does the same).
# Not too often, though: a worker answers about 1,000 requests a second, and each recycle
# is a fork (20,000 recycled each worker every 20 s here, two or four times inside each
# measured phase of loadtests/bench_serving.py). Not too seldom either: a long-lived
# worker slowly copies pages it shares with the master (cart add-ons over random carts
# took a worker from 250 to 430 MiB PSS in 40,000 requests); a fresh fork shares them
# again. GUNICORN_CMD_ARGS="--max-requests N" overrides it.
max_requests = 200_000
max_requests_jitter = 20_000
# A request that takes 30 s is stuck: kill the worker. SIGTERM lets requests finish.
timeout = int(os.environ.get("RECSVC_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# The app writes its own JSON access log with the request id; gunicorn's would repeat it.
accesslog = None
errorlog = "-"


def pre_fork(server, worker) -> None:
    """In the master, before each worker is forked: bring the held model, banners and
    catalog categories up to date, so the worker starts serving them at once (recycled
    workers included) instead of each reading the whole catalog again."""
    services = server.app.wsgi().extensions["recsvc"]
    services.holder.preload()
    services.banner_service.preload()
    # What the master holds now (the model's id maps, tiles, banners) is never freed: out
    # of the collector's sight, a worker's collections do not write to those objects'
    # pages, which would copy them into the worker (Python's gc.freeze, for pre-fork
    # servers).
    gc.freeze()


def post_fork(server, worker) -> None:
    from threadpoolctl import threadpool_limits

    from recsvc.web import connection_close, protocol_errors

    threadpool_limits(limits=1, user_api="blas")
    # A finished connection is closed at once, not after the client closes its side.
    connection_close.install()
    # gunicorn's own 400/414/431 answers in the API's JSON error shape, not HTML.
    protocol_errors.install()


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _metrics_dir.startswith(tempfile.gettempdir()) and "recsvc-metrics-" in _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
