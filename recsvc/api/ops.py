"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from recsvc.redis_client import is_alive
from recsvc.web.metrics import metrics_response
from recsvc.web.services import services

blp = Blueprint("ops", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """The process is up (says nothing about Redis: that is readiness)."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve: Redis answers."""
    if is_alive(services().client):
        return jsonify(status="ready"), 200
    return jsonify(status="unavailable", reason="redis"), 503


@blp.get("/metrics")
def metrics() -> Response:
    svc = services()
    return metrics_response(svc.client, svc.keys)
