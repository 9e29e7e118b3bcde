"""Recommendations for a visitor: read their state, run the strategy chain, render the answer.

The ranking itself is :mod:`recsvc.scoring.strategies` (the objects the evaluation
measures); this module turns a request into a :class:`~recsvc.scoring.state.Want`
(filters as a mask of allowed items), re-ranks for diversity and category boosts when
asked, and renders rows into items with reasons, evidence and catalog tiles.

When Redis is unreachable (or the breaker is open) the answer comes from the popular
lists the worker holds, with ``"fallback": "popular"``.

What the answer may say about the visitor follows the request's
:class:`~recsvc.serving.disclosure.Disclosure`: a request that does not prove the visitor
(a public key without the visitor's identity token) still gets recommendations, ranked
by the visitor's taste as on any personalised page, but never one of the visitor's own
items (viewed, carted, bought: ``exclude_seen`` is forced), no evidence naming them, no
reason that refers to them ("in your cart", "because you viewed ...") and no journey stage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsvc.clock import Clock
from recsvc.core.profile import labels_at
from recsvc.scoring.rerank import rerank
from recsvc.scoring.state import Evidence, Ranked, VisitorState, Want
from recsvc.scoring.strategies import POPULAR, Strategy, recommend, visitor_chain
from recsvc.serving.disclosure import FULL, Disclosure
from recsvc.serving.holder import LoadedModel, ModelHolder
from recsvc.serving.tiles import Tiles
from recsvc.serving.visitors import VisitorRead, VisitorReader
from recsvc.settings import Settings

VERBS = {
    "product_view": "viewed",
    "review_view": "read reviews of",
    "add_to_cart": "added to your cart",
    "purchase": "bought",
    "remove_from_cart": "looked at",
}
# Evidence entries shown per item (the largest shares).
EVIDENCE_SHOWN = 3


@dataclass
class RecommendQuery:
    n: int = 10
    category: str | None = None
    exclude: list[str] = field(default_factory=list)
    in_stock: bool | None = None
    exclude_seen: bool = False
    diversity: float = 0.0
    boost_category: str | None = None
    boost: float = 2.0

    @property
    def reranks(self) -> bool:
        return self.diversity > 0 or bool(self.boost_category)


class Recommender:
    def __init__(
        self,
        reader: VisitorReader,
        tiles: Tiles,
        holder: ModelHolder,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.reader = reader
        self.tiles = tiles
        self.holder = holder
        self.settings = settings
        self.clock = clock
        self.chain: tuple[Strategy, ...] = visitor_chain(settings.anonymous_strategy)

    def for_visitor(
        self, visitor_id: str, query: RecommendQuery, disclosure: Disclosure = FULL
    ) -> dict[str, Any]:
        model = self.holder.current()
        read = self.reader.read(visitor_id, model)
        if read is None:
            return fallback_answer(model, query)
        personal = disclosure.owns(read.visitor)
        if not personal:
            query = dataclasses.replace(query, exclude_seen=True)
        answer = empty_answer()
        if model is not None:
            state = read.state(model)
            ranked = recommend(self.chain, model, state, want_of(model, query))
            answer = answer_of(model, ranked, state, query, personal)
        answer["stage"] = self._stage(read) if disclosure.labels else None
        answer["items"] = self.tiles.add(answer["items"])
        return answer

    def _stage(self, read: VisitorRead) -> str | None:
        if read.visitor is None:
            return None
        shared = read.shared or read.visitor.get("shared")
        return labels_at(read.visitor, shared, self.clock.now(), self.settings)[0]


def want_of(model: LoadedModel, query: RecommendQuery) -> Want:
    """The request as a :class:`Want`: its filters as allowed rows, more candidates when
    the answer is re-ranked, the catalog's categories for the popular favourite."""
    categories = model.catalog.categories if model.catalog.category_names else None
    return Want(
        n=query.n,
        allowed=allowed_mask(model, query),
        exclude_seen=query.exclude_seen,
        width=query.n * 4 if query.reranks else query.n,
        categories=None if query.category else categories,
    )


