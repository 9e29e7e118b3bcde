"""Every served strategy behind one interface, and the fallback chains in one place.

A strategy takes a :class:`~recsvc.scoring.model.ScoringModel`, a
:class:`~recsvc.scoring.state.VisitorState` and a :class:`~recsvc.scoring.state.Want`,
and answers a :class:`~recsvc.scoring.state.Ranked`: rows best first, scores, evidence.
The service calls them on states read from the real-time profile; the evaluation calls
the very same objects on states rebuilt from the train log. Each says whether it
:meth:`~Strategy.applies` to a state; a chain answers with the first that does
(Gorse's ``[recommend.fallback]``):

- a visitor (:func:`visitor_chain`): ``blend`` when the model knows them (their long-term
  vector, their session and their own items, :mod:`recsvc.scoring.blend`); ``session``
  when they are in a session of items the session model knows (anonymous visitors;
  ``anonymous="foldin"`` skips it); ``foldin`` when they have recent items (an ALS vector
  solved from them); ``popular`` otherwise, in their favourite category first;
- a cart (:data:`CART_CHAIN`): ``cart`` add-ons when the model knows a cart item, else
  ``popular``;
- an item page (:data:`SIMILAR_CHAIN`): ``similar`` items.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from recsvc.scoring.blend import blend_evidence, blend_parts, combine
from recsvc.scoring.cart import cart_addons
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.session_model import explain_session, recommend_session
from recsvc.scoring.similar import similar_rows
from recsvc.scoring.state import Evidence, Ranked, VisitorState, Want


class Strategy(ABC):
    """One way of ranking items for a state (module docstring)."""

    name: ClassVar[str]

    @abstractmethod
    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        """Whether this strategy has what it needs in ``state``."""

    @abstractmethod
    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        """Up to ``want.k`` allowed rows, best first (ties by row), with evidence."""


def _none(rows: np.ndarray) -> list[list[Evidence]]:
    """No evidence for any of ``rows`` (the want did not ask to explain)."""
    return [[] for _ in range(len(rows))]


def _top(scores: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best ``scores``, best first, equal scores by row."""
    return np.lexsort((rows, -scores))[:k]


class KnownVisitorBlend(Strategy):
    """A visitor the model was fit on: :mod:`recsvc.scoring.blend`, with the weights the
    version ships."""

    name = "blend"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return state.vector is not None

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        params = model.serving.blend
        parts = blend_parts(model, state, want.mask(model.n_items, state), params, want.k)
        scores = combine(parts, params)
        picked = _top(scores, parts.rows, want.k)
        evidence = blend_evidence(model, parts, params, picked) if want.explain else _none(picked)
        return Ranked(
            self.name,
            parts.rows[picked].astype(np.int32),
            scores[picked].astype(np.float32),
            evidence,
        )


class SessionStrategy(Strategy):
    """An anonymous visitor's current session, scored by the session model (the evaluated
    session protocol's function); the item they are on is never returned."""

    name = "session"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return model.session is not None and bool(len(self._items(model, state)))

    @staticmethod
    def _items(model: ScoringModel, state: VisitorState) -> np.ndarray:
        return state.current_session(model.serving.session_gap_seconds)

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        items = self._items(model, state)
        allowed = want.mask(model.n_items, state)
        # The answer depends on these only (the session's items, not their times: its
        # recency weights are by position), so repeated sessions are answered once. The
        # filters go in as a digest: 16 bytes instead of one bit per catalog item.
        filters = hashlib.blake2b(np.packbits(allowed), digest_size=16).digest()
        key = (items.tobytes(), want.k, want.explain, filters)
        return model.answers.get_or_compute(key, lambda: self._rank(model, items, allowed, want))

    def _rank(
        self, model: ScoringModel, items: np.ndarray, allowed: np.ndarray, want: Want
    ) -> Ranked:
        assert model.session is not None
        found = recommend_session(model.session, items, want.k, allowed)
        keep = found.ids >= 0
        rows, scores = found.ids[keep], found.scores[keep]
        if not want.explain:
            return Ranked(self.name, rows, scores, _none(rows))
        width = len(np.unique(items))
        sources, shares = explain_session(model.session, items, rows, found.factors, top=width)
        evidence = [
            [Evidence("session", int(r), float(s)) for r, s in zip(rs, ss, strict=True) if r >= 0]
            for rs, ss in zip(sources.tolist(), shares.tolist(), strict=True)
        ]
        return Ranked(self.name, rows, scores, evidence)


