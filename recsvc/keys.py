"""Every Redis key the service uses, built here and nowhere else.

Keys are namespaced (``<namespace>:``) and carry a hash tag (the part in braces) so that all
keys one operation touches together land in one Redis Cluster slot:

- ``{v:<visitor_id>}`` for a visitor's own state,
- ``{u:<user_id>}`` for a logged-in customer's shared state (cart, purchases),
- ``{events}``, ``{events:1}`` ... for the shards of the ingestion stream (each with its
  own consumer group, relay marks and pending-relay index: ``docs/redis.md``),
- ``{funnel}`` for the funnel counters, so one PFCOUNT can union days, sources and
  visitor types;
- ``{catalog}`` for the item catalog and its version counter, so an upsert and the
  counter's INCR are one transaction;
- ``{marketing}`` for banners, the abandoned-cart index and the nudge counters;
- ``{ratelimit}`` for the rate limits' token buckets;
- ``{models}`` for the registry's pointers (current version, history, published list),
  so making a version current or rolling back is one atomic operation;
- ``{mv:<version>}`` for a version's item side, ``{mvu:<version>:<bucket>}`` for one
  bucket of its user vectors (user vectors spread over the cluster's slots).

Ids are validated (see ``recsvc.core.events.ID_PATTERN``) to never contain braces.
"""

from __future__ import annotations

from dataclasses import dataclass

EXPORTER_GROUP = "exporter"


