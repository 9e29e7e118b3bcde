"""Request bodies parsed as strict JSON, the one way every endpoint reads JSON.

``parse_json`` is what every reader of a request body calls: the event and catalog
batches (``recsvc.api.batches``), the webargs endpoints (``recsvc.api.blueprint``) and
Flask's own ``request.get_json`` (``StrictJSONProvider``). It refuses, with
``InvalidJson`` (a ``ValueError``), what the standard library's ``json`` would either
crash on or let through into Redis:

- nesting deeper than ``max_depth`` (the standard library recurses and raises
  ``RecursionError`` at about 1,000 levels, a 500). orjson parses without recursing in
  Python and stops at 1,024 levels itself; then the nesting is measured against
  ``max_depth`` before any schema or store sees the value;
- strings holding lone surrogates (``"\\ud800"``) or bytes that are not UTF-8: orjson
  refuses both, where ``json`` returns a ``str`` that every later ``orjson.dumps`` (the
  stream, the profile) fails on, so the whole batch failed on every retry;
- numbers that do not fit a double (``1e400``, a 5,000-digit integer): the standard
  library reads the first as infinity, which JSON cannot store, and raises an
  unexpected ``ValueError`` on the second (Python's 4,300-digit limit);
- ``NaN`` and ``Infinity``, which are not JSON.

Integers beyond 64 bits come back as floats, which every integer field refuses (422).
The body's size is limited before it is read (``recsvc.web.request_guard``).
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# Nesting no request of this API needs: an event batch is 4 deep, a banner 4.
DEFAULT_MAX_DEPTH = 32


class InvalidJson(ValueError):
    """The body is not JSON this service accepts; the message says why."""


def parse_json(raw: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value of ``raw`` (UTF-8 bytes or text). Raises ``InvalidJson``."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidJson(str(error)) from error
    if _may_nest_deeper(raw, max_depth) and nesting_depth(value, max_depth) > max_depth:
        raise InvalidJson(f"Nested deeper than {max_depth} levels.")
    return value


def _may_nest_deeper(raw: bytes | str, max_depth: int) -> bool:
    """False when ``raw`` has too few brackets to nest deeper than ``max_depth``: a single
    event or a query body, answered without walking the value."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{") > max_depth
    return raw.count(b"[") + raw.count(b"{") > max_depth


def nesting_depth(value: Any, limit: int) -> int:
    """Levels of arrays and objects in ``value`` (a scalar is 0, ``[]`` is 1), counted up
    to ``limit + 1`` and no further. Level by level, without recursion: a value 1,000
    deep costs no stack."""
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    while level and depth <= limit:
        depth += 1
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return depth


# numpy scalars as numbers: scores and shares come out of numpy as numpy.float64, which
# the standard library writes as the float subclass it is and orjson refuses without it.
_WRITE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``parse_json`` for reading (``request.get_json``):
    a refused body raises ``InvalidJson``, a ``ValueError``, which Flask answers as a
    400 (``recsvc.web.errors`` gives it the error shape).

    Writing (``jsonify``, every answer) is orjson's: the standard library's encoder took
    30-60 us of a recommendation answer (ten items with evidence and tiles) where orjson
    takes a few. The bytes are equivalent JSON: compact, UTF-8 (characters outside ASCII
    written as such rather than ``\\u`` escaped), no trailing newline; what orjson does
    not know (a ``Decimal``, a ``set``) goes through Flask's own conversions, and what it
    cannot write (an integer beyond 64 bits) through the standard library."""

    sort_keys = False
    max_depth = DEFAULT_MAX_DEPTH

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s, self.max_depth)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._encode(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._encode(obj), mimetype=self.mimetype)

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=_WRITE_OPTIONS)
        except TypeError:  # an integer beyond 64 bits, which orjson does not write
            return super().dumps(obj, separators=(",", ":")).encode()
