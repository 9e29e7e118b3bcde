"""The contract every served strategy keeps, written once and run for each (implicit's
``RecommenderBaseTestMixin``, lkpy's ``ScorerTests``), on one small real model: ALS and
the session model fit on a log with planted clusters; then each strategy's own promises
and the fallback chains."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recsvc.scoring.model import ScoringModel
from recsvc.scoring.session_model import tuned_blend
from recsvc.scoring.state import VisitorState, Want
from recsvc.scoring.strategies import (
    BLEND,
    CART,
    CART_CHAIN,
    FOLD_IN,
    POPULAR,
    SESSION,
    SIMILAR,
    Strategy,
    choose,
    visitor_chain,
)
from training.interactions import EVENT_CODES, Interactions
from training.matrix import build_matrix
from training.pipeline import similar_by_factors
from training.scorers import ALSScorer
from training.served import ranked_ids
from training.sessions import Sessions, fit_session_model
from training.weights import load_weights

ITEMS, USERS, CLUSTERS = 120, 200, 6
HOUR = 3600.0
T0 = 1_700_000_000.0


def planted_log(seed: int = 0) -> Interactions:
    """Users view, cart and buy mostly within their cluster's items."""
    rng = np.random.default_rng(seed)
    per = ITEMS // CLUSTERS
    user = np.repeat(np.arange(USERS), 20)
    own = (user % CLUSTERS) * per + rng.integers(0, per, len(user))
    item = np.where(rng.random(len(user)) < 0.9, own, rng.integers(0, ITEMS, len(user)))
    kinds = np.array([EVENT_CODES[n] for n in ("product_view", "add_to_cart", "purchase")])
    event = kinds[rng.choice(3, len(user), p=[0.8, 0.15, 0.05])].astype(np.int8)
    time = T0 + np.sort(rng.random(len(user))) * 30 * 86_400
    return Interactions(
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        time=time,
        event=event,
        value=np.ones(len(user), np.float32),
        users=np.array([f"u{n}" for n in range(USERS)]),
        items=np.array([f"i{n}" for n in range(ITEMS)]),
    )


@pytest.fixture(scope="module")
def fitted():
    log = planted_log()
    matrix = build_matrix(log, load_weights())
    als = ALSScorer(factors=8, iterations=8, regularization=0.1, alpha=10.0, num_threads=1)
    als.fit(matrix)
    item_ids = matrix.items.ids(np.arange(matrix.shape[1])).tolist()
    rng = np.random.default_rng(1)
    per = ITEMS // CLUSTERS
    lists = []
    for _ in range(400):  # sessions that walk through one cluster
        cluster = rng.integers(0, CLUSTERS)
        lists.append(list(cluster * per + rng.integers(0, per, rng.integers(2, 6))))
    columns = matrix.items.rows([f"i{n}" for n in range(ITEMS)])
    sessions = Sessions.of([[int(columns[i]) for i in s] for s in lists], len(item_ids))
    session = fit_session_model(sessions, tuned_blend())
    similar, similar_scores = similar_by_factors(als.item_factors, 10)
    model = ScoringModel.build(
        "contract",
        {"params": als.params(), "weights": matrix.config.to_dict()},
        item_ids,
        als.item_factors,
        similar,
        similar_scores,
        {
            "popular": ranked_ids(
                np.bincount(matrix.matrix.indices, minlength=len(item_ids)).astype(float), item_ids
            )
        },
    )
    model.session = session
    return model, matrix, als


def rows_of(model: ScoringModel, *ids: str) -> np.ndarray:
    return np.array([model.row_of[i] for i in ids], np.int64)


def visitor(model: ScoringModel, vector: np.ndarray | None) -> VisitorState:
    """A visitor of cluster 0 browsing now, with an older item of cluster 3, one item in
    the cart and one bought."""
    recent = rows_of(model, "i2", "i5", "i7", "i60")
    return VisitorState(
        vector=vector,
        recent=recent,
        recent_kinds=("product_view", "add_to_cart", "product_view", "product_view"),
        recent_times=np.array([T0 + 300, T0 + 200, T0 + 100, T0 - 5 * HOUR]),
        recent_touches=np.array([1, 2, 1, 3], np.int32),
        cart=rows_of(model, "i5"),
        purchased=rows_of(model, "i9"),
    )