@dataclass(frozen=True)
class KeySpace:
    namespace: str = "recsvc"

    # --- events ------------------------------------------------------------------------
    # The stream is sharded: a visitor's events all go to shard
    # ``recsvc.store.stream.shard_of(visitor_id, shards)``. Shard 0 keeps the tag the single
    # stream had (``{events}``), so a deployment that had one stream keeps its backlog.
    def _events_tag(self, shard: int) -> str:
        return "{events}" if shard == 0 else f"{{events:{shard}}}"

    def events_stream(self, shard: int = 0) -> str:
        """Stream of accepted events of one shard; entries are ``{"e": <event JSON>}``."""
        return f"{self.namespace}:{self._events_tag(shard)}:stream"

    def events_relayed(self, shard: int) -> str:
        """ZSET outbox entry id -> ms when it was appended to the shard's stream: the relay's
        idempotence marks, kept ``RELAY_MARK_SECONDS`` (``recsvc.store.outbox``)."""
        return f"{self.namespace}:{self._events_tag(shard)}:relayed"

    def events_pending(self, shard: int) -> str:
        """ZSET ``<visitor_id>|<token>`` -> ms: batches that may have left an outbox entry
        not relayed yet (written before the commit, removed after the relay)."""
        return f"{self.namespace}:{self._events_tag(shard)}:pending"

    def outbox(self, visitor_id: str) -> str:
        """LIST of the visitor's committed outbox entries not yet relayed (JSON), in the
        visitor's slot so that its documents and the entry are one transaction."""
        return f"{self.namespace}:{{v:{visitor_id}}}:outbox"

    def fence(self, visitor_id: str) -> str:
        """The lease token of a batch of this visitor that may no longer commit (its
        customer lease was taken over as stale)."""
        return f"{self.namespace}:{{v:{visitor_id}}}:fence"

    def customer_lease(self, user_id: str) -> str:
        """``<token>|<visitor_id>|<ms>`` while a batch updates the customer document: the
        customer's writer lock, released by the relay that writes the document."""
        return f"{self.namespace}:{{u:{user_id}}}:lease"

    def marketing_relayed(self) -> str:
        """ZSET outbox entry id -> ms when its nudge counters were added (idempotence)."""
        return f"{self.namespace}:{{marketing}}:relayed"

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

    # --- catalog -----------------------------------------------------------------------
    def catalog_items(self) -> str:
        """HASH item id -> compact JSON of the item's other fields (``recsvc.store.catalog``)."""
        return f"{self.namespace}:{{catalog}}:items"

    def catalog_version(self) -> str:
        """Counter bumped by every change to ``catalog_items``: caches of catalog-derived
        arrays refresh when it moves."""
        return f"{self.namespace}:{{catalog}}:version"

    # --- banners and nudges ------------------------------------------------------------
    def banners(self) -> str:
        """HASH banner id -> banner JSON."""
        return f"{self.namespace}:{{marketing}}:banners"

    def banners_version(self) -> str:
        """Counter bumped by every banner change: workers reload their banner cache."""
        return f"{self.namespace}:{{marketing}}:banners_version"

    def cart_index(self, channel: str) -> str:
        """ZSET cart owner (``v:<visitor_id>`` or ``u:<user_id>``) -> time its cart last
        changed, for carts that can be abandoned (items, no purchase since) and that the
        off-site ``channel`` has not nudged (claimed or held out) yet, oldest first: a
        claim reads only carts still waiting, however many were claimed before."""
        return f"{self.namespace}:{{marketing}}:carts:{channel}"

    def nudge_state(self, owner: str) -> str:
        """HASH of one cart owner's nudges: per channel, the cart claimed or held out, when
        it was sent, clicked, recovered (``recsvc.store.nudges``)."""
        return f"{self.namespace}:{{{owner}}}:nudges"

    def nudge_stats(self, day: str) -> str:
        """HASH ``<day>|<channel>|<counter>`` -> count or value, for nudge analytics: one
        per UTC day (YYYY-MM-DD), so each expires with its day's retention."""
        return f"{self.namespace}:{{marketing}}:nudge_stats:{day}"

    # --- rate limits ----------------------------------------------------------------------
    def rate_bucket(self, scope: str, name: str) -> str:
        """HASH token bucket (``tokens``, ``at``) of one API key (``scope`` ``key``, ``name``
        its fingerprint), client address (``address``, ``read-address``: the address, an
        IPv6 one as its /64) or visitor (``visitor``, ``read-visitor``: the visitor id),
        for events or for reads (``read-``). One hash tag for all, so one script takes
        from all of a request's buckets at once (one Cluster slot); each expires once it
        would be full again."""
        return f"{self.namespace}:{{ratelimit}}:{scope}:{name}"

    # --- model versions -----------------------------------------------------------------
    def model_current(self) -> str:
        """The version workers serve: changing it is how a version is made current."""
        return f"{self.namespace}:{{models}}:current"

    def model_history(self) -> str:
        """LIST of versions made current, newest first: rollback pops the head."""
        return f"{self.namespace}:{{models}}:history"

    def model_published(self) -> str:
        """HASH version -> manifest JSON, set only once a version is completely written."""
        return f"{self.namespace}:{{models}}:published"

    def model_item_ids(self, version: str) -> str:
        return f"{self.namespace}:{{mv:{version}}}:item_ids"

    def model_item_factors(self, version: str, chunk: int) -> str:
        """Raw float32 bytes of item rows ``chunk * CHUNK_ROWS`` onwards."""
        return f"{self.namespace}:{{mv:{version}}}:item_factors:{chunk}"

    def model_similar(self, version: str, chunk: int) -> str:
        """Raw int32 neighbour rows then float32 scores for one chunk of items."""
        return f"{self.namespace}:{{mv:{version}}}:similar:{chunk}"

    def model_session(self, version: str, name: str, chunk: int) -> str:
        """Raw bytes of one session-model array (``session_arrays``), in chunks."""
        return f"{self.namespace}:{{mv:{version}}}:session:{name}:{chunk}"

    def model_lists(self, version: str) -> str:
        """HASH list name (popular, trending) -> JSON list of item ids."""
        return f"{self.namespace}:{{mv:{version}}}:lists"

    def model_user_rows(self, version: str, bucket: int) -> str:
        """HASH user id -> row of the user's vector in the bucket's vector string."""
        return f"{self.namespace}:{{mvu:{version}:{bucket}}}:rows"

    def model_user_vectors(self, version: str, bucket: int) -> str:
        """Raw float32 user vectors of one bucket, concatenated."""
        return f"{self.namespace}:{{mvu:{version}:{bucket}}}:vectors"

    def model_version_patterns(self, version: str) -> tuple[str, str]:
        """SCAN patterns covering every key of one version."""
        return (
            f"{self.namespace}:{{mv:{version}}}:*",
            f"{self.namespace}:{{mvu:{version}:*",
        )

    def pattern(self) -> str:
        """SCAN pattern matching every key of this namespace."""
        return f"{self.namespace}:*"
