"""JSON structured logs, one object per line, each request's lines carrying its request id.

The request id is the caller's ``X-Request-ID`` when it sends a sane one, otherwise a new
one; it is echoed back in the response header so a storefront can quote it.

Both run on every request, so both are kept cheap (loadtests/README.md, "What the
middleware costs"): lines are encoded with orjson and the timestamp's seconds are
formatted once per second; a new request id is a random per-process prefix and a
counter rather than a uuid4 (a getrandom call per request).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, g, has_request_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Attributes every LogRecord has; anything else was passed in ``extra`` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
access_log = logging.getLogger("recsvc.access")


class _RequestIds:
    """Request ids unique across processes and restarts, not secret: 16 random hex digits
    drawn once per process (again after a fork) and a 16-hex-digit counter."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds().new


class _Timestamps:
    """``created`` -> ISO 8601 in UTC with milliseconds (``2026-03-10T12:00:00.123+00:00``),
    the seconds part formatted once per second (a log line per request asked datetime for
    it each time)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._text}.{int((created - second) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._timestamp = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except (orjson.JSONEncodeError, TypeError):  # e.g. an int beyond 64 bits
            return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON (idempotent). Handlers already on the
    root logger (a test's log capture, say) are left in place."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())


def init_app(app: Flask) -> None:
    """Request ids on every request; with the ``access_log`` setting, one JSON access line
    per request (``recsvc.access`` at INFO)."""
    settings = app.config.get("RECSVC_SETTINGS")
    write_access_log = settings.access_log if settings is not None else True

    @app.before_request
    def _start() -> None:
        # The WSGI environ directly: the Headers view builds the key on every lookup.
        given = request.environ.get("HTTP_X_REQUEST_ID", "")
        g.request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if write_access_log and access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 3),
                },
            )
        return response
