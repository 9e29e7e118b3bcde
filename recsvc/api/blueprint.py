"""The blueprint every resource uses: flask-smorest's, reading JSON bodies strictly.

webargs parses ``@blp.arguments(..., location="json")`` bodies with the standard
library's ``json``, which crashes (a 500) on a body nested 100,000 deep or holding a
5,000-digit integer, and lets lone surrogates through. ``StrictArgumentsParser`` reads
them with ``recsvc.api.batches.read_json_body`` instead, so every JSON endpoint refuses
the same bodies with the same 400. flask-smorest binds the parser when a view is
decorated, hence a class attribute of the blueprint rather than a setting of the app.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request

from recsvc.api.batches import read_json_body


class StrictArgumentsParser(FlaskParser):
    """webargs' Flask parser with strict JSON bodies (``recsvc.web.json_body``)."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return missing
        if not req.get_data(cache=True):
            return missing  # as webargs: an empty body is a missing one (a 422 if required)
        return read_json_body(cache=True)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictArgumentsParser()
