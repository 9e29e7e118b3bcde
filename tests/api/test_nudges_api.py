"""The nudge endpoints on real Redis with the manual clock: the onsite nudge, claims by
senders, holdout, quiet hours, and the analytics built from what happened."""

import socket

import pytest

from recsvc.core.nudges import in_holdout
from recsvc.store.models import ModelStore
from recsvc.web.app import create_app

ABANDON = 1800
EMAIL_DELAY = 3600


@pytest.fixture
def app(settings, clock):
    """No holdout, so any visitor can be nudged (the holdout has tests of its own)."""
    return create_app(settings.replace(nudge_holdout_share=0.0), clock=clock)


def post(client, *events):
    response = client.post("/v1/events", json={"events": list(events)})
    assert response.status_code == 202, response.json
    return response


def cart_add(visitor, item="i1", price=10.0, quantity=1, **fields):
    event = {"type": "add_to_cart", "visitor_id": visitor, "item_id": item, "quantity": quantity}
    if price is not None:
        event["price"] = price
    return {**event, **fields}


def nudges(client, visitor):
    response = client.get(f"/v1/visitors/{visitor}/nudges")
    assert response.status_code == 200, response.json
    return response.json


def claim(client, channel="email", **body):
    response = client.post("/v1/nudges/claim", json={"channel": channel, **body})
    assert response.status_code == 200, response.json
    return response.json


def report(client, **query):
    response = client.get("/v1/analytics/nudges", query_string=query)
    assert response.status_code == 200, response.json
    return {row["channel"]: row for row in response.json["channels"]}, response.json["totals"]


# --- the onsite nudge ------------------------------------------------------------------------
def test_the_nudge_appears_exactly_at_the_threshold(client, clock):
    post(client, cart_add("v1"))
    clock.advance(ABANDON - 1)
    assert nudges(client, "v1") == {"nudges": []}
    clock.advance(1)
    [nudge] = nudges(client, "v1")["nudges"]
    assert nudge["kind"] == "abandoned_cart" and nudge["channel"] == "onsite"
    assert nudge["abandoned_at"] == "2026-03-10T12:30:00.000Z"
    assert nudge["id"] == "v:v1|onsite|1773144000000"
    assert (nudge["visitor_id"], nudge["user_id"]) == ("v1", None)


def test_the_nudge_shows_the_cart_with_catalog_fields_and_add_ons(
    app, client, clock, make_artifact
):
    svc = app.extensions["recsvc"]
    ModelStore(svc.client, svc.keys).publish(make_artifact("v1"))
    svc.catalog.upsert(
        [
            {"item_id": "i0", "title": "Red shoes", "price": 99.0, "category": "shoes"},
            {"item_id": "i1", "title": "Socks", "category": "socks"},
        ]
    )
    svc.holder.refresh()
    post(client, cart_add("v1", "i0", price=80.0, quantity=2))
    clock.advance(ABANDON)
    [nudge] = nudges(client, "v1")["nudges"]
    line = nudge["cart"]["items"][0]
    # The price the visitor added it at, not today's catalog price.
    assert line == {
        "item_id": "i0",
        "quantity": 2,
        "price": 80.0,
        "title": "Red shoes",
        "category": "shoes",
    }
    assert nudge["cart"]["quantity"] == 2 and nudge["cart"]["value"] == 160.0
    assert nudge["message"] == "Red shoes is still in your cart."
    recommended = [item["item_id"] for item in nudge["recommendations"]]
    assert len(recommended) == 3 and "i0" not in recommended
    assert nudge["recommendations"][0]["reason"].startswith("goes with")


def test_unknown_visitors_have_no_nudge_and_bad_ids_are_refused(client):
    assert nudges(client, "nobody") == {"nudges": []}
    assert client.get("/v1/visitors/a%20b/nudges").status_code == 422


