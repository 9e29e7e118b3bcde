"""The event schema's quick path: what it loads is exactly what the schema loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from recsvc.core.events import CHANNELS, EVENT_TYPES, SOURCES
from recsvc.schemas.events import EventSchema

SCHEMA = EventSchema(
    now=datetime(2026, 1, 1, tzinfo=UTC),
    max_age=timedelta(days=3),
    max_properties=3,
    max_properties_bytes=80,
)

# Each field's values: valid ones, values at and past its bounds, wrong types, null.
IDS = st.sampled_from(["v-1", "sku-1", "a" * 128, "a" * 129, "", "bad id", "x\n", 7, None])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
PROPERTY_VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(), SCALARS)
)
FIELDS = {
    "type": st.sampled_from([*EVENT_TYPES, "unknown", 3, None]),
    "visitor_id": IDS,
    "user_id": IDS,
    "item_id": IDS,
    "session_id": IDS,
    "quantity": st.sampled_from([1, 10_000, 10_001, 0, -1, 2.0, True, "1", None]),
    "price": st.one_of(
        st.sampled_from([0, 1e9, 1e9 + 1, -0.0, -1, True, "9", None, 19.9, 10**9]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    "source": st.sampled_from([*SOURCES, "tv", 1, None]),
    "channel": st.sampled_from([*CHANNELS, "fax", None]),
    "timestamp": st.sampled_from(["2025-12-31T23:00:00Z", "soon", None]),
    "properties": st.one_of(
        st.dictionaries(st.text(max_size=70), PROPERTY_VALUES, max_size=4),
        st.sampled_from([None, [], "x", {"query": "red shoes"}, {"": 1}]),
    ),
    "colour": st.just("red"),  # not a field: the schema refuses it
}
EVENTS = st.fixed_dictionaries(
    {"type": FIELDS["type"], "visitor_id": FIELDS["visitor_id"]},
    optional={name: value for name, value in FIELDS.items() if name not in ("type", "visitor_id")},
)


def schema_load(event: dict) -> dict | None:
    try:
        return SCHEMA.load(event)
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None)
@given(EVENTS)
def test_the_quick_path_loads_only_what_the_schema_loads_and_the_same(event):
    quick = SCHEMA.quick_load(event)
    if quick is not None:
        loaded = schema_load(event)
        assert loaded is not None, "the quick path took an event the schema refuses"
        assert list(quick.items()) == list(loaded.items())  # values and key order
        assert [type(v) for v in quick.values()] == [type(v) for v in loaded.values()]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "page_view", "visitor_id": "v-1", "source": "email", "channel": "web"},
        {"type": "product_view", "visitor_id": "v-1", "item_id": "sku-1", "session_id": "s1"},
        {"type": "search", "visitor_id": "v-1", "properties": {"query": "red shoes"}},
        {
            "type": "add_to_cart",
            "visitor_id": "v-1",
            "user_id": "u-1",
            "item_id": "sku-1",
            "quantity": 2,
            "price": 19,
        },
    ],
)
def test_a_storefront_s_everyday_events_take_the_quick_path(event):
    quick = SCHEMA.quick_load(event)
    assert quick is not None and quick == SCHEMA.load(event)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "page_view", "visitor_id": "v-1", "timestamp": "2025-12-31T23:00:00Z"},
        {"type": "nudge_click", "visitor_id": "v-1", "properties": {"channel": "onsite"}},
        {"type": "banner_click", "visitor_id": "v-1", "properties": {"banner_id": "b1"}},
        {"type": "product_view", "visitor_id": "v-1", "item_id": 17},
        {"type": "product_view", "visitor_id": "v-1"},
        {"type": "page_view", "visitor_id": "v-1", "colour": "red"},
    ],
)
def test_what_the_quick_path_does_not_vouch_for_goes_to_the_schema(event):
    assert SCHEMA.quick_load(event) is None


VALID_EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["page_view", "search", "checkout_start", "email_open"]),
        "visitor_id": st.from_regex(r"[A-Za-z0-9._:@|=+/#~-]{1,128}", fullmatch=True),
    },
    optional={
        "user_id": st.just("u-1"),
        "session_id": st.just("s-1"),
        "item_id": st.just("sku-1"),
        "quantity": st.integers(1, 10_000),
        "price": st.one_of(st.integers(0, 10**9), st.floats(0, 1e9)),
        "source": st.sampled_from(SOURCES),
        "channel": st.sampled_from(CHANNELS),
        "properties": st.dictionaries(
            st.text("abc", min_size=1, max_size=5),
            st.one_of(st.integers(-9, 9), st.booleans(), st.none(), st.text("xy", max_size=3)),
            max_size=3,
        ),
    },
)


@settings(max_examples=500, deadline=None)
@given(VALID_EVENTS)
def test_valid_everyday_events_all_take_the_quick_path(event):
    quick = SCHEMA.quick_load(event)
    assert quick is not None
    assert list(quick.items()) == list(SCHEMA.load(event).items())
