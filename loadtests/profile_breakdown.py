"""Where a worker's time goes, from py-spy's raw (collapsed) stacks of a gunicorn service.

``py-spy record --subprocesses --idle --format raw`` writes one line per distinct stack:
``process <master>;process <worker>;frame;...;frame <samples>``, each frame
``function (file:line)``. Idle samples are kept on purpose: a sync worker waiting for
Redis, for its next connection or for the client to close is not on the CPU, and that
is time a request (or the next one) waits too.

Only the workers' main threads count (the master and background threads such as the
model poller are left out). Each sample goes to the first ``CATEGORIES`` entry any of
its frames matches, in that order: Redis before the code that called it, the middleware
before the JSON encoder it calls, and so on; samples outside a Flask request are the
server's (reading the request, writing the answer, closing) or, waiting in ``select``
or ``accept``, idle.
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
OTHER = "other (in the request)"

# (category, substrings of a frame that put a sample in it), first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Redis round trips (redis-py, waits)", ("(redis/", "(hiredis")),
    ("access log, request id", ("recsvc/web/logs.py", "(logging/", "(uuid.py")),
    ("Prometheus metrics", ("recsvc/web/metrics.py", "(prometheus_client/")),
    ("API key check", ("recsvc/web/auth.py", "(hmac.py")),
    (
        "scoring (recsvc.serving, search, sessions)",
        (
            "recsvc/serving/",
            "recsvc/core/search.py",
            "recsvc/core/foldin.py",
            "recsvc/core/rerank.py",
            "recsvc/core/explain.py",
            "(training/",
            "(numpy/",
            "(scipy/",
        ),
    ),
    (
        "parsing, validation (webargs, marshmallow)",
        (
            "(webargs/",
            "(marshmallow/",
            "(flask_smorest/",
            "recsvc/schemas/",
            "recsvc/api/quick_parser.py",
            "recsvc/api/batches.py",
        ),
    ),
    ("events, profiles, rules (recsvc.core, store)", ("recsvc/core/", "recsvc/store/")),
    ("JSON (json, orjson)", ("(json/", "(orjson", "(flask/json/")),
    ("Flask and Werkzeug", ("(flask/", "(werkzeug/")),
)
IN_REQUEST = "Flask.__call__"
WAITING = (
    "SyncWorker.wait",
    "socket.accept",
    "SyncWorker.accept (",
    "selectors.py",
    "PollSelector",
)


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
    if any("(threading.py" in f for f in frames):
        return None  # a background thread (model poller, banner refresh)
    if not any(IN_REQUEST in f for f in frames):
        if any(w in frames[-1] for w in WAITING):
            return IDLE
        return _first_match(frames, SERVER_STEPS) or SERVER
    return _first_match(frames, CATEGORIES) or OTHER


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
