"""Reading a visitor for a request: their profile and long-term vector in one round trip.

Every read endpoint that depends on who the visitor is (recommendations, banners, nudges,
cart add-ons) reads through one :class:`VisitorReader`: a client of its own with a short
timeout and no retries, behind a circuit breaker, so a slow or absent Redis costs one
timeout and then nothing (the caller degrades: ``None`` means "unreadable now").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import redis
from redis.exceptions import NoScriptError

from recsvc.keys import KeySpace
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.state import VisitorState, state_from_profile
from recsvc.serving.breaker import CircuitBreaker
from recsvc.store.models import ModelStore


@dataclass
class VisitorRead:
    """What Redis holds of a visitor: the visitor document (None: no profile), the
    cart-and-purchases document (the customer's once stitched) and the model's vector."""

    visitor: dict[str, Any] | None
    shared: dict[str, Any] | None
    vector: np.ndarray | None

    def state(self, model: ScoringModel) -> VisitorState:
        """The strategies' view of this visitor under ``model``."""
        return state_from_profile(model.row_of, self.visitor, self.shared, self.vector)


class VisitorReader:
    def __init__(
        self, client: redis.Redis, keys: KeySpace, models: ModelStore, breaker: CircuitBreaker
    ) -> None:
        self.client = client
        self.keys = keys
        self.models = models
        self.breaker = breaker

    def read(self, visitor_id: str, model: ScoringModel | None) -> VisitorRead | None:
        """Profile and, with a ``model`` that has user vectors, the visitor's vector in one
        round trip (the customer document in a second one, for logged-in visitors only);
        None when Redis cannot be used now."""
        return self.breaker.call(lambda: self._fetch(visitor_id, model), None)

    def _fetch(self, visitor_id: str, model: ScoringModel | None) -> VisitorRead:
        replies = self._profile_and_vector(visitor_id, model)
        if len(replies) > 1 and isinstance(replies[1], NoScriptError):
            self.models.load_user_vector_script()  # a restarted or flushed Redis
            replies = self._profile_and_vector(visitor_id, model)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        visitor = orjson.loads(replies[0]) if replies[0] else None
        vector = np.frombuffer(replies[1], np.float32) if len(replies) > 1 and replies[1] else None
        shared = None
        if visitor is not None:
            shared = visitor.get("shared")
            if visitor.get("user_id"):
                raw = self.client.get(self.keys.customer(visitor["user_id"]))
                shared = orjson.loads(raw) if raw else shared
        return VisitorRead(visitor, shared, vector)

    def _profile_and_vector(self, visitor_id: str, model: ScoringModel | None) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.visitor_profile(visitor_id))
        buckets = model.manifest.get("user_buckets") if model is not None else None
        if buckets:
            self.models.queue_user_vector(pipe, model.version, buckets, model.factors, visitor_id)
        return pipe.execute(raise_on_error=False)


def owned(shared: dict[str, Any] | None) -> list[str]:
    """Items bought or in the cart: cart add-ons never suggest them."""
    if not shared:
        return []
    bought = [line[0] for line in shared.get("purchases", {}).get("items", [])]
    return [*bought, *shared.get("cart", {}).get("items", {})]
