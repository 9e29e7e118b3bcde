"""The session model a version ships: fit over the shipped model's items, flattened to
named arrays and rebuilt, recommending exactly as before."""

from __future__ import annotations

import numpy as np

from training.session_artifact import (
    config_from_dict,
    fit_served_sessions,
    session_arrays,
    session_model_from_arrays,
)
from training.session_query import recommend_session
from training.sessions import SessionConfig, TransitionParams, tuned_blend

HOUR = 3600.0
T0 = 1_440_000_000.0


def test_config_survives_its_dict():
    config = tuned_blend()
    assert config_from_dict(config.to_dict()) == config
    assert config_from_dict({"recent": {"weight": 2.0}}) == SessionConfig(
        transitions=None, recent=config_from_dict({"recent": {"weight": 2.0}}).recent
    )
    assert config_from_dict({"recent": {"weight": 2.0}}).recent.weight == 2.0


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


def test_arrays_rebuild_the_same_model(make_log):
    model, _ = fit_served_sessions(visits(make_log), np.array(["a", "b", "c", "d"]), tuned_blend())
    arrays = session_arrays(model)
    assert "walk.indptr" in arrays and "session_positions.data" in arrays
    rebuilt = session_model_from_arrays(
        config_from_dict(model.config.to_dict()), model.items, arrays
    )
    for session in ([0], [3, 0], [0, 1, 2]):
        want, got = recommend_session(model, session, 3), recommend_session(rebuilt, session, 3)
        assert want.ids.tolist() == got.ids.tolist()
        np.testing.assert_array_equal(want.scores, got.scores)
