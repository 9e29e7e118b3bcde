"""All-or-nothing validation of a batch of JSON objects (events, catalog items): every
problem named by its index, field and reason, nothing written when there is one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from marshmallow import Schema, ValidationError

from recsvc.web.errors import ApiError
from recsvc.web.json_body import InvalidJson, parse_json

MAX_ERRORS_SHOWN = 100


def read_json_body(cache: bool = False) -> Any:
    """The request body parsed as strict JSON (``recsvc.web.json_body``: no NaN, no
    infinity, no lone surrogates, nested at most ``max_json_depth`` levels); a 400 naming
    the problem otherwise. Bodies over ``MAX_CONTENT_LENGTH`` raise a 413 while being read
    (streamed ones too: ``recsvc.web.request_guard``)."""
    raw = request.get_data(cache=cache)
    try:
        return parse_json(raw, current_app.config["RECSVC_SETTINGS"].max_json_depth)
    except InvalidJson as error:
        raise ApiError(400, "invalid_json", f"Body is not valid JSON: {error}") from error


def batch_error(index: int | None, field: str | None, reason: str) -> dict[str, Any]:
    """One entry of a 422's ``details.errors``; ``index`` None for the body itself."""
    return {"index": index, "field": field, "reason": reason}


def flatten_errors(index: int, messages: Any, prefix: str = "") -> list[dict[str, Any]]:
    """marshmallow's nested messages as flat ``{"index", "field", "reason"}`` entries,
    nested fields joined with dots (``properties.colour``)."""
    if isinstance(messages, dict):
        found = []
        for name, value in messages.items():
            field = name if name != "_schema" else None
            path = f"{prefix}.{field}" if prefix and field else (field or prefix or None)
            found.extend(flatten_errors(index, value, path or ""))
        return found
    reasons = messages if isinstance(messages, list) else [messages]
    return [batch_error(index, prefix or None, str(reason)) for reason in reasons]


def validate_each(
    objects: list[Any],
    schema: Schema,
    quick: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """``(loaded, errors)``: each object loaded by ``schema``, and every problem found.
    ``quick``, when given, loads what it can vouch for (as ``schema.load`` would) and
    answers None for the rest, which ``schema`` loads."""
    loaded, errors = [], []
    for index, value in enumerate(objects):
        if not isinstance(value, dict):
            errors.append(batch_error(index, None, "Must be a JSON object."))
            continue
        done = quick(value) if quick is not None else None
        if done is not None:
            loaded.append(done)
            continue
        try:
            loaded.append(schema.load(value))
        except ValidationError as error:
            errors.extend(flatten_errors(index, error.messages))
    return loaded, errors


def invalid_batch(noun: str, errors: list[dict[str, Any]], total: int = 1) -> ApiError:
    """The 422 for a batch of ``total`` ``noun``s (plural) with these errors."""
    bad = len({e["index"] for e in errors}) or 1
    message = f"{bad} of {total} {noun} invalid; nothing was written."
    details = {"errors": errors[:MAX_ERRORS_SHOWN], f"invalid_{noun}": bad}
    return ApiError(422, "validation_error", message, details)
