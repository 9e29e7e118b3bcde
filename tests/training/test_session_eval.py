"""Next-item evaluation as served: each prefix read back from the profile the events built."""

from __future__ import annotations

import numpy as np

from recsvc.scoring.session_model import SessionConfig, TransitionParams
from training.session_eval import evaluate_next_item, profile_prefixes
from training.sessions import Sessions, fit_session_model, next_item_cases

HOUR = 3600.0


def test_profile_prefixes_hold_each_item_once_at_its_latest_view():
    sessions = Sessions.of([[0, 1, 0, 2], [3, 4]], 5, start=1.7e9, apart=2 * HOUR)
    prefixes, targets = profile_prefixes(sessions)
    rows = [prefixes.item[prefixes.offsets[n] : prefixes.offsets[n + 1]].tolist() for n in range(4)]
    # The protocol's own prefixes keep the repeat: [0, 1, 0]; the profile keeps 0 once.
    assert rows == [[0], [0, 1], [1, 0], [3]]
    assert targets.tolist() == [1, 0, 2, 4]
    protocol, protocol_targets = next_item_cases(sessions, 50)
    assert protocol_targets.tolist() == targets.tolist()
    assert protocol.item[protocol.offsets[2] : protocol.offsets[3]].tolist() == [0, 1, 0]


def test_a_session_after_an_hour_apart_starts_afresh():
    sessions = Sessions.of([[0, 1, 2]], 3, start=1.7e9, apart=HOUR, step=2 * HOUR)
    prefixes, _ = profile_prefixes(sessions)
    # Two hours between views: each view is a session of its own to the service.
    assert np.diff(prefixes.offsets).tolist() == [1, 1]


def test_served_prefixes_score_as_the_protocol_without_repeats():
    train = Sessions.of([[0, 1], [1, 2], [2, 3]] * 5, 4, start=1e9)
    model = fit_session_model(train, SessionConfig(transitions=TransitionParams(steps=1)))
    test = Sessions.of([[0, 1, 2, 3]], 4, start=2e9)
    served = evaluate_next_item("served", model, test, ks=(1,), as_served=True, latency_sample=0)
    plain = evaluate_next_item("plain", model, test, ks=(1,), latency_sample=0)
    assert served.metrics == plain.metrics and served.metrics["recall@1"] == 1.0
