"""Sessions: building and splitting by the published protocol, next-item metrics, and
every session recommender recovering a planted transition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from session_support import CONFIGS, HOUR, T0, make_sessions, planted_sessions

from recsvc.scoring.session_model import (
    SessionConfig,
    TransitionParams,
    WalkParams,
    recommend_session,
    tuned_blend,
)
from training.session_eval import conservative_ranks, evaluate_next_item, next_item_metrics
from training.sessions import (
    Sessions,
    build_sessions,
    filter_sessions,
    fit_served_sessions,
    fit_session_model,
    fit_walk,
    keep_top_per_row,
    next_item_cases,
    session_split,
    split_sessions,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/retailrocket/events.csv.gz"


def as_lists(sessions: Sessions) -> list[list[str]]:
    return [list(sessions.items[sessions.session(s)]) for s in range(len(sessions))]


def test_sessions_cut_after_an_hour_of_inactivity_and_drop_consecutive_repeats(make_log) -> None:
    log = make_log(
        [
            ("v", "a", T0, "product_view"),
            ("v", "a", T0 + 10, "product_view"),  # consecutive repeat: dropped
            ("v", "b", T0 + 20, "product_view"),
            ("v", "a", T0 + 30, "product_view"),  # not consecutive: kept
            ("v", "x", T0 + 30 + HOUR, "add_to_cart"),  # exactly 1 h: no cut; not a view
            ("v", "c", T0 + 30 + 2 * HOUR, "product_view"),  # 1 h after the cart: no cut
            ("v", "d", T0 + 30 + 3 * HOUR + 1, "product_view"),  # 1 h + 1 s: cut
            ("w", "b", T0 + 5, "product_view"),
        ]
    )
    sessions = build_sessions(log)
    assert as_lists(sessions) == [["a", "b", "a", "c"], ["b"], ["d"]]
    assert list(sessions.starts) == sorted(sessions.starts)


def test_filtering_repeats_until_nothing_changes() -> None:
    # x has 1 event and goes; that leaves [r] of length 1, which goes; r is then down
    # to 4 events and goes; that leaves four sessions [a], which go. [a, b] x 5 stays.
    names = ["a", "b", "r", "x"]
    lists = [["x", "r"]] + [["r", "a"]] * 4 + [["a", "b"]] * 5
    sessions = make_sessions([[names.index(i) for i in s] for s in lists], len(names))
    kept, rounds = filter_sessions(sessions, min_length=2, min_item_support=5)
    assert as_lists(kept) == [["i0", "i1"]] * 5  # a, b
    assert rounds == 4


def test_filtering_keeps_a_stable_log_unchanged() -> None:
    sessions = make_sessions([[0, 1]] * 5, 2)
    kept, rounds = filter_sessions(sessions)
    assert rounds == 1 and kept.n_events == 10


def test_a_session_running_over_the_cutoff_stays_in_train_cut_there() -> None:
    sessions = make_sessions([[0, 1, 2], [1, 2]], 3, start=T0)
    cutoff = T0 + 90.0  # inside the first session (events at +0, +60, +120)
    train, test = split_sessions(sessions, cutoff)
    assert [list(train.session(s)) for s in range(len(train))] == [[0, 1]]
    assert [list(test.session(s)) for s in range(len(test))] == [[1, 2]]


def test_test_items_missing_from_train_are_removed_then_short_sessions() -> None:
    train = [[0, 1], [1, 2]]
    test = [[0, 3, 1], [3, 2]]  # item 3 is new: [0, 1] stays, [2] goes
    sessions = make_sessions(train + test, 4)
    split = session_split(sessions, float(sessions.starts[2]))
    assert list(split.train.items) == ["i0", "i1", "i2"]
    assert [list(split.test.items[split.test.session(0)])] == [["i0", "i1"]]
    assert len(split.test) == 1 and split.report["predictions"] == 1


def test_next_item_cases_and_metrics_on_a_hand_example() -> None:
    sessions = make_sessions([[0, 1, 2], [2, 0]], 3)
    prefixes, targets = next_item_cases(sessions, max_history=50)
    assert [
        list(prefixes.item[prefixes.offsets[r] : prefixes.offsets[r + 1]])
        for r in range(len(prefixes))
    ] == [[0], [0, 1], [2]]
    assert list(targets) == [1, 2, 0]
    short, _ = next_item_cases(sessions, max_history=1)
    assert list(short.item) == [0, 1, 2]
    # Ranks 1, 3 and (tied with two others) 3: ties count against the target.
    scores = np.array([[0.0, 9.0, 1.0], [5.0, 4.0, 3.0], [1.0, 1.0, 1.0]])
    ranks = conservative_ranks(scores, np.array([1, 2, 0]))
    assert list(ranks) == [1, 3, 3]
    metrics = next_item_metrics(ranks, (1, 3))
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@3"] == pytest.approx(1.0)
    assert metrics["mrr@3"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_recommender_recovers_a_planted_transition(name: str) -> None:
    train = planted_sessions()
    model = fit_session_model(train, CONFIGS[name])
    popular = fit_session_model(train, SessionConfig(transitions=None))
    ids = recommend_session(model, [7, 0], k=3).ids
    assert 1 in ids and 0 not in ids  # B comes back; A, being viewed, never does
    test = make_sessions([[9, 0, 1], [0, 1]] * 10, 30, start=T0 + 1e7)
    result = evaluate_next_item(name, model, test, ks=(1,), latency_sample=5)
    baseline = evaluate_next_item("popular", popular, test, ks=(1,), latency_sample=0)
    assert result.metrics["recall@1"] > baseline.metrics["recall@1"]
    assert result.metrics["recall@1"] >= 0.5 and result.latency_ms["p99"] > 0


@pytest.mark.slow
def test_retailrocket_sessions_match_the_published_preprocessing() -> None:
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    from training.loaders import load_events
    from training.protocols import RETAILROCKET_SESSIONS_END

    interactions, _ = load_events(DATA, "retailrocket")
    sessions, _ = filter_sessions(build_sessions(interactions))
    assert sessions.lengths.min() >= 2
    assert np.bincount(sessions.item)[np.unique(sessions.item)].min() >= 5
    train, test = split_sessions(sessions, RETAILROCKET_SESSIONS_END - 7 * 86_400)
    # The reference script's train_full / test files on this log.
    assert (len(train), train.n_events, len(np.unique(train.item))) == (196_234, 750_832, 36_824)
    assert (len(test), test.n_events) == (8_036, 29_148)
    assert train.time.max() < test.starts.min()


def test_the_walk_reuses_the_rules_only_when_they_are_built_alike() -> None:
    train = planted_sessions()
    walk = WalkParams(backward=0.5, gap_power=0.5, max_rules=3)
    same = SessionConfig(transitions=TransitionParams(backward=0.5, gap_power=0.5), walk=walk)
    other = SessionConfig(transitions=TransitionParams(), walk=walk)
    alone = fit_walk(train, 30, walk).toarray()
    for config in (same, other):
        model = fit_session_model(train, config)
        np.testing.assert_allclose(model.walk.toarray(), alone, rtol=1e-6)
    assert ((alone > 0).sum(axis=1) <= 3).all()


def test_keep_top_per_row_breaks_ties_by_the_lower_column() -> None:
    matrix = sp.csr_matrix(
        np.array(
            [
                [0.0, 2.0, 1.0, 2.0, 3.0],  # 3 at col 4, then the 2 of col 1 before col 3
                [1.0, 0.0, 0.0, 0.0, 0.0],  # shorter than k: kept whole
                [5.0, 5.0, 5.0, 5.0, 0.0],  # all tied: the two lowest columns
            ],
            dtype=np.float32,
        )
    )
    kept = keep_top_per_row(matrix, 2).toarray()
    assert kept.tolist() == [
        [0, 2, 0, 0, 3],
        [1, 0, 0, 0, 0],
        [5, 5, 0, 0, 0],
    ]
    assert keep_top_per_row(matrix, 0).nnz == 0


def visits(make_log):
    """Five visitors, each a session a -> b -> c, then an hour later a session d -> a."""
    rows = []
    for v in range(5):
        start = T0 + v * 10 * HOUR
        for n, item in enumerate("abc"):
            rows.append((f"v{v}", item, start + 60 * n, "product_view"))
        rows.append((f"v{v}", "d", start + 2 * HOUR, "product_view"))
        rows.append((f"v{v}", "a", start + 2 * HOUR + 60, "product_view"))
        rows.append((f"v{v}", "x", start + 2 * HOUR + 90, "add_to_cart"))  # not a view
    return make_log(rows)


def test_sessions_are_fit_over_the_shipped_items_in_their_order(make_log):
    log = visits(make_log)
    shipped = np.array(["c", "b", "a"])  # the model's rows; d is not in the model
    rules = SessionConfig(transitions=TransitionParams(steps=1))
    model, report = fit_served_sessions(log, shipped, rules)
    assert list(model.items) == ["c", "b", "a"]
    assert report["sessions"]["sessions"] == 5  # d -> a lost d and is too short
    # b (row 1) follows a (row 2); c (row 0) follows b.
    assert recommend_session(model, [2], 1).ids.tolist() == [1]
    assert recommend_session(model, [2, 1], 1).ids.tolist() == [0]


def test_no_session_of_two_known_items_means_no_model(make_log):
    model, report = fit_served_sessions(visits(make_log), np.array(["a"]), tuned_blend())
    assert model is None and report["sessions"]["sessions"] == 0