def test_no_nudge_without_redis(settings, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{port}", redis_retries=0)
    client = create_app(dead, clock=clock).test_client()
    assert nudges(client, "v1") == {"nudges": [], "fallback": "unavailable"}
    assert client.post("/v1/nudges/claim", json={"channel": "push"}).status_code == 503


def test_a_purchase_cancels_the_nudge(client, clock):
    post(client, cart_add("v1"), cart_add("v1", "i2"))
    clock.advance(60)
    post(client, {"type": "purchase", "visitor_id": "v1", "item_id": "i1", "price": 10.0})
    clock.advance(ABANDON + EMAIL_DELAY)
    assert nudges(client, "v1") == {"nudges": []}
    assert claim(client, "email") == {"nudges": []}
    assert claim(client, "push") == {"nudges": []}


def test_a_logged_in_customer_sees_the_cart_of_their_other_device(client, clock):
    post(client, cart_add("phone", user_id="u1"))
    post(client, {"type": "page_view", "visitor_id": "laptop", "user_id": "u1"})
    clock.advance(ABANDON)
    [nudge] = nudges(client, "laptop")["nudges"]
    assert nudge["id"].startswith("u:u1|onsite|")
    assert (nudge["visitor_id"], nudge["user_id"]) == ("laptop", "u1")


# --- claims ------------------------------------------------------------------------------------
def test_claims_hand_each_cart_out_once(client, clock):
    post(client, cart_add("v1", quantity=3))
    clock.advance(1)
    post(client, cart_add("v2", user_id="u2"))
    post(client, {"type": "page_view", "visitor_id": "v2b", "user_id": "u2"})
    clock.advance(ABANDON + EMAIL_DELAY - 2)
    assert claim(client, "email") == {"nudges": []}
    clock.advance(2)  # both due; the older first
    first = claim(client, "email", limit=1)["nudges"]
    rest = claim(client, "email")["nudges"]
    assert [n["owner"] for n in first + rest] == ["v:v1", "u:u2"]
    assert claim(client, "email") == {"nudges": []}
    one, two = first[0], rest[0]
    assert (one["visitor_id"], one["user_id"], one["channel"]) == ("v1", None, "email")
    assert one["cart"]["quantity"] == 3 and one["message"] == "You left 3 items in your cart."
    # A customer is reached on the device they were last seen with.
    assert (two["visitor_id"], two["user_id"]) == ("v2b", "u2")
    assert "recommendations" not in two


def test_a_changed_cart_may_be_claimed_again(client, clock):
    post(client, cart_add("v1"))
    clock.advance(ABANDON)
    assert len(claim(client, "push")["nudges"]) == 1
    post(client, cart_add("v1", "i2"))
    assert claim(client, "push") == {"nudges": []}  # not abandoned again yet
    clock.advance(ABANDON)
    assert len(claim(client, "push")["nudges"]) == 1


def test_quiet_hours_answer_when_to_come_back(client, clock):
    post(client, cart_add("v1"))
    clock.advance(10 * 3600)  # 22:00 UTC: quiet from 21 to 8
    assert claim(client, "email") == {"nudges": [], "quiet_until": "2026-03-11T08:00:00.000Z"}
    clock.advance(10 * 3600)  # 08:00 the next day
    assert len(claim(client, "email")["nudges"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "onsite"}, "channel"),
        ({"channel": "email", "limit": 0}, "limit"),
        ({"channel": "email", "limit": 501}, "limit"),
        ({"channel": "email", "limit": "5"}, "limit"),
        ({"channel": "email", "extra": 1}, "extra"),
        ({}, "channel"),
    ],
)
def test_bad_claims_are_refused(client, body, field):
    response = client.post("/v1/nudges/claim", json=body)
    assert response.status_code == 422, response.json
    assert [e["field"] for e in response.json["error"]["details"]["errors"]] == [field]


# --- holdout -----------------------------------------------------------------------------------
def test_holdout_is_stable_and_never_nudged(settings, clock):
    client = create_app(settings.replace(nudge_holdout_share=0.5), clock=clock).test_client()
    visitors = [f"v{n}" for n in range(40)]
    post(client, *(cart_add(v) for v in visitors))
    clock.advance(ABANDON + EMAIL_DELAY)
    onsite_held = {v for v in visitors if in_holdout(f"v:{v}", "onsite", 0.5)}
    email_held = {v for v in visitors if in_holdout(f"v:{v}", "email", 0.5)}
    assert 5 < len(onsite_held) < 35 and onsite_held != email_held
    for _ in range(2):  # the same answer on every page
        shown = {v for v in visitors if nudges(client, v)["nudges"]}
        assert shown == set(visitors) - onsite_held
    claimed = {n["visitor_id"] for n in claim(client, "email")["nudges"]}
    assert claimed == set(visitors) - email_held
    rows, _ = report(client)
    assert rows["onsite"]["eligible"] == 40 and rows["onsite"]["held_out"] == len(onsite_held)
    assert rows["email"]["eligible"] == 40 and rows["email"]["held_out"] == len(email_held)
    assert rows["email"]["claimed"] == 40 - len(email_held)


