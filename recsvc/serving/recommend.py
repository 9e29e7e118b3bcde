"""Recommendations for a visitor: the strategy chain, filters, re-ranking, reasons.

Strategies, first that applies (Gorse's fallback chain, STYLE.md):

- ``als``: the current model knows the visitor: their vector from Redis;
- ``session``: the model does not know them, but their current session has items it knows,
  and the version has a session model: the session blend (``recsvc.serving.session``);
- ``foldin``: the same visitor when the version has no session model (or
  ``RECSVC_ANONYMOUS_STRATEGY=foldin``): a user vector solved in closed form from their
  recent items (``recsvc.core.foldin``);
- ``popular``: nothing to go on: trending then popular, in the visitor's favourite
  category first when their recent items have one.

Items purchased and items in the cart are left out, as are ``exclude``d ones, items out
of stock (when the catalog knows stock) and, with ``category``, other categories. When
Redis is unreachable (or the breaker is open) the answer comes from the popular lists the
worker holds, with ``"fallback": "popular"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import redis
from redis.exceptions import NoScriptError

from recsvc.clock import Clock
from recsvc.core.explain import explain
from recsvc.core.foldin import fold_in
from recsvc.core.profile import labels_at
from recsvc.core.rerank import rerank
from recsvc.keys import KeySpace
from recsvc.serving.breaker import CircuitBreaker
from recsvc.serving.holder import LoadedModel, ModelHolder
from recsvc.serving.session import current_session, session_candidates, session_evidence
from recsvc.settings import Settings
from recsvc.store.catalog import TILE_FIELDS, CatalogStore
from recsvc.store.models import ModelStore

VERBS = {
    "product_view": "viewed",
    "review_view": "read reviews of",
    "add_to_cart": "added to your cart",
    "purchase": "bought",
    "remove_from_cart": "looked at",
}


@dataclass
class RecommendQuery:
    n: int = 10
    category: str | None = None
    exclude: list[str] = field(default_factory=list)
    in_stock: bool | None = None
    diversity: float = 0.0
    boost_category: str | None = None
    boost: float = 2.0


@dataclass
class History:
    rows: np.ndarray  # (h,) int32 item rows
    weights: np.ndarray  # (h,) float32
    kinds: dict[str, str]  # item id -> its most recent event type


@dataclass
class VisitorState:
    visitor: dict[str, Any] | None
    shared: dict[str, Any] | None
    vector: np.ndarray | None


class Recommender:
    def __init__(
        self,
        client: redis.Redis,
        keys: KeySpace,
        holder: ModelHolder,
        models: ModelStore,
        catalog: CatalogStore,
        breaker: CircuitBreaker,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.client = client
        self.keys = keys
        self.holder = holder
        self.models = models
        self.catalog = catalog
        self.breaker = breaker
        self.settings = settings
        self.clock = clock

    def for_visitor(self, visitor_id: str, query: RecommendQuery) -> dict[str, Any]:
        model = self.holder.current()
        state = self.read_visitor(visitor_id, model)
        if state is None:
            return self._fallback(model, query)
        answer = self._rank(model, state, query) if model else empty_answer()
        answer["stage"] = self._stage(state)
        answer["items"] = self.tiles(answer["items"])
        return answer

    # --- reading ------------------------------------------------------------------------
    def read_visitor(self, visitor_id: str, model: LoadedModel | None) -> VisitorState | None:
        """Profile and model vector in one round trip (the customer document in a second
        one, for logged-in visitors only); None when Redis cannot be used now."""
        return self.breaker.call(lambda: self._fetch(visitor_id, model), None)

    def _fetch(self, visitor_id: str, model: LoadedModel | None) -> VisitorState:
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
        return VisitorState(visitor, shared, vector)

    def _profile_and_vector(self, visitor_id: str, model: LoadedModel | None) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.visitor_profile(visitor_id))
        if model is not None:
            self.models.queue_user_vector(
                pipe, model.version, model.user_buckets, model.factors, visitor_id
            )
        return pipe.execute(raise_on_error=False)

    # --- ranking ------------------------------------------------------------------------
    def _rank(self, model: LoadedModel, state: VisitorState, query: RecommendQuery) -> dict:
        history = _history(state.visitor, model)
        mask = self._allowed(model, state, query)
        session = self._session(model, state)
        if state.vector is not None:
            strategy = "als"
            rows, scores = self._search(model, state.vector, query, mask)
            evidence = self._history_evidence(model, history, rows)
        elif session.size:
            strategy = "session"
            found = session_candidates(model, session, self._width(query), mask)
            rows, scores = self._reranked(model, found.ids, found.scores, query)
            evidence = session_evidence(model, session, rows, found)
        elif history.rows.size:
            strategy = "foldin"
            vector = fold_in(
                model.item_factors,
                model.gram,
                history.rows,
                history.weights,
                model.regularization,
                model.alpha,
            )
            rows, scores = self._search(model, vector, query, mask)
            evidence = self._history_evidence(model, history, rows)
        else:
            return self._popular(model, query, mask, state)
        return {
            "items": self._items(model, rows, scores, evidence, history),
            "strategy": strategy,
            "model_version": model.version,
            "fallback": None,
        }

    def _session(self, model: LoadedModel, state: VisitorState) -> np.ndarray:
        """The visitor's current session when it is to be served by the session model."""
        if model.session is None or self.settings.anonymous_strategy != "session":
            return np.zeros(0, np.int64)
        return current_session(state.visitor, model)

    def _allowed(self, model: LoadedModel, state: VisitorState, query: RecommendQuery):
        return allowed_mask(model, query, owned(state.shared))

    @staticmethod
    def _width(query: RecommendQuery) -> int:
        """Candidates to fetch: more when re-ranking will choose among them."""
        return query.n * 4 if query.diversity > 0 or query.boost_category else query.n

    def _search(self, model: LoadedModel, vector: np.ndarray, query: RecommendQuery, mask):
        rows, scores = model.index.search(vector, self._width(query), mask)
        return self._reranked(model, rows, scores, query)

    def _reranked(self, model: LoadedModel, rows, scores, query: RecommendQuery):
        boost = None
        if query.boost_category:
            code = model.catalog.category_code(query.boost_category)
            boost = {code: query.boost} if code is not None else None
        categories = model.catalog.categories if model.catalog.category_names else None
        return rerank(rows, scores, model.item_factors, categories, query.n, query.diversity, boost)

    def _history_evidence(self, model: LoadedModel, history: History, rows):
        """ALS's decomposition of each item's score over the visitor's recent items."""
        if not (history.rows.size and rows.size):
            return None
        return explain(
            history.rows,
            history.weights,
            model.item_factors,
            model.gram,
            model.regularization,
            model.alpha,
            rows,
        )

    def _items(self, model: LoadedModel, rows, scores, evidence, history) -> list[dict[str, Any]]:
        """Answer items with their reasons; ``evidence`` is (rows, shares), (k, top) each,
        or None."""
        items = []
        for position, (row, score) in enumerate(zip(rows.tolist(), scores.tolist(), strict=True)):
            behind = []
            if evidence is not None:
                for source, share in zip(evidence[0][position], evidence[1][position], strict=True):
                    if source >= 0 and share > 0:
                        behind.append(
                            {"item_id": model.item_ids[source], "share": round(float(share), 3)}
                        )
            items.append(
                {
                    "item_id": model.item_ids[row],
                    "score": round(float(score), 6),
                    "reason": _reason(model.item_ids[row], behind, history),
                    "evidence": behind,
                }
            )
        return items

    def _popular(self, model: LoadedModel, query: RecommendQuery, mask, state: VisitorState):
        favourite = _favourite_category(state.visitor, model) if not query.category else None
        items = popular_items(model, query.n, mask, favourite)
        return {
            "items": items,
            "strategy": "popular",
            "model_version": model.version,
            "fallback": None,
        }

    # --- degrading ----------------------------------------------------------------------
    def _fallback(self, model: LoadedModel | None, query: RecommendQuery) -> dict[str, Any]:
        if model is None:
            answer = empty_answer()
        else:
            mask = np.ones(len(model.item_ids), bool)
            for item_id in query.exclude:
                row = model.row_of.get(item_id)
                if row is not None:
                    mask[row] = False
            answer = {
                "items": popular_items(model, query.n, mask, None),
                "strategy": "popular",
                "model_version": model.version,
            }
        answer.update(fallback="popular", stage=None)
        return answer

    def _stage(self, state: VisitorState) -> str | None:
        if state.visitor is None:
            return None
        shared = state.shared or state.visitor.get("shared")
        return labels_at(state.visitor, shared, self.clock.now(), self.settings)[0]

    def tiles(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Catalog fields for each tile: from the catalog the worker holds for the model's
        items (as fresh as its last poll), in one round trip for the others; without them
        when Redis cannot be read."""
        model = self.holder.current()
        missing = []
        for item in items:
            row = model.row_of.get(item["item_id"]) if model is not None else None
            if row is None or not model.catalog.tiles:
                missing.append(item)
            else:
                item.update(orjson.loads(model.catalog.tiles[row]))
        if missing:
            self.breaker.call(lambda: self._read_tiles(missing), None)
        return items

    def _read_tiles(self, items: list[dict[str, Any]]) -> None:
        catalog = self.catalog.get_many([item["item_id"] for item in items])
        for item in items:
            known = catalog.get(item["item_id"], {})
            item.update({name: known[name] for name in TILE_FIELDS if name in known})


def allowed_mask(
    model: LoadedModel, query: RecommendQuery, leave_out: Iterable[str] = ()
) -> np.ndarray:
    """Item rows a query may return: not ``exclude``d nor in ``leave_out``, in stock (when
    asked, or by default when the catalog knows stock) and of ``category`` when given."""
    mask = np.ones(len(model.item_ids), bool)
    for item_id in (*query.exclude, *leave_out):
        row = model.row_of.get(item_id)
        if row is not None:
            mask[row] = False
    stock_filter = query.in_stock if query.in_stock is not None else model.catalog.knows_stock
    if stock_filter:
        mask &= model.catalog.in_stock
    if query.category:
        code = model.catalog.category_code(query.category)
        mask &= model.catalog.categories == (code if code is not None else -2)
    return mask


def popular_items(
    model: LoadedModel, n: int, mask: np.ndarray, favourite: int | None
) -> list[dict[str, Any]]:
    """Trending then popular items allowed by ``mask``; the ``favourite`` category first.
    Vectorised over the model's precomputed ranking: this runs on every popular answer
    and every fallback."""
    ranked = model.ranked_popular
    allowed = ranked[mask[ranked]]
    if favourite is not None:
        # A stable sort keeps the trending-then-popular order inside each group.
        allowed = allowed[np.argsort(model.catalog.categories[allowed] != favourite, kind="stable")]
    items = []
    for row in allowed[:n].tolist():
        category = int(model.catalog.categories[row])
        if favourite is not None and category == favourite:
            reason = f"popular in {model.catalog.category_names[category]}"
        else:
            reason = "trending" if model.is_trending[row] else "popular"
        items.append(
            {"item_id": model.item_ids[row], "score": None, "reason": reason, "evidence": []}
        )
    return items


def _history(visitor: dict[str, Any] | None, model: LoadedModel) -> History:
    """Rows, event weights (the training weights of their event types) and event types of
    the visitor's recent items the model knows."""
    if not visitor:
        return History(np.zeros(0, np.int32), np.zeros(0, np.float32), {})
    weights = model.manifest.get("weights", {}).get("events", {})
    rows, values, kinds = [], [], {}
    for item_id, kind, _at in visitor.get("recent_items", []):
        row = model.row_of.get(item_id)
        if row is not None:
            rows.append(row)
            values.append(float(weights.get(kind, 1.0)) or 1.0)
            kinds.setdefault(item_id, kind)
    return History(np.array(rows, np.int32), np.array(values, np.float32), kinds)


def owned(shared: dict[str, Any] | None) -> list[str]:
    """Items bought or in the cart: not worth recommending again."""
    if not shared:
        return []
    bought = [line[0] for line in shared.get("purchases", {}).get("items", [])]
    return [*bought, *shared.get("cart", {}).get("items", {})]


def _favourite_category(visitor: dict[str, Any] | None, model: LoadedModel) -> int | None:
    if not visitor:
        return None
    counts = Counter(
        int(model.catalog.categories[model.row_of[item_id]])
        for item_id, _kind, _at in visitor.get("recent_items", [])
        if item_id in model.row_of
    )
    counts.pop(-1, None)
    return counts.most_common(1)[0][0] if counts else None


def _reason(item_id: str, evidence: list[dict[str, Any]], history: History) -> str:
    if not evidence:
        return "recommended for you"
    top = evidence[0]["item_id"]
    verb = VERBS.get(history.kinds.get(top, ""), "looked at")
    # A visitor's own recent items often come back on top (on RetailRocket they are what
    # most carts hold): say so rather than "because you viewed" the item itself.
    return f"you {verb} this recently" if top == item_id else f"because you {verb} {top}"


def empty_answer() -> dict[str, Any]:
    return {"items": [], "strategy": "popular", "model_version": None, "fallback": "popular"}
