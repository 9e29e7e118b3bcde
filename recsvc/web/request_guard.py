"""Requests refused before any view reads them, with the JSON error body.

- A body streamed without ``Content-Length`` (``Transfer-Encoding: chunked``) over
  ``max_body_bytes`` is a 413, as the same bytes with a ``Content-Length`` are. Werkzeug
  stops reading such a stream at the limit and hands on what it read: a 2.1 MiB batch was
  cut at 2 MiB and, when the cut fell between two events, accepted. ``StreamedBodyLimit``
  reads the stream itself up to one byte past the limit, before the app sees the request.
- A path and query string over ``max_url_bytes`` is a 414. (Under gunicorn a request line
  over 4,094 bytes is refused before the app: ``recsvc.web.protocol_errors`` gives that
  answer the same JSON shape.)

Paths are routed as they are written: ``recsvc.web.app`` turns off Werkzeug's merging of
``//``, which redirected (an HTML 308) or matched a path spelt differently from its route.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from recsvc.settings import Settings
from recsvc.web.errors import ApiError

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TOO_LARGE = "recsvc.streamed_body_too_large"
_READ_CHUNK = 64 * 1024


class StreamedBodyLimit:
    """WSGI middleware: a chunked body is read here, at most ``max_bytes`` + 1 bytes, and
    handed on as a body with a ``Content-Length``; one over ``max_bytes`` is dropped and
    the request marked (``TOO_LARGE``) for ``init_app``'s check to answer 413."""

    def __init__(self, app: WsgiApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _is_streamed(environ):
            body = _read_at_most(environ["wsgi.input"], self.max_bytes + 1)
            if len(body) > self.max_bytes:
                environ[TOO_LARGE] = True
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _is_streamed(environ: dict[str, Any]) -> bool:
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked and not environ.get("CONTENT_LENGTH")


def _read_at_most(stream: Any, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(_READ_CHUNK, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def url_bytes(environ: dict[str, Any]) -> int:
    """Length of the request's path and query string as sent (WSGI gives them as
    latin-1 strings: one character per byte)."""
    query = environ.get("QUERY_STRING", "")
    return len(environ.get("PATH_INFO", "")) + (len(query) + 1 if query else 0)


def init_app(app: Flask, settings: Settings) -> None:
    app.wsgi_app = StreamedBodyLimit(app.wsgi_app, settings.max_body_bytes)  # type: ignore[method-assign]

    @app.before_request
    def _refuse_oversized() -> None:
        if request.environ.get(TOO_LARGE):
            raise RequestEntityTooLarge(f"The body is larger than {settings.max_body_bytes} bytes.")
        if url_bytes(request.environ) > settings.max_url_bytes:
            raise ApiError(
                414, "uri_too_long", f"Path and query over {settings.max_url_bytes} bytes."
            )
