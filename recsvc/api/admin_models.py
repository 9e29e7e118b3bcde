"""``/v1/admin/models``: list published model versions, make one current, roll back.

Publishing itself is the offline side (``recsvc publish``); these endpoints only move the
pointer, which workers follow without a restart (``recsvc.store.models``).
"""

from __future__ import annotations

from typing import Any

from recsvc.api.blueprint import Blueprint
from recsvc.schemas.common import REDIS_UNAVAILABLE, ApiErrorSchema
from recsvc.schemas.models import (
    VERSION_EXAMPLE,
    CurrentSchema,
    MakeCurrentSchema,
    ModelListSchema,
)
from recsvc.web.errors import ApiError
from recsvc.web.services import services

blp = Blueprint(
    "admin_models",
    __name__,
    url_prefix="/v1/admin/models",
    description="Model versions: list, make current, roll back (admin key).",
)


@blp.route("")
@blp.response(
    200,
    ModelListSchema,
    example={
        "current": VERSION_EXAMPLE,
        "versions": [
            {
                "version": VERSION_EXAMPLE,
                "created": "2026-03-10T12:00:00Z",
                "model": "als",
                "metrics": {"als": {"ndcg@10": 0.0412, "recall@20": 0.0833}},
                "params": {"factors": 64, "iterations": 15},
                "current": True,
            }
        ],
    },
)
@blp.alt_response(503, **REDIS_UNAVAILABLE)
def list_models() -> dict[str, Any]:
    """List published model versions.

    Newest first (by training time), with their headline offline metrics, parameters and
    which one is served now.
    """
    store = services().models
    current = store.current_version()
    manifests = sorted(
        store.published().items(),
        key=lambda pair: (str(pair[1].get("created") or ""), pair[0]),
        reverse=True,
    )
    versions = [
        {
            "version": version,
            "created": manifest.get("created"),
            "model": manifest.get("model"),
            "metrics": manifest.get("metrics") or {},
            "params": manifest.get("params") or {},
            "current": version == current,
        }
        for version, manifest in manifests
    ]
    return {"current": current, "versions": versions}


@blp.route("/current", methods=["POST"])
@blp.arguments(MakeCurrentSchema, example={"version": VERSION_EXAMPLE})
@blp.response(200, CurrentSchema)
@blp.alt_response(400, schema=ApiErrorSchema, description="Body is not JSON.")
@blp.alt_response(404, schema=ApiErrorSchema, description="No such published version.")
@blp.alt_response(422, schema=ApiErrorSchema, description="Invalid body.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
def make_current(body: dict[str, Any]) -> dict[str, Any]:
    """Make a published version current.

    One atomic pointer change, which workers pick up without a restart. The version served
    before stays published, for rollback. Making the current version current again changes
    nothing.
    """
    store = services().models
    version = body["version"]
    if store.current_version() != version:
        try:
            store.make_current(version)
        except KeyError as error:
            raise ApiError(404, "not_found", f"Version {version!r} is not published.") from error
    return {"current": version}


@blp.route("/rollback", methods=["POST"])
@blp.response(200, CurrentSchema)
@blp.alt_response(409, schema=ApiErrorSchema, description="No earlier version to roll back to.")
@blp.alt_response(503, **REDIS_UNAVAILABLE)
def rollback() -> dict[str, Any]:
    """Roll back to the previous version.

    Serves again the version that was current before this one; 409 when there is none.
    """
    previous = services().models.rollback()
    if previous is None:
        raise ApiError(409, "conflict", "No earlier version to roll back to.")
    return {"current": previous}