class StrategyContract:
    """What every strategy promises; a subclass names the strategy and a state it
    applies to."""

    strategy: Strategy

    def state(self, model: ScoringModel, als: ALSScorer) -> VisitorState:
        raise NotImplementedError

    def rank(self, fitted, **want) -> tuple:
        model, _matrix, als = fitted
        state = self.state(model, als)
        return model, state, self.strategy.rank(model, state, Want(**want))

    def test_it_applies_to_its_state(self, fitted):
        model, _matrix, als = fitted
        assert self.strategy.applies(model, self.state(model, als))

    @pytest.mark.parametrize("n", [1, 5, 17])
    def test_n_is_honoured(self, fitted, n):
        _model, _state, ranked = self.rank(fitted, n=n)
        assert len(ranked) == n == len(ranked.evidence)
        assert ranked.strategy == self.strategy.name

    def test_a_wider_want_returns_more_candidates_best_first(self, fitted):
        _model, _state, ranked = self.rank(fitted, n=5, width=20)
        assert len(ranked) == 20
        if ranked.scores is not None:
            assert np.all(np.diff(ranked.scores) <= 0)

    def test_filters_are_respected(self, fitted):
        model = fitted[0]
        allowed = np.random.default_rng(4).random(model.n_items) < 0.4
        _model, _state, ranked = self.rank(fitted, n=15, allowed=allowed)
        assert len(ranked) > 0 and allowed[ranked.rows].all()

    def test_nothing_allowed_returns_nothing(self, fitted):
        model = fitted[0]
        _model, _state, ranked = self.rank(fitted, n=5, allowed=np.zeros(model.n_items, bool))
        assert len(ranked) == 0

    def test_no_own_item_when_seen_is_excluded(self, fitted):
        _model, state, ranked = self.rank(fitted, n=15, exclude_seen=True)
        assert not set(ranked.rows.tolist()) & set(state.own_items().tolist())

    def test_no_row_twice(self, fitted):
        _model, _state, ranked = self.rank(fitted, n=30)
        assert len(set(ranked.rows.tolist())) == len(ranked)

    def test_evidence_sums_and_names_the_visitors_items(self, fitted):
        _model, state, ranked = self.rank(fitted, n=12)
        behind = {*state.own_items().tolist(), -1}
        for entries in ranked.evidence:
            if entries:
                assert sum(e.share for e in entries) == pytest.approx(1.0, abs=1e-6)
                assert {e.row for e in entries} <= behind
                shares = [e.share for e in entries]
                assert shares == sorted(shares, reverse=True)

    def test_explaining_changes_nothing_but_the_evidence(self, fitted):
        _m, _s, explained = self.rank(fitted, n=12)
        _m, _s, bare = self.rank(fitted, n=12, explain=False)
        assert explained.rows.tolist() == bare.rows.tolist()
        if explained.scores is not None:
            assert explained.scores.tolist() == bare.scores.tolist()

    def test_deterministic(self, fitted):
        _m, _s, first = self.rank(fitted, n=10)
        _m, _s, again = self.rank(fitted, n=10)
        assert first.rows.tolist() == again.rows.tolist()
        if first.scores is not None:
            assert first.scores.tolist() == again.scores.tolist()
        assert first.evidence == again.evidence


class TestBlend(StrategyContract):
    strategy = BLEND

    def state(self, model, als):
        return visitor(model, als.user_factors[0])


class TestSession(StrategyContract):
    strategy = SESSION

    def state(self, model, als):
        return visitor(model, None)


class TestFoldIn(StrategyContract):
    strategy = FOLD_IN

    def state(self, model, als):
        return visitor(model, None)


class TestPopular(StrategyContract):
    strategy = POPULAR

    def state(self, model, als):
        return visitor(model, None)


class TestSimilar(StrategyContract):
    strategy = SIMILAR

    def state(self, model, als):
        return VisitorState.viewing(model.row_of["i3"])


class TestCartAddons(StrategyContract):
    strategy = CART

    def state(self, model, als):
        return VisitorState.with_cart(rows_of(model, "i3", "i4"))


# --- each strategy's own promises ---------------------------------------------------------
def test_the_blend_brings_back_the_cart_and_splits_its_session_share_over_items(fitted):
    model, _matrix, als = fitted
    state = visitor(model, als.user_factors[0])
    ranked = BLEND.rank(model, state, Want(n=10))
    by_row = dict(zip(ranked.rows.tolist(), ranked.evidence, strict=True))
    cart = int(state.cart[0])
    assert cart in by_row and {e.part for e in by_row[cart]} >= {"cart", "recent"}
    parts = {e.part for entries in ranked.evidence for e in entries}
    assert {"long_term", "session", "recent"} <= parts
    session_rows = {e.row for entries in ranked.evidence for e in entries if e.part == "session"}
    assert session_rows - {-1} <= set(state.recent.tolist())


def test_the_blend_without_its_session_and_own_parts_is_the_long_term_vector(fitted):

    model, _matrix, als = fitted
    state = visitor(model, als.user_factors[0])
    params = replace(model.serving.blend, session=0.0, recent=0.0, cart=0.0, purchased=0.0)
    alone = replace(model, manifest={**model.manifest, "serving": {"blend": params.__dict__}})
    ranked = BLEND.rank(alone, state, Want(n=10))
    rows, _ = model.index.search(als.user_factors[0], 10)
    assert ranked.rows.tolist() == rows.tolist()


def test_the_session_strategy_never_returns_the_item_being_viewed(fitted):
    model = fitted[0]
    state = visitor(model, None)
    for n in (5, 40):
        assert int(state.recent[0]) not in SESSION.rank(model, state, Want(n=n)).rows


