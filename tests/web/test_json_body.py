"""Strict JSON bodies: what ``parse_json`` refuses, and that nesting is measured right."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsvc.web.json_body import InvalidJson, nesting_depth, parse_json


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="100000-deep"),
        pytest.param(b"[" * 33 + b"]" * 33, id="33-deep"),
        pytest.param(b'{"a":' * 40 + b"1" + b"}" * 40, id="40-deep-objects"),
        pytest.param(b'"\\ud800"', id="lone-high-surrogate"),
        pytest.param(b'{"a": "x\\udc00"}', id="lone-low-surrogate"),
        pytest.param(b'"\xff"', id="not-utf8"),
        pytest.param(b"1" + b"0" * 5000, id="5000-digit-int"),
        pytest.param(b"1e400", id="1e400"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b"[Infinity]", id="infinity"),
        pytest.param(b"{", id="truncated"),
    ],
)
def test_refused(raw):
    with pytest.raises(InvalidJson):
        parse_json(raw, max_depth=32)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"[" * 32 + b"]" * 32, json.loads("[" * 32 + "]" * 32)),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        (b"18446744073709551615", 18446744073709551615),
        (b"18446744073709551616", 1.8446744073709552e19),  # past 64 bits: a float
        ('{"k": "é"}'.encode(), {"k": "é"}),
    ],
    ids=["32-deep", "surrogate-pair", "u64-max", "u64-max+1", "utf8"],
)
def test_accepted(raw, value):
    assert parse_json(raw, max_depth=32) == value


def test_text_is_parsed_too():
    assert parse_json('{"a": [1]}') == {"a": [1]}


def reference_depth(value):
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


# Integers orjson reads exactly: past 64 bits it gives a float (test_accepted), which
# would fail the round trip below for a reason that has nothing to do with depth.
exact_integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | exact_integers | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(0, 12))
def test_nesting_depth_counts_levels_up_to_one_past_the_limit(value, limit):
    assert nesting_depth(value, limit) == min(reference_depth(value), limit + 1)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(0, 12))
def test_parse_json_refuses_exactly_what_nests_deeper_than_the_limit(value, limit):
    raw = json.dumps(value).encode()
    if reference_depth(value) > limit:
        with pytest.raises(InvalidJson, match="deeper"):
            parse_json(raw, limit)
    else:
        assert parse_json(raw, limit) == value


def test_answers_with_numpy_scalars_are_written_by_orjson():
    """Scores and evidence shares come out of numpy (numpy.float64): they must not send
    the answer down the standard library's slower path, nor fail as numpy.float32 would
    there."""
    import numpy as np
    from flask import Flask

    from recsvc.web.json_body import StrictJSONProvider

    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    answer = {"reason": "vu récemment", "share": np.float64(0.5), "score": np.float32(1.5)}
    with app.app_context():
        body = app.json.response(answer).get_data()
    # orjson writes UTF-8 and no spaces; the standard library would escape the é.
    assert body == '{"reason":"vu récemment","share":0.5,"score":1.5}'.encode()
