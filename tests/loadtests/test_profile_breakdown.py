"""Classifying py-spy's raw stacks of a gunicorn service into where request time goes."""

from __future__ import annotations

from loadtests import profile_breakdown as pb

MASTER = 'process 1:"recsvc serve"'
WORKER = 'process 2:"recsvc serve"'
SYNC = [
    MASTER,
    WORKER,
    "Arbiter.run (gunicorn/arbiter.py:1)",
    "SyncWorker.run (gunicorn/workers/sync.py:1)",
]
REQUEST = [
    *SYNC,
    "SyncWorker.handle_request (gunicorn/workers/sync.py:1)",
    "Flask.__call__ (flask/app.py:1)",
]


def stack(*frames: str, count: int = 1) -> str:
    return ";".join(frames) + f" {count}"


def test_redis_wins_over_the_code_that_called_it():
    frames = [*REQUEST, "recommend (recsvc/serving/recommend.py:1)", "read (redis/connection.py:1)"]
    assert pb.classify(frames) == "Redis round trips (redis-py, waits)"


def test_the_middleware_wins_over_the_json_it_encodes():
    frames = [*REQUEST, "_finish (recsvc/web/logs.py:1)", "dumps (json/__init__.py:1)"]
    assert pb.classify(frames) == "access log, request id"


def test_an_event_batch_written_inside_its_view_is_the_store_s_not_parsing():
    view = [
        *REQUEST,
        "wrapper (flask_smorest/response.py:1)",
        "post_events (recsvc/api/events.py:1)",
    ]
    write = [*view, "_prepare (recsvc/store/events.py:1)"]
    assert pb.classify(write) == "events, profiles, rules (recsvc.core, store)"
    assert pb.classify([*view, "mystery (somewhere/else.py:1)"]) == pb.OTHER
    parse = [*REQUEST, "wrapper (flask_smorest/arguments.py:1)", "parse (webargs/core.py:1)"]
    assert pb.classify(parse).startswith("parsing")


def test_scoring_parsing_and_the_framework():
    search = [*REQUEST, "search (recsvc/scoring/index.py:1)"]
    assert pb.classify(search).startswith("recsvc.serving and recsvc.scoring")
    assert pb.classify([*REQUEST, "load (marshmallow/schema.py:1)"]).startswith("parsing")
    assert pb.classify([*REQUEST, "dispatch (werkzeug/routing/map.py:1)"]) == "Flask and Werkzeug"
    assert pb.classify([*REQUEST, "mystery (somewhere/else.py:1)"]) == pb.OTHER


def test_outside_a_request_the_server_or_idle():
    assert pb.classify([*SYNC, "SyncWorker.wait (gunicorn/workers/sync.py:35)"]) == pb.IDLE
    close = [*SYNC, "close_graceful (gunicorn/util.py:312)"]
    assert pb.classify(close) == "gunicorn: close, waiting for the client to close"
    send = [*SYNC, "Response.write (gunicorn/http/wsgi.py:1)", "write (gunicorn/util.py:348)"]
    assert pb.classify(send) == "gunicorn: send the answer"
    parse = [*SYNC, "Request.parse (gunicorn/http/message.py:1)"]
    assert pb.classify(parse) == pb.SERVER


def test_the_master_and_background_threads_do_not_count():
    assert pb.classify([MASTER, "Arbiter.sleep (gunicorn/arbiter.py:1)"]) is None
    poller = [MASTER, WORKER, "_bootstrap (threading.py:1)", "_poll (recsvc/serving/holder.py:1)"]
    assert pb.classify(poller) is None


def test_gthread_request_threads_count_and_wait_idle():
    pool = [
        MASTER,
        WORKER,
        "_bootstrap (threading.py:1)",
        "_worker (concurrent/futures/thread.py:1)",
    ]
    assert pb.classify([*pool, "Queue.get (queue.py:1)"]) == pb.IDLE
    served = [
        *pool,
        "ThreadWorker.handle (gunicorn/workers/gthread.py:1)",
        "Flask.__call__ (flask/app.py:1)",
    ]
    assert pb.classify([*served, "labels (prometheus_client/metrics.py:1)"]) == "Prometheus metrics"


def test_parse_counts_and_table():
    lines = [
        stack(*REQUEST, "read (redis/connection.py:1)", count=30),
        stack(*REQUEST, "search (recsvc/scoring/index.py:1)", count=10),
        stack(*SYNC, "SyncWorker.wait (gunicorn/workers/sync.py:35)", count=60),
        stack(MASTER, "Arbiter.sleep (gunicorn/arbiter.py:1)", count=500),
        "garbage",
    ]
    breakdown = pb.parse(lines, rate=100)
    assert breakdown.busy == 40 and breakdown.idle_share() == 0.6
    table = breakdown.table(requests=100)
    assert table[0]["category"].startswith("Redis")
    assert table[0]["share"] == 0.75
    assert table[0]["us_per_request"] == 3000.0  # 30 samples at 100/s over 100 requests
