"""JSON answers of the storefront's per-page endpoints, encoded with orjson.

``flask.jsonify`` encodes with the standard library; on the nudge and banner answers
(nested objects, a kilobyte or so) that costs tens of microseconds a request where orjson
takes a few. The bytes are equivalent JSON: compact, UTF-8 (characters outside ASCII
written as such rather than ``\\u`` escaped), no trailing newline.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response


def json_response(answer: dict[str, Any]) -> Response:
    return Response(orjson.dumps(answer), mimetype="application/json")
