"""API keys, sent as ``X-API-Key``, and what each role may do.

Roles, from ``RECSVC_<ROLE>_KEYS`` (comma-separated):

- ``public``: the storefront's key. It ships in every browser, so anything it allows,
  anyone can do: the storefront endpoints only, a ``user_id`` only with an identity token
  (``recsvc.identity``), a visitor's own data (profile, nudges, the items behind
  recommendations, cart add-ons for a visitor) only in the browser's view and only for
  the visitor the request's token proves (``recsvc.serving.disclosure``), events at most
  ``public_event_max_age_seconds`` old, rate limited per address and visitor
  (``recsvc.web.rate_limit``).
- ``analyst``: dashboards: a public key plus analytics and full profiles.
- ``sender``: nudge senders (email, push, SMS jobs): a server key that may also claim
  abandoned carts.
- ``server``: the store's own backend: may send any ``user_id``, backdate events within
  ``analytics_retention_days``, read full profiles and analytics; not rate limited.
- ``admin``: everything, ``/v1/admin/*`` included.

401 without a key or with an unknown one, 403 with a key whose role may not call the
endpoint. Operations endpoints (health, readiness, metrics, the API document) stay open.
With no keys configured the service runs open (every caller may do everything) and says
so once at start.

A key is looked up in constant time: it is compared with every configured key of every
role (``hmac.compare_digest``, no early exit), so the time an answer takes says nothing
about which role's list, or which position in it, a guess came close to.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from flask import Flask, g, request

from recsvc.settings import Settings
from recsvc.web.errors import ApiError

log = logging.getLogger(__name__)

OPEN_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
HEADER = "X-API-Key"

# Beyond the storefront endpoints every key reaches:
# - "server": runs on the store's servers: asserts user ids without a token, backdates
#   events within the retention, is not rate limited;
# - "read_profiles": full profiles of any visitor; "analytics": /v1/analytics/*;
# - "claim_nudges": POST /v1/nudges/claim; "admin": /v1/admin/*.
CAPABILITIES: dict[str, frozenset[str]] = {
    "admin": frozenset({"server", "read_profiles", "analytics", "claim_nudges", "admin"}),
    "server": frozenset({"server", "read_profiles", "analytics"}),
    "sender": frozenset({"server", "read_profiles", "claim_nudges"}),
    "analyst": frozenset({"read_profiles", "analytics"}),
    "public": frozenset(),
}
ROLES = tuple(CAPABILITIES)

# Route prefix -> the capability it needs and how the 403 names it; first match wins.
RESTRICTED: tuple[tuple[str, str, str], ...] = (
    ("/v1/admin", "admin", "an admin"),
    ("/v1/nudges/claim", "claim_nudges", "a sender or admin"),
    ("/v1/analytics", "analytics", "an analyst, server or admin"),
)


@dataclass(frozen=True)
class Caller:
    """Who sent the request: the role of its key (``"open"`` when no keys are
    configured) and a short fingerprint of the key (rate-limit buckets are kept per key,
    and a Redis key name must not hold the key itself)."""

    role: str
    key_id: str
    capabilities: frozenset[str]

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


OPEN = Caller("open", "open", frozenset().union(*CAPABILITIES.values()))
# With keys configured, a request that needs none (operations, preflight) may do nothing.
NOBODY = Caller("none", "none", frozenset())


class KeyTable:
    """Every configured key with its role, compared in constant time."""

    def __init__(self, settings: Settings) -> None:
        self.entries: list[tuple[bytes, str]] = []
        seen: dict[str, str] = {}
        for role in ROLES:
            for key in getattr(settings, f"{role}_keys"):
                if key in seen and seen[key] != role:
                    raise ValueError(
                        f"one API key is configured for two roles ({seen[key]}, {role})"
                    )
                seen[key] = role
                self.entries.append((key.encode(), role))

    def role_of(self, key: str | None) -> str | None:
        """The role of ``key``; None for a missing or unknown key. Every configured key is
        compared, whatever matches and wherever."""
        if not key:
            return None
        given = key.encode()
        found = None
        for candidate, role in self.entries:
            if hmac.compare_digest(given, candidate):
                found = role
        return found


def role_of(key: str | None, settings: Settings) -> str | None:
    """``"admin"``, ``"server"``, ``"sender"``, ``"analyst"``, ``"public"`` or None for a
    missing or unknown key (constant time over every configured key)."""
    return KeyTable(settings).role_of(key)


def key_id(key: str) -> str:
    """A fingerprint of an API key to name its rate-limit bucket with: 16 hex digits of
    its SHA-256 (the key itself never becomes part of a Redis key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def current_caller() -> Caller:
    """The caller of the current request (set before any view runs; ``OPEN`` when the
    service runs without keys)."""
    return g.get("caller", OPEN)


def _required_capability(path: str) -> tuple[str, str] | None:
    # The matched route when there is one: a path spelt differently (empty segments,
    # say) can then never miss the rule that routes it.
    route = request.url_rule.rule if request.url_rule is not None else path
    for prefix, capability, needed in RESTRICTED:
        if route.startswith(prefix):
            return capability, needed
    return None


def init_app(app: Flask, settings: Settings) -> None:
    if not settings.auth_enabled:
        log.warning(
            "no API keys configured (RECSVC_PUBLIC_KEYS, RECSVC_ANALYST_KEYS, "
            "RECSVC_SENDER_KEYS, RECSVC_SERVER_KEYS, RECSVC_ADMIN_KEYS): open"
        )
        return
    table = KeyTable(settings)

    @app.before_request
    def _require_key() -> None:
        path = request.path
        if path.startswith(OPEN_PREFIXES) or request.method == "OPTIONS":
            g.caller = NOBODY
            return
        given = request.headers.get(HEADER)
        role = table.role_of(given)
        if role is None or given is None:
            raise ApiError(401, "unauthorized", f"Send a valid API key in {HEADER}.")
        caller = Caller(role, key_id(given), CAPABILITIES[role])
        g.caller = caller
        required = _required_capability(path)
        if required is not None and not caller.can(required[0]):
            raise ApiError(403, "forbidden", f"This endpoint needs {required[1]} API key.")
