"""Where a worker's time goes, from py-spy's raw (collapsed) stacks of a gunicorn service.

``py-spy record --subprocesses --idle --format raw`` writes one line per distinct stack:
``process <master>;process <worker>;frame;...;frame <samples>``, each frame
``function (file:line)``. Idle samples are kept on purpose: a sync worker waiting for
Redis, for its next connection or for the client to close is not on the CPU, and that
is time a request (or the next one) waits too.

Only the threads that serve requests count: a sync worker's main thread, or a gthread
worker's main thread (accepting, polling) and request threads; the master and
background threads (the model poller) are left out. A sample inside a Flask request goes
to the first ``CATEGORIES`` entry any of its frames matches, in that order: Redis before
the code that called it, the middleware before the JSON encoder it calls, and so on; one
no category claims is Flask's, recsvc's own or another library's, by the frame that was
running. A sample outside a request is the server's (accepting and parsing, sending the
answer, closing the connection) or, waiting for work (``select``, ``accept``, the thread
pool's queue), idle. Profile sync workers (one thread a worker) for per-request figures: a gthread
thread waiting for the GIL is sampled in the frame it waits in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IDLE = "idle: no request"
SERVER = "gunicorn: accept, read and parse the request"
SERVER_STEPS = (
    ("gunicorn: close, waiting for the client to close", ("close_graceful (gunicorn",)),
    ("gunicorn: send the answer", ("write (gunicorn/util.py", "Response.write (gunicorn")),
)
OTHER = "other libraries (in the request)"
FRAMEWORK = "Flask and Werkzeug"
VIEWS = "views, other recsvc code"

# (category, substrings of a frame that put a sample in it), first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Redis round trips (redis-py, waits)", ("(redis/", "(hiredis")),
    ("access log, request id", ("recsvc/web/logs.py", "(logging/", "(uuid.py")),
    ("Prometheus metrics", ("recsvc/web/metrics.py", "(prometheus_client/")),
    ("API key check", ("recsvc/web/auth.py", "(hmac.py")),
    (
        "recsvc.serving and recsvc.scoring (numpy, scipy)",
        ("recsvc/serving/", "recsvc/scoring/", "(training/", "(numpy/", "(scipy/"),
    ),
    # Before parsing: an event batch is written from inside its view, which flask-smorest's
    # response wrapper (and the batch's validation helpers) run.
    ("events, profiles, rules (recsvc.core, store)", ("recsvc/core/", "recsvc/store/")),
    (
        "parsing, validation (webargs, marshmallow)",
        (
            "(webargs/",
            "(marshmallow/",
            "(flask_smorest/arguments.py",
            "recsvc/schemas/",
            "recsvc/api/quick_parser.py",
            "recsvc/api/batches.py",
        ),
    ),
    ("JSON (json, orjson)", ("(json/", "(orjson", "(flask/json/")),
)
IN_REQUEST = "Flask.__call__"
WAITING = (
    "SyncWorker.wait",
    "socket.accept",
    "SyncWorker.accept (",
    "(selectors.py",
    "Condition.wait (threading.py",
    "Queue.get (queue.py",
    "_worker (concurrent/futures/thread.py",
)
SERVING_THREAD = ("(concurrent/futures/thread.py", "(gunicorn/")


@dataclass(frozen=True)
class Breakdown:
    """Samples of the workers' main threads by category."""

    samples: Counter
    rate: int  # samples per second per thread

    @property
    def busy(self) -> int:
        """Samples not idle: serving a request, including its waits on Redis."""
        return sum(n for name, n in self.samples.items() if name != IDLE)

    def table(self, requests: int) -> list[dict]:
        """Per category: share of the busy samples and microseconds per request (busy
        thread-seconds over the ``requests`` answered while recording)."""
        rows = []
        for name, n in self.samples.most_common():
            if name == IDLE:
                continue
            rows.append(
                {
                    "category": name,
                    "share": round(n / self.busy, 3) if self.busy else 0.0,
                    "us_per_request": round(n / self.rate / requests * 1e6, 1) if requests else 0,
                }
            )
        return rows

    def idle_share(self) -> float:
        total = self.busy + self.samples[IDLE]
        return round(self.samples[IDLE] / total, 3) if total else 0.0


def classify(frames: list[str]) -> str | None:
    """The category of one worker main-thread stack; None for stacks that do not count
    (the master, background threads)."""
    if sum(1 for f in frames if f.startswith("process ")) < 2:
        return None  # the master
    in_request = any(IN_REQUEST in f for f in frames)
    if not in_request and not any(t in f for f in frames for t in SERVING_THREAD):
        return None  # a background thread (the model poller)
    if not in_request:
        if any(w in frames[-1] for w in WAITING):
            return IDLE
        return _first_match(frames, SERVER_STEPS) or SERVER
    return _first_match(frames, CATEGORIES) or _by_leaf(frames[-1])


def _by_leaf(leaf: str) -> str:
    """A request's sample no category claims: whose code was running."""
    if "(flask/" in leaf or "(werkzeug/" in leaf:
        return FRAMEWORK
    return VIEWS if "(recsvc/" in leaf else OTHER


def _first_match(frames: list[str], categories: tuple[tuple[str, tuple[str, ...]], ...]):
    for name, needles in categories:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return None


def parse(lines: Iterable[str], rate: int) -> Breakdown:
    samples: Counter = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        category = classify(stack.split(";"))
        if category is not None:
            samples[category] += int(count)
    return Breakdown(samples, rate)


def read(path: Path, rate: int) -> Breakdown:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return parse(lines, rate)
