"""gunicorn's own refusals (a malformed request line, an unknown method spelling, a
request line or headers over its limits) in the API's error shape.

gunicorn answers these before the app runs, with an HTML page; ``install`` makes them
``{"error": {"code", "message", "details"}}`` like every other answer, with the same
status. gunicorn calls ``gunicorn.util.write_error`` for each such answer; this replaces
it in the worker (``recsvc.web.gunicorn_conf.post_fork``).
"""

from __future__ import annotations

import json
import re
import socket


def error_bytes(status: int, reason: str, message: str) -> bytes:
    """The raw HTTP/1.1 response for one refusal (the connection is closed after it)."""
    code = re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "bad_request"
    body = json.dumps({"error": {"code": code, "message": message or reason, "details": {}}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode("latin-1")


def install() -> None:
    """Make gunicorn write its refusals as JSON (in this process)."""
    from gunicorn import util

    def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
        util.write_nonblock(sock, error_bytes(status_int, reason, mesg))

    util.write_error = write_error
