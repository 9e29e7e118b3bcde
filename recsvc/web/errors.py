"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Validation problems are 4xx naming the field and the reason; Redis being unreachable is a
503 with ``Retry-After`` (the client keeps its events and tries again); anything else
unexpected is a logged 500 with the same shape and no internals.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from recsvc.redis_client import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success, raised anywhere inside a request."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def unavailable(message: str = "Redis is unreachable; retry later.") -> ApiError:
    retry_after = str(current_app.config["RECSVC_SETTINGS"].retry_after_seconds)
    return ApiError(503, "unavailable", message, headers={"Retry-After": retry_after})


def _http_error(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    details: dict[str, Any] = {}
    data = getattr(error, "data", None)  # webargs (flask-smorest) puts field errors here
    if isinstance(data, dict) and "messages" in data:
        details = {"errors": field_errors(data["messages"])}
        code = "validation_error"
    message = error.description or error.name or "Error"
    headers = {k: v for k, v in error.get_headers() if k.lower() not in {"content-type"}}
    return error_response(error.code or 500, code, message, details, headers)


def field_errors(messages: Any) -> list[dict[str, Any]]:
    """webargs' ``{location: {field: [reason, ...]}}`` (nested for nested fields) as the flat
    ``[{"location", "field", "reason"}]`` list every validation error answers with."""
    if not isinstance(messages, dict):
        return [{"location": None, "field": None, "reason": str(messages)}]
    found: list[dict[str, Any]] = []
    for location, fields in messages.items():
        for field, reason in _flatten(fields, None):
            found.append({"location": location, "field": field, "reason": reason})
    return found


def _flatten(messages: Any, path: str | None) -> list[tuple[str | None, str]]:
    if isinstance(messages, dict):
        found = []
        for name, value in messages.items():
            name = None if name == "_schema" else str(name)
            found.extend(_flatten(value, ".".join(p for p in (path, name) if p) or None))
        return found
    reasons = messages if isinstance(messages, list) else [messages]
    return [(path, str(reason)) for reason in reasons]


def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def _redis_down(error: Exception) -> Response:
    log.warning("redis unavailable", extra={"error": repr(error)})
    return _api_error(unavailable())


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "Something went wrong on our side.")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers; call after flask-smorest's Api so ours win."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ApiError, _api_error)
    for error_type in UNAVAILABLE_ERRORS:
        app.register_error_handler(error_type, _redis_down)
    app.register_error_handler(Exception, _unexpected)
