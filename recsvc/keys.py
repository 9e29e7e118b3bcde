"""Every Redis key the service uses, built here and nowhere else.

Keys are namespaced (``<namespace>:``) and carry a hash tag (the part in braces) so that all
keys one operation touches together land in one Redis Cluster slot:

- ``{v:<visitor_id>}`` for a visitor's own state,
- ``{u:<user_id>}`` for a logged-in customer's shared state (cart, purchases),
- ``{events}`` for the ingestion stream,
- ``{funnel}`` for the funnel counters, so one PFCOUNT can union days, sources and
  visitor types.

Ids are validated (see ``recsvc.core.events.ID_PATTERN``) to never contain braces.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPORTER_GROUP = "exporter"


@dataclass(frozen=True)
class KeySpace:
    namespace: str = "recsvc"

    # --- events ------------------------------------------------------------------------
    def events_stream(self) -> str:
        """Stream of accepted events; entries are ``{"e": <event JSON>}``."""
        return f"{self.namespace}:{{events}}:stream"

    # --- visitors and customers ----------------------------------------------------------
    def visitor_profile(self, visitor_id: str) -> str:
        """JSON document of one visitor's real-time profile."""
        return f"{self.namespace}:{{v:{visitor_id}}}:profile"

    def customer(self, user_id: str) -> str:
        """JSON document of a logged-in customer's shared cart and purchases."""
        return f"{self.namespace}:{{u:{user_id}}}:customer"

    # --- analytics ---------------------------------------------------------------------
    def funnel_counter(self, day: str, step: str, source: str, visitor_type: str) -> str:
        """HyperLogLog of visitors who reached ``step`` on ``day`` (YYYY-MM-DD, UTC)."""
        return f"{self.namespace}:{{funnel}}:{day}:{step}:{source}:{visitor_type}"

    def pattern(self) -> str:
        """SCAN pattern matching every key of this namespace."""
        return f"{self.namespace}:*"
