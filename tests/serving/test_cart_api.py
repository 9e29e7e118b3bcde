"""POST /v1/recommendations/cart against real Redis and a real trained model."""

from collections import Counter

import pytest


def addons(client, **body):
    response = client.post("/v1/recommendations/cart", json=body)
    assert response.status_code == 200, response.json
    return response.json


def by_category(items):
    found: dict[str, list[str]] = {}
    for item in items:
        found.setdefault(item["category"], []).append(item["item_id"])
    return found


def test_addons_never_hold_the_cart_and_share_its_category(served):
    client, _svc, artifact, items = served
    for category, members in sorted(by_category(items).items()):
        cart = members[:3]
        body = addons(client, items=cart, n=10)
        assert body["strategy"] == "cart" and body["fallback"] is None
        assert body["model_version"] == artifact.version
        returned = [i["item_id"] for i in body["items"]]
        assert len(returned) == 10 and len(set(returned)) == 10
        assert not set(cart) & set(returned)
        scores = [i["score"] for i in body["items"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
        categories = Counter(i["category"] for i in body["items"])
        assert categories[category] >= 5, (category, categories)


def test_reasons_name_the_cart_item_behind_each_addon(served):
    client, _svc, _artifact, items = served
    cart = by_category(items)["c01"][:2]
    for item in addons(client, items=cart, n=20)["items"]:
        lists = [e for e in item["evidence"] if e["part"] == "lists"]
        assert {e["item_id"] for e in lists} <= set(cart)
        assert {e["part"] for e in item["evidence"]} <= {"lists", "fold_in"}
        assert sum(e["share"] for e in item["evidence"]) == pytest.approx(1, abs=0.01)
        if lists:
            assert item["reason"] == f"goes with {lists[0]['item_id']}"
        else:
            assert item["reason"] == "goes with your cart"


def test_unknown_cart_items_are_ignored(served):
    client, _svc, _artifact, items = served
    cart = [items[0]["item_id"], items[1]["item_id"]]
    plain = addons(client, items=cart)["items"]
    mixed = addons(client, items=["nobody-sells-this", *cart, 12345678])["items"]
    assert [i["item_id"] for i in mixed] == [i["item_id"] for i in plain]


def test_a_cart_of_unknown_items_gets_popular_items(served):
    client, _svc, artifact, _items = served
    body = addons(client, items=["nobody-sells-this", "nor-this"], n=5)
    assert body["strategy"] == "popular" and body["fallback"] is None
    assert body["model_version"] == artifact.version
    assert len(body["items"]) == 5
    assert {i["reason"] for i in body["items"]} <= {"trending", "popular"}


def test_what_the_visitor_bought_is_left_out(served):
    client, _svc, _artifact, items = served
    cart = by_category(items)["c04"][:2]
    first = [i["item_id"] for i in addons(client, items=cart, n=10)["items"]]
    bought = first[:3]
    events = [
        {"type": "purchase", "visitor_id": "buyer", "item_id": item, "price": 1} for item in bought
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    again = [i["item_id"] for i in addons(client, items=cart, n=10, visitor_id="buyer")["items"]]
    assert len(again) == 10 and not set(bought) & set(again)
    assert again[:7] == first[3:]
    # A visitor with no profile changes nothing.
    other = addons(client, items=cart, n=10, visitor_id="nobody-yet")["items"]
    assert [i["item_id"] for i in other] == first


def test_out_of_stock_items_are_left_out(served):
    client, _svc, _artifact, items = served
    out_of_stock = {i["item_id"] for i in items if not i["in_stock"]}
    cart = [i["item_id"] for i in items[:5]]
    returned = {i["item_id"] for i in addons(client, items=cart, n=50)["items"]}
    assert out_of_stock and not out_of_stock & returned


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": "sku-1"}, "items"),
        ({"items": [f"i{n}" for n in range(101)]}, "items"),
        ({"items": ["bad id"]}, "items.0"),
        ({"items": [None]}, "items.0"),
        ({"items": ["a"], "n": 0}, "n"),
        ({"items": ["a"], "n": 51}, "n"),
        ({"items": ["a"], "n": "3"}, "n"),
        ({"items": ["a"], "n": 2.5}, "n"),
        ({"items": ["a"], "visitor_id": ""}, "visitor_id"),
        ({"items": ["a"], "bogus": 1}, "bogus"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, body, field):
    response = client.post("/v1/recommendations/cart", json=body)
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert field in [e["field"] for e in error["details"]["errors"]], error


def test_not_json_is_400(client):
    response = client.post("/v1/recommendations/cart", data="{", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json["error"]) == {"code", "message", "details"}


def test_no_model_yet_is_an_empty_fallback(client):
    body = addons(client, items=["a", "b"])
    assert body == {
        "items": [],
        "strategy": "popular",
        "model_version": None,
        "fallback": "popular",
    }


def test_redis_down_still_answers_from_the_cart(served, cut_redis):
    client, svc, _artifact, items = served
    cart = by_category(items)["c05"][:2]
    before = [i["item_id"] for i in addons(client, items=cart, n=5)["items"]]
    cut_redis(svc)
    for _ in range(5):  # a few timeouts on the profile, then the breaker answers at once
        body = addons(client, items=cart, n=5, visitor_id="someone")
        assert body["strategy"] == "cart" and [i["item_id"] for i in body["items"]] == before
    assert svc.reader.breaker.state == "open"