class FoldInStrategy(Strategy):
    """ALS fold-in: a user vector solved from the visitor's recent items, each weighted as
    its event type was in training, searched in the index."""

    name = "foldin"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return bool(len(state.recent))

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        weights = np.array(
            [model.event_weights.get(kind, 1.0) or 1.0 for kind in state.recent_kinds],
            np.float32,
        )
        vector = model.folder.vector(state.recent, weights)
        rows, scores = model.index.search(vector, want.k, want.mask(model.n_items, state))
        evidence = _none(rows)
        if len(rows) and want.explain:
            shares, history = model.folder.shares(state.recent, weights, rows)
            evidence = [
                sorted(
                    (
                        Evidence("history", int(h), float(s))
                        for h, s in zip(history, row, strict=True)
                        if s
                    ),
                    key=lambda e: -e.share,
                )
                for row in shares
            ]
        return Ranked(self.name, rows, scores, evidence)


class PopularStrategy(Strategy):
    """Trending then popular items; with item categories, the visitor's favourite category
    (the most frequent among their recent items) first."""

    name = "popular"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return True

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        mask = want.mask(model.n_items, state)
        ranked = model.ranked_popular
        allowed = ranked[mask[ranked]]
        favourite = _favourite(want.categories, state)
        if favourite is not None:
            # A stable sort keeps the trending-then-popular order inside each group.
            others = want.categories[allowed] != favourite
            allowed = allowed[np.argsort(others, kind="stable")]
        rows = allowed[: want.k]
        evidence = []
        for row in rows.tolist():
            if favourite is not None and want.categories[row] == favourite:
                part = "popular_in_category"
            else:
                part = "trending" if model.is_trending[row] else "popular"
            evidence.append([Evidence(part, -1, 1.0)])
        return Ranked(self.name, rows.astype(np.int32), None, evidence)


def _favourite(categories: np.ndarray | None, state: VisitorState) -> int | None:
    if categories is None or not len(state.recent):
        return None
    counts = Counter(int(code) for code in categories[state.recent] if code >= 0)
    return counts.most_common(1)[0][0] if counts else None


class SimilarItems(Strategy):
    """The items most similar to the one the visitor is on (``state.recent[0]``)."""

    name = "similar"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return bool(len(state.recent))

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        anchor = int(state.recent[0])
        rows, scores = similar_rows(model, anchor, want.k, want.mask(model.n_items, state))
        evidence = [[Evidence("similar", anchor, 1.0)] for _ in range(len(rows))]
        return Ranked(self.name, rows, scores, evidence)


class CartAddons(Strategy):
    """What goes with the cart (:mod:`recsvc.scoring.cart`); never an item in the cart or
    one the visitor bought."""

    name = "cart"

    def applies(self, model: ScoringModel, state: VisitorState) -> bool:
        return bool(len(state.cart))

    def rank(self, model: ScoringModel, state: VisitorState, want: Want) -> Ranked:
        mask = want.mask(model.n_items, state)
        mask[state.cart] = False
        mask[state.purchased] = False
        cart_rows = np.array(list(dict.fromkeys(state.cart.tolist())), np.int64)
        rows, scores, evidence = cart_addons(model, cart_rows, want.k, mask)
        return Ranked(self.name, rows.astype(np.int32), scores, evidence)


BLEND = KnownVisitorBlend()
SESSION = SessionStrategy()
FOLD_IN = FoldInStrategy()
POPULAR = PopularStrategy()
SIMILAR = SimilarItems()
CART = CartAddons()

CART_CHAIN: tuple[Strategy, ...] = (CART, POPULAR)
SIMILAR_CHAIN: tuple[Strategy, ...] = (SIMILAR,)
ANONYMOUS_STRATEGIES = ("session", "foldin")


def visitor_chain(anonymous: str = "session") -> tuple[Strategy, ...]:
    """The chain for a visitor: ``blend``, then ``session`` (unless ``anonymous`` is
    ``"foldin"``), ``foldin``, ``popular``."""
    if anonymous not in ANONYMOUS_STRATEGIES:
        raise ValueError(f"anonymous strategy must be one of {ANONYMOUS_STRATEGIES}")
    middle = (SESSION, FOLD_IN) if anonymous == "session" else (FOLD_IN,)
    return (BLEND, *middle, POPULAR)


def choose(chain: Sequence[Strategy], model: ScoringModel, state: VisitorState) -> Strategy:
    """The first strategy of ``chain`` that applies to ``state``."""
    for strategy in chain:
        if strategy.applies(model, state):
            return strategy
    raise LookupError("no strategy of the chain applies (end a chain with one that always does)")


def recommend(
    chain: Sequence[Strategy], model: ScoringModel, state: VisitorState, want: Want
) -> Ranked:
    """The answer of the first strategy of ``chain`` that applies."""
    return choose(chain, model, state).rank(model, state, want)
