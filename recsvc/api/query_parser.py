"""A query-string parser for hot endpoints: the common valid query parsed by hand.

flask-smorest parses ``@blp.arguments(..., location="query")`` with webargs, which loads a
marshmallow schema on every request: on ``GET /v1/visitors/<id>/banners`` that cost about
a tenth of a millisecond, a sizeable share of an endpoint the storefront calls on every
page. A blueprint that sets ``ARGUMENTS_PARSER = QuickQueryParser(Schema, quick)`` keeps
its ``@arguments`` decorators (so the OpenAPI document does not change) and has ``quick``
parse the query of the endpoints whose schema is a ``Schema`` first: ``quick`` returns what
the schema would load, or None for anything it cannot vouch for (an unknown or repeated
parameter, an unusual spelling of a number, an invalid value), and the schema then
decides, with its own error answers. Other arguments of the blueprint go to webargs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, missing
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict

QuickParse = Callable[[MultiDict[str, str]], dict[str, Any] | None]


class QuickQueryParser(FlaskParser):
    def __init__(self, schema: type[Schema], quick: QuickParse) -> None:
        super().__init__()
        self.schema = schema
        self.quick = quick

    def parse(
        self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any
    ) -> Any:
        """``quick``'s answer for a query of ``schema`` it vouches for, webargs' otherwise."""
        if location == "query" and isinstance(argmap, self.schema):
            # As webargs does: the view's decorator passes no request, meaning Flask's.
            parsed = self.quick((req if req is not None else self.get_default_request()).args)
            if parsed is not None:
                return parsed
        return super().parse(argmap, req, location=location, **kwargs)


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


_LIST_NAMES = frozenset({"n", "category"})


def quick_list_query(schema: Schema) -> QuickParse:
    """A ``quick`` for the product-list queries (``ItemFilterQuerySchema`` and the schemas
    built on it): ``n`` (1 to 100) and ``category`` (1 to 128 characters), written plainly,
    loaded with ``schema``'s defaults; anything else is left to ``schema``."""
    defaults = {
        name: field.load_default
        for name, field in schema.fields.items()
        if field.load_default is not missing
    }

    def quick(args: MultiDict[str, str]) -> dict[str, Any] | None:
        values = single_values(args, _LIST_NAMES)
        if values is None:
            return None
        parsed = dict(defaults)
        if "n" in values:
            n = plain_int(values["n"], 1, 100)
            if n is None:
                return None
            parsed["n"] = n
        if "category" in values:
            if not 1 <= len(values["category"]) <= 128:
                return None
            parsed["category"] = values["category"]
        return parsed

    return quick