# --- analytics -----------------------------------------------------------------------------------
def test_analytics_count_what_happened(settings, clock):
    """Four email carts: three sent (two bought within the window), one held out and bought;
    the numbers worked out by hand."""
    visitors = [f"w{n}" for n in range(200)]
    held = [v for v in visitors if in_holdout(f"v:{v}", "email", 0.25)][:1]
    nudged = [v for v in visitors if not in_holdout(f"v:{v}", "email", 0.25)][:3]
    client = create_app(settings.replace(nudge_holdout_share=0.25), clock=clock).test_client()
    post(client, *(cart_add(v, price=20.0, quantity=2) for v in held + nudged))
    clock.advance(ABANDON + EMAIL_DELAY)
    claimed = claim(client, "email")["nudges"]
    assert {n["visitor_id"] for n in claimed} == set(nudged)
    post(
        client,
        *(
            {"type": "nudge_sent", "visitor_id": v, "properties": {"channel": "email"}}
            for v in nudged
        ),
    )
    post(
        client,
        {"type": "nudge_click", "visitor_id": nudged[0], "properties": {"channel": "email"}},
    )
    clock.advance(3600)
    buy = {"type": "purchase", "item_id": "i1", "price": 20.0, "quantity": 2}
    post(client, {**buy, "visitor_id": nudged[0]}, {**buy, "visitor_id": held[0]})
    clock.advance(6 * 86400)
    post(client, {**buy, "visitor_id": nudged[1], "price": 15.0})
    clock.advance(2 * 86400)  # the third buys after the window: not a recovery
    post(client, {**buy, "visitor_id": nudged[2]})

    rows, totals = report(client, start="2026-03-10", end="2026-03-20", channel="email")
    assert list(rows) == ["email"]
    assert rows["email"] == {
        "channel": "email",
        "eligible": 4,
        "held_out": 1,
        "claimed": 3,
        "sent": 3,
        "clicked": 1,
        "recovered": 2,
        "recovered_value": 70.0,
        "holdout_recovered": 1,
        "holdout_recovered_value": 40.0,
        "recovery_rate": 0.666667,
        "holdout_recovery_rate": 1.0,
        "incremental_recoveries": -1.0,  # 2 - 3 × 1.0
        "lift": -0.333333,
    }
    assert totals == {**rows["email"], "channel": "all"}
    # Recoveries count on the day of the purchase.
    rows, _ = report(client, start="2026-03-10", end="2026-03-10")
    assert rows["email"]["recovered"] == 1 and rows["email"]["sent"] == 3
    assert rows["onsite"]["sent"] == 0 and rows["onsite"]["lift"] is None


def test_analytics_ranges_are_checked_like_the_funnel(client):
    assert client.get("/v1/analytics/nudges?start=2026-03-10&end=2026-03-01").status_code == 422
    assert client.get("/v1/analytics/nudges?start=2024-01-01&end=2026-03-01").status_code == 422
    assert client.get("/v1/analytics/nudges?channel=fax").status_code == 422
    assert client.get("/v1/analytics/nudges?chanel=email").status_code == 422
    response = client.get("/v1/analytics/nudges")
    assert response.status_code == 200
    assert (response.json["start"], response.json["end"]) == ("2026-02-09", "2026-03-10")
    assert [row["channel"] for row in response.json["channels"]] == [
        "onsite",
        "push",
        "email",
        "sms",
    ]


# --- the document --------------------------------------------------------------------------------
def test_answers_with_data_match_the_document(settings, clock, make_artifact):
    """The fuzz sees empty answers only: check full ones against the OpenAPI document (with
    API keys on, as schemathesis also checks that a missing key is refused)."""
    schemathesis = pytest.importorskip("schemathesis")
    key = {"X-API-Key": "k"}
    keyed = settings.replace(nudge_holdout_share=0.0, sender_keys=("k",), analyst_keys=("a",))
    app = create_app(keyed, clock=clock)
    svc = app.extensions["recsvc"]
    ModelStore(svc.client, svc.keys).publish(make_artifact("v1"))
    svc.catalog.upsert([{"item_id": "i0", "title": "Red shoes", "price": 9.5, "in_stock": True}])
    svc.holder.refresh()
    client = app.test_client()

    def send(*events):
        assert client.post("/v1/events", json={"events": events}, headers=key).status_code == 202

    send(cart_add("v1", "i0"), cart_add("v2", "i3", price=None, user_id="u2"))
    clock.advance(ABANDON + EMAIL_DELAY)
    config = {"auth": {"openapi": {"ApiKey": {"api_key": "k"}}}}
    api = schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis.config.SchemathesisConfig.from_dict(config)
    )
    visitor = api.make_case(
        operation=api["/v1/visitors/{visitor_id}/nudges"]["GET"],
        path_parameters={"visitor_id": "v1"},
        headers=key,
    )
    assert len(visitor.call_and_validate().json()["nudges"][0]["recommendations"]) == 3
    claimed = api.make_case(
        operation=api["/v1/nudges/claim"]["POST"],
        body={"channel": "email", "limit": 5},
        headers=key,
    )
    assert len(claimed.call_and_validate().json()["nudges"]) == 2
    send({"type": "purchase", "visitor_id": "v1", "item_id": "i0", "price": 9.5})
    # Nudge revenue is analytics: an analyst's (or server's, or admin's) key, not a sender's.
    analyst = {"X-API-Key": "a"}
    analytics = api.make_case(
        operation=api["/v1/analytics/nudges"]["GET"], query={}, headers=analyst
    )
    assert analytics.call_and_validate().json()["totals"]["claimed"] == 2
