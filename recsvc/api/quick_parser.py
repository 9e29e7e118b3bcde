"""An arguments parser for hot endpoints: the common valid query or body parsed by hand.

flask-smorest parses ``@blp.arguments(...)`` with webargs, which loads a marshmallow
schema on every request: on ``GET /v1/visitors/<id>/banners`` that cost about a tenth of a
millisecond, and on ``POST /v1/recommendations/cart`` (a list of ids) about two tenths, sizeable
shares of endpoints the storefront calls on every page. A blueprint that sets
``ARGUMENTS_PARSER = QuickParser(Schema, quick)`` keeps its ``@arguments`` decorators (so
the OpenAPI document does not change) and has ``quick`` parse the query of the endpoints
whose schema is a ``Schema`` first (and with ``body=(BodySchema, quick_body)``, their
JSON body): ``quick`` returns what the schema would load, or None for anything it cannot
vouch for (an unknown or repeated parameter, an unusual spelling of a number, an invalid
value), and the schema then decides, with its own error answers. Other arguments of the
blueprint go to webargs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from marshmallow import Schema, missing
from werkzeug.datastructures import MultiDict

from recsvc.api.blueprint import StrictArgumentsParser
from recsvc.web.json_body import InvalidJson, parse_json

QuickParse = Callable[[MultiDict[str, str]], dict[str, Any] | None]
QuickBody = Callable[[Any], dict[str, Any] | None]  # the parsed JSON body


class QuickParser(StrictArgumentsParser):
    def __init__(
        self,
        schema: type[Schema],
        quick: QuickParse,
        body: tuple[type[Schema], QuickBody] | None = None,
    ) -> None:
        super().__init__()
        self.schema = schema
        self.quick = quick
        self.body_schema, self.quick_body = body if body is not None else (None, None)

    def parse(
        self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any
    ) -> Any:
        """``quick``'s answer for a query (or body) of its schema that it vouches for,
        webargs' otherwise."""
        parsed = None
        if location == "query" and isinstance(argmap, self.schema):
            # As webargs does: the view's decorator passes no request, meaning Flask's.
            parsed = self.quick((req if req is not None else self.get_default_request()).args)
        elif location == "json" and self.body_schema and isinstance(argmap, self.body_schema):
            parsed = self._quick_json(req if req is not None else self.get_default_request())
        if parsed is not None:
            return parsed
        return super().parse(argmap, req, location=location, **kwargs)

    def _quick_json(self, req: Any) -> dict[str, Any] | None:
        # Only a body webargs would read as JSON (its mimetype); anything that does not
        # parse is left to webargs, which answers it.
        if self.quick_body is None or not req.is_json:
            return None
        try:
            depth = current_app.config["RECSVC_SETTINGS"].max_json_depth
            body = parse_json(req.get_data(cache=True), depth)
        except InvalidJson:
            return None
        return self.quick_body(body)


def single_values(args: MultiDict[str, str], allowed: frozenset[str]) -> dict[str, str] | None:
    """The query as ``{name: value}`` when every parameter is in ``allowed`` and given once;
    None otherwise."""
    pairs = list(args.items(multi=True))
    values = dict(pairs)
    if len(values) != len(pairs) or not values.keys() <= allowed:
        return None
    return values


def plain_int(text: str, low: int, high: int) -> int | None:
    """``text`` as an integer in ``[low, high]`` when written plainly (ASCII digits, no sign,
    no leading zero, no spaces); None otherwise."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        return None
    value = int(text)
    return value if low <= value <= high else None


def quick_query(schema: Schema, n_max: int, text: dict[str, Callable[[str], bool]]) -> QuickParse:
    """A ``quick`` for a query of ``n`` (1 to ``n_max``) and the ``text`` parameters (each
    where its check passes), written plainly, loaded with ``schema``'s defaults; anything
    else is left to ``schema``."""
    names = frozenset({"n", *text})
    defaults = {
        name: field.load_default
        for name, field in schema.fields.items()
        if field.load_default is not missing
    }

    def quick(args: MultiDict[str, str]) -> dict[str, Any] | None:
        values = single_values(args, names)
        if values is None:
            return None
        parsed = dict(defaults)
        if "n" in values:
            n = plain_int(values["n"], 1, n_max)
            if n is None:
                return None
            parsed["n"] = n
        for name, valid in text.items():
            if name in values:
                if not valid(values[name]):
                    return None
                parsed[name] = values[name]
        return parsed

    return quick


def quick_list_query(schema: Schema) -> QuickParse:
    """:func:`quick_query` for the product-list queries (``ItemFilterQuerySchema`` and the
    schemas built on it): ``n`` up to 100 and ``category`` of 1 to 128 characters."""
    return quick_query(schema, 100, {"category": lambda value: 1 <= len(value) <= 128})
