"""API keys, sent as ``X-API-Key``.

With keys configured: storefront endpoints need a public, sender or admin key;
``POST /v1/nudges/claim`` a sender or admin key (its answers hold customers' carts and
user ids, and a public key ships in storefront JavaScript); ``/v1/admin/*`` an admin key.
401 without a key or with an unknown one, 403 with a key of too small a role.
Operations endpoints (health, readiness, metrics, the API document) stay open. With no
keys configured the service runs open and says so once at start.
"""

from __future__ import annotations

import hmac
import logging

from flask import Flask, request

from recsvc.settings import Settings
from recsvc.web.errors import ApiError

log = logging.getLogger(__name__)

OPEN_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
HEADER = "X-API-Key"


def _matches(candidate: str, keys: tuple[str, ...]) -> bool:
    """Constant-time membership: every configured key is compared, whatever matches."""
    found = False
    given = candidate.encode()
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


# Path prefix -> the roles that may call it, first match wins; other paths take any role.
RESTRICTED: tuple[tuple[str, frozenset[str], str], ...] = (
    ("/v1/admin", frozenset({"admin"}), "an admin"),
    ("/v1/nudges/claim", frozenset({"admin", "sender"}), "a sender or admin"),
)


def role_of(key: str | None, settings: Settings) -> str | None:
    """``"admin"``, ``"sender"``, ``"public"`` or None for a missing or unknown key."""
    if not key:
        return None
    if _matches(key, settings.admin_keys):
        return "admin"
    if _matches(key, settings.sender_keys):
        return "sender"
    if _matches(key, settings.public_keys):
        return "public"
    return None


def init_app(app: Flask, settings: Settings) -> None:
    if not settings.auth_enabled:
        log.warning(
            "no API keys configured (RECSVC_PUBLIC_KEYS, RECSVC_SENDER_KEYS, "
            "RECSVC_ADMIN_KEYS): open"
        )
        return

    @app.before_request
    def _require_key() -> None:
        path = request.path
        if path.startswith(OPEN_PREFIXES) or request.method == "OPTIONS":
            return
        role = role_of(request.headers.get(HEADER), settings)
        if role is None:
            raise ApiError(401, "unauthorized", f"Send a valid API key in {HEADER}.")
        for prefix, roles, needed in RESTRICTED:
            if path.startswith(prefix):
                if role not in roles:
                    raise ApiError(403, "forbidden", f"This endpoint needs {needed} API key.")
                break