def allowed_mask(model: LoadedModel, query: RecommendQuery) -> np.ndarray:
    """Item rows a query may return: not ``exclude``d, in stock (when asked, or by default
    when the catalog knows stock) and of ``category`` when given."""
    mask = np.ones(len(model.item_ids), bool)
    for item_id in query.exclude:
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


def answer_of(
    model: LoadedModel,
    ranked: Ranked,
    state: VisitorState,
    query: RecommendQuery,
    personal: bool = True,
) -> dict[str, Any]:
    """The documented answer: items (re-ranked when asked) with reasons and evidence;
    without ``personal``, none that names or refers to an item of the visitor's."""
    rows, scores = ranked.rows, ranked.scores
    evidence = dict(zip(rows.tolist(), ranked.evidence, strict=True))
    if scores is not None and query.reranks:
        rows, scores = _reranked(model, rows, scores, query)
    rows = rows[: query.n]
    kinds = dict(zip(state.recent.tolist(), state.recent_kinds, strict=True))
    items = []
    for position, row in enumerate(rows.tolist()):
        behind = evidence[row] if personal else [e for e in evidence[row] if e.row < 0]
        items.append(
            {
                "item_id": model.item_ids[row],
                "score": None if scores is None else round(float(scores[position]), 6),
                "reason": reason(model, ranked.strategy, row, behind, kinds),
                "evidence": shown_evidence(model, behind),
            }
        )
    return {
        "items": items,
        "strategy": ranked.strategy,
        "model_version": model.version,
        "fallback": None,
    }


def _reranked(model: LoadedModel, rows, scores, query: RecommendQuery):
    boost = None
    if query.boost_category:
        code = model.catalog.category_code(query.boost_category)
        boost = {code: query.boost} if code is not None else None
    categories = model.catalog.categories if model.catalog.category_names else None
    return rerank(rows, scores, model.item_factors, categories, query.n, query.diversity, boost)


def shown_evidence(model: LoadedModel, behind: list[Evidence]) -> list[dict[str, Any]]:
    """The largest positive contributions, as the API shows them."""
    shown = []
    for entry in behind[:EVIDENCE_SHOWN]:
        if entry.share <= 0:
            break
        item = {"part": entry.part, "share": round(entry.share, 3)}
        if entry.row >= 0:
            item["item_id"] = model.item_ids[entry.row]
        shown.append(item)
    return shown


def reason(
    model: LoadedModel, strategy: str, row: int, behind: list[Evidence], kinds: dict[int, str]
) -> str:
    """One line a storefront may show: what the largest contribution was."""
    if strategy == "cart":
        lists = [entry for entry in behind if entry.part == "lists"]
        return f"goes with {model.item_ids[lists[0].row]}" if lists else "goes with your cart"
    if not behind:
        return "recommended for you"
    top = behind[0]
    if top.part in ("popular", "trending"):
        return top.part
    if top.part == "popular_in_category":
        return f"popular in {model.catalog.category_names[int(model.catalog.categories[row])]}"
    own = {entry.part for entry in behind if entry.row == row}
    if "cart" in own:
        return "in your cart"
    if "purchased" in own:
        return "you bought this before"
    if top.row < 0:
        return "recommended for you"
    source = model.item_ids[top.row]
    if strategy == "similar":
        return f"similar to {source}"
    verb = VERBS.get(kinds.get(top.row, ""), "looked at")
    # A visitor's own recent items often come back on top (on RetailRocket they are what
    # most carts hold): say so rather than "because you viewed" the item itself.
    return f"you {verb} this recently" if top.row == row else f"because you {verb} {source}"


def fallback_answer(model: LoadedModel | None, query: RecommendQuery) -> dict[str, Any]:
    """Popular items from the worker's memory, for when the visitor cannot be read."""
    if model is None:
        answer = empty_answer()
    else:
        ranked = POPULAR.rank(
            model, VisitorState(), Want(n=query.n, allowed=allowed_mask(model, query))
        )
        answer = answer_of(model, ranked, VisitorState(), query)
    answer.update(fallback="popular", stage=None)
    return answer


def empty_answer() -> dict[str, Any]:
    return {"items": [], "strategy": "popular", "model_version": None, "fallback": "popular"}
