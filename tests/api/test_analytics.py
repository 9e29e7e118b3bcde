"""The funnel endpoint on a scripted sequence of visitors: exact counts."""

import pytest


def ev(kind, visitor, ts, **fields):
    return {"type": kind, "visitor_id": visitor, "timestamp": ts, **fields}


D1, D2 = "2026-03-08", "2026-03-09"

SCRIPT = [
    # a: google, buys on day 1, opens the confirmation email, answers the survey
    ev("page_view", "a", f"{D1}T10:00:00Z", source="google_ads"),
    ev("product_view", "a", f"{D1}T10:01:00Z", item_id="p1"),
    ev("review_view", "a", f"{D1}T10:02:00Z", item_id="p1"),
    ev("add_to_cart", "a", f"{D1}T10:03:00Z", item_id="p1", price=10.0),
    ev("checkout_start", "a", f"{D1}T10:04:00Z"),
    ev("purchase", "a", f"{D1}T10:05:00Z", item_id="p1", price=10.0),
    ev("email_open", "a", f"{D1}T10:06:00Z"),
    ev("survey_response", "a", f"{D1}T10:07:00Z"),
    # b: google, views and carts on day 1 (skips reviews: implied), abandons
    ev("page_view", "b", f"{D1}T11:00:00Z", source="google_ads"),
    ev("add_to_cart", "b", f"{D1}T11:01:00Z", item_id="p2"),
    # c: email, views on day 1, comes back on day 2 (returning) and views again
    ev("page_view", "c", f"{D1}T12:00:00Z", source="email"),
    ev("product_view", "c", f"{D1}T12:01:00Z", item_id="p3"),
    ev("product_view", "c", f"{D2}T12:00:00Z", item_id="p3"),
    # d: direct, lands and leaves on day 2; opens a marketing email (not a funnel step)
    ev("page_view", "d", f"{D2}T09:00:00Z", source="direct"),
    ev("email_open", "d", f"{D2}T09:01:00Z"),
]


@pytest.fixture
def scripted(client):
    response = client.post("/v1/events", json={"events": SCRIPT})
    assert response.status_code == 202, response.json
    return client


def counts(client, **query):
    response = client.get("/v1/analytics/funnel", query_string=query)
    assert response.status_code == 200, response.json
    return [step["visitors"] for step in response.json["steps"]]


def test_funnel_over_both_days(scripted):
    # landing a b c d; product_view a b c; review a b; cart a b; checkout a; purchase a;
    # email a (d's marketing email does not count); survey a
    assert counts(scripted, start=D1, end=D2) == [4, 3, 2, 2, 1, 1, 1, 1]


def test_funnel_by_day(scripted):
    assert counts(scripted, start=D1, end=D1) == [3, 3, 2, 2, 1, 1, 1, 1]
    assert counts(scripted, start=D2, end=D2) == [2, 1, 0, 0, 0, 0, 0, 0]


def test_funnel_by_first_touch_source(scripted):
    assert counts(scripted, start=D1, end=D2, source="google_ads") == [2, 2, 2, 2, 1, 1, 1, 1]
    assert counts(scripted, start=D1, end=D2, source="email") == [1, 1, 0, 0, 0, 0, 0, 0]
    assert counts(scripted, start=D1, end=D2, source="social") == [0] * 8


def test_funnel_by_visitor_type(scripted):
    assert counts(scripted, start=D1, end=D2, visitor_type="returning") == [1, 1, 0, 0, 0, 0, 0, 0]
    assert counts(scripted, start=D1, end=D2, visitor_type="new") == [4, 3, 2, 2, 1, 1, 1, 1]


def test_funnel_rows_carry_conversion_and_drop_off(scripted):
    steps = scripted.get(f"/v1/analytics/funnel?start={D1}&end={D2}").json["steps"]
    assert steps[1] == {
        "step": "product_view",
        "visitors": 3,
        "conversion": 0.75,
        "drop_off": 0.25,
        "dropped": 1,
        "overall": 0.75,
    }


def test_default_range_is_the_last_30_days(scripted, clock):
    # The clock is at 2026-03-10: both scripted days are inside the default window.
    body = scripted.get("/v1/analytics/funnel").json
    assert body["start"] == "2026-02-09" and body["end"] == "2026-03-10"
    assert body["steps"][0]["visitors"] == 4


@pytest.mark.parametrize(
    "query",
    [
        {"start": "2026-03-09", "end": "2026-03-01"},
        {"start": "not-a-date"},
        {"source": "tv"},
        {"visitor_type": "old"},
        {"start": "2020-01-01", "end": "2026-01-01"},
    ],
)
def test_bad_queries_are_422_with_a_field(client, query):
    response = client.get("/v1/analytics/funnel", query_string=query)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert response.json["error"]["details"]