def test_the_current_session_ends_at_the_first_long_gap(fitted):
    model = fitted[0]
    state = visitor(model, None)
    # i60 was five hours before the others: not in the session.
    assert state.current_session(HOUR).tolist() == rows_of(model, "i7", "i5", "i2").tolist()


def test_popular_puts_the_favourite_category_first(fitted):
    model = fitted[0]
    categories = (np.arange(model.n_items) % 3).astype(np.int32)
    state = VisitorState(
        recent=rows_of(model, "i0", "i3", "i6"),
        recent_kinds=("product_view",) * 3,
        recent_times=np.zeros(3),
        recent_touches=np.ones(3, np.int32),
    )
    favourite = int(np.bincount(categories[state.recent]).argmax())
    ranked = POPULAR.rank(model, state, Want(n=5, categories=categories))
    assert (categories[ranked.rows] == favourite).all()
    assert ranked.scores is None and ranked.evidence[0][0].part == "popular_in_category"


def test_cart_add_ons_never_suggest_the_cart_or_what_was_bought(fitted):
    model = fitted[0]
    state = VisitorState(cart=rows_of(model, "i3"), purchased=rows_of(model, "i4"))
    ranked = CART.rank(model, state, Want(n=40))
    assert not {model.row_of["i3"], model.row_of["i4"]} & set(ranked.rows.tolist())


def test_chains_fall_back_in_order(fitted):
    model, _matrix, als = fitted
    known, anonymous = visitor(model, als.user_factors[0]), visitor(model, None)
    chain = visitor_chain("session")
    assert choose(chain, model, known) is BLEND
    assert choose(chain, model, anonymous) is SESSION
    assert choose(visitor_chain("foldin"), model, anonymous) is FOLD_IN
    assert choose(chain, model, VisitorState()) is POPULAR
    assert choose(CART_CHAIN, model, VisitorState()) is POPULAR
    with pytest.raises(ValueError):
        visitor_chain("als")


def test_a_known_visitor_without_a_profile_is_ranked_by_their_vector_even_at_weight_0(fitted):
    from dataclasses import asdict, replace

    model, _matrix, als = fitted
    params = replace(model.serving.blend, long_term=0.0)
    tuned = replace(model, manifest={**model.manifest, "serving": {"blend": asdict(params)}})
    ranked = BLEND.rank(tuned, VisitorState(vector=als.user_factors[0]), Want(n=10))
    rows, _ = model.index.search(als.user_factors[0], 10)
    assert ranked.rows.tolist() == rows.tolist()


def test_a_repeated_session_is_answered_once_per_version(fitted):
    model = replace(fitted[0], answer_cache_size=100)
    state = visitor(model, None)
    first = SESSION.rank(model, state, Want(n=5))
    # Another visitor with the same session items at other times: the same answer, cached.
    later = replace(state, recent_times=state.recent_times + 86_400.0)
    again = SESSION.rank(model, later, Want(n=5))
    assert again is first and model.answers.hits == 1
    uncached = SESSION.rank(fitted[0], state, Want(n=5))
    assert uncached.rows.tolist() == first.rows.tolist()
    assert uncached.evidence == first.evidence


def test_a_session_asked_with_other_filters_or_sizes_is_answered_anew(fitted):
    model = replace(fitted[0], answer_cache_size=100)
    state = visitor(model, None)
    first = SESSION.rank(model, state, Want(n=5))
    allowed = np.ones(model.n_items, bool)
    allowed[first.rows[0]] = False
    filtered = SESSION.rank(model, state, Want(n=5, allowed=allowed))
    assert int(first.rows[0]) not in filtered.rows
    assert len(SESSION.rank(model, state, Want(n=8)).rows) == 8
    assert model.answers.hits == 0 and model.answers.misses == 3


def test_a_new_version_starts_with_an_empty_cache(fitted):
    model = replace(fitted[0], answer_cache_size=100)
    SESSION.rank(model, visitor(model, None), Want(n=5))
    newer = replace(model, version="newer")
    assert len(model.answers) == 1 and len(newer.answers) == 0


def test_the_blend_scores_a_session_once_for_every_visitor_in_it(fitted):
    model, _matrix, als = fitted
    cached = replace(model, answer_cache_size=100)
    state = visitor(model, als.user_factors[0])
    first = BLEND.rank(cached, state, Want(n=5))
    # Another known visitor (another vector, another cart) in the same session: the
    # session part is read from the cache, the answer is still this visitor's own.
    other = replace(state, vector=als.user_factors[1], cart=state.cart[:0])
    second = BLEND.rank(cached, other, Want(n=5))
    assert cached.answers.hits == 1 and cached.answers.misses == 1
    for ranked, asked in ((first, state), (second, other)):
        uncached = BLEND.rank(model, asked, Want(n=5))
        assert ranked.rows.tolist() == uncached.rows.tolist()
        assert ranked.evidence == uncached.evidence
