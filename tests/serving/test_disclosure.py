"""What a public key learns about a visitor from every read that names one, against real
Redis and a real trained model (``recsvc.serving.disclosure``).

Before: anyone with the storefront's public key and a visitor id (a cookie, a guess) read
the visitor's cart and the items they viewed in recommendation evidence ("in your cart",
"because you viewed sku-9"), their cart's lines and value in the nudge answer, what they
bought through cart add-ons (which leave purchases out), and their journey stage,
segments and cart value in the banner answer.
"""

import pytest

from recsvc.identity.tokens import mint_token
from recsvc.web.app import create_app

PUBLIC, SERVER, ADMIN = "pub", "srv", "adm"
SECRET = "identity-secret-of-thirty-two-chars!"
ABANDON = 1800


@pytest.fixture
def app(settings, clock):
    keyed = settings.replace(
        public_keys=(PUBLIC,),
        server_keys=(SERVER,),
        admin_keys=(ADMIN,),
        identity_secrets=(SECRET,),
        nudge_holdout_share=0.0,
    )
    return create_app(keyed, clock=clock)


@pytest.fixture
def token(clock):
    def token(user_id=None, visitor_id=None):
        return mint_token(
            SECRET, user_id=user_id, visitor_id=visitor_id, ttl_seconds=3600, now=clock.now()
        )

    return token


def headers(key, token=None):
    found = {"X-API-Key": key}
    if token is not None:
        found["X-Identity-Token"] = token
    return found


def send(client, *events):
    answer = client.post("/v1/events", json={"events": list(events)}, headers=headers(SERVER))
    assert answer.status_code == 202, answer.json


@pytest.fixture
def shopper(served, clock):
    """A customer the model knows, with a popular item bought and, a minute later,
    another in the cart."""
    client, _svc, artifact, _items = served
    visitor = str(artifact.user_ids[0])
    carted = str(artifact.item_ids[int(artifact.popular[0])])
    bought = str(artifact.item_ids[int(artifact.popular[1])])
    send(
        client,
        {"type": "purchase", "visitor_id": visitor, "item_id": bought, "price": 5.0},
    )
    clock.advance(60)
    send(client, {"type": "add_to_cart", "visitor_id": visitor, "item_id": carted, "price": 60.0})
    return client, visitor, carted, bought


def own_items(client, visitor):
    profile = client.get(f"/v1/visitors/{visitor}/profile", headers=headers(SERVER)).json
    lines = profile["recent_items"] + profile["cart"]["items"] + profile["purchases"]["items"]
    return {line["item_id"] for line in lines}


def named_items(answer):
    """Every item id an answer names: the items, and the items of their evidence."""
    named = set()
    for item in answer["items"]:
        named.add(item["item_id"])
        named |= {entry["item_id"] for entry in item["evidence"] if "item_id" in entry}
    return named


# --- recommendations --------------------------------------------------------------------
def recommend(client, visitor, token=None, key=PUBLIC):
    return client.get(
        f"/v1/visitors/{visitor}/recommendations",
        query_string={"n": 10},
        headers=headers(key, token),
    )


def test_unproven_recommendations_name_nothing_of_the_visitors(shopper):
    client, visitor, _carted, _bought = shopper
    answer = recommend(client, visitor)
    assert answer.status_code == 200
    body = answer.json
    assert len(body["items"]) == 10 and body["strategy"] == "blend"
    assert not named_items(body) & own_items(client, visitor)
    reasons = {item["reason"] for item in body["items"]}
    assert not {r for r in reasons if r.startswith(("because you", "you ", "in your"))}
    assert body["stage"] is None


def test_the_visitors_own_token_gets_the_personal_answer(shopper, token):
    client, visitor, carted, _bought = shopper
    body = recommend(client, visitor, token(visitor_id=visitor)).json
    returned = {item["item_id"]: item for item in body["items"]}
    assert returned[carted]["reason"] == "in your cart"
    assert body["stage"] is None  # a store's label, even for the visitor's own browser
    assert recommend(client, visitor, key=SERVER).json["stage"] == "retention"


def test_a_stitched_device_proven_without_its_customer_is_not_personal(served, token):
    client, _svc, artifact, _items = served
    visitor = str(artifact.user_ids[1])
    carted = str(artifact.item_ids[int(artifact.popular[0])])
    send(
        client, {"type": "add_to_cart", "visitor_id": visitor, "item_id": carted, "user_id": "u-1"}
    )
    device_only = recommend(client, visitor, token(visitor_id=visitor)).json
    assert carted not in named_items(device_only)
    logged_in = recommend(client, visitor, token("u-1", visitor)).json
    assert carted in named_items(logged_in)


@pytest.mark.parametrize(
    ("which", "status"), [("another visitor", 403), ("forged", 401)], ids=["other", "forged"]
)
def test_an_offered_token_must_prove_the_visitor(shopper, token, which, status):
    client, visitor, _carted, _bought = shopper
    offered = token(visitor_id="v-other") if which == "another visitor" else "a.b.c"
    answer = recommend(client, visitor, offered)
    assert answer.status_code == status
    assert answer.json["error"]["code"] in ("identity_mismatch", "invalid_identity_token")


# --- nudges -----------------------------------------------------------------------------
def nudges(client, visitor, token=None, key=PUBLIC):
    return client.get(f"/v1/visitors/{visitor}/nudges", headers=headers(key, token))


def test_a_nudge_shows_the_cart_only_to_the_visitor_it_proves(shopper, token, clock):
    client, visitor, carted, _bought = shopper
    clock.advance(ABANDON)
    refused = nudges(client, visitor)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "identity_required"
    other = nudges(client, visitor, token(visitor_id="v-attacker"))
    assert other.status_code == 403 and other.json["error"]["code"] == "identity_mismatch"
    [nudge] = nudges(client, visitor, token(visitor_id=visitor)).json["nudges"]
    assert [line["item_id"] for line in nudge["cart"]["items"]] == [carted]
    [same] = nudges(client, visitor, key=SERVER).json["nudges"]
    assert same["cart"] == nudge["cart"]


def test_no_nudge_of_a_customers_cart_on_a_device_proven_without_them(served, token, clock):
    client, _svc, _artifact, _items = served
    send(
        client, {"type": "add_to_cart", "visitor_id": "v-shared", "item_id": "x", "user_id": "u-9"}
    )
    clock.advance(ABANDON)
    device_only = nudges(client, "v-shared", token(visitor_id="v-shared"))
    assert device_only.status_code == 200 and device_only.json == {"nudges": []}
    [nudge] = nudges(client, "v-shared", token("u-9", "v-shared")).json["nudges"]
    assert nudge["user_id"] == "u-9"


# --- cart add-ons -----------------------------------------------------------------------
def addons(client, body, token=None, key=PUBLIC):
    return client.post("/v1/recommendations/cart", json=body, headers=headers(key, token))


def test_cart_add_ons_for_a_visitor_need_its_token(shopper, token):
    client, visitor, carted, bought = shopper
    body = {"items": [carted], "visitor_id": visitor, "n": 50}
    assert addons(client, body).status_code == 401
    assert addons(client, body, token(visitor_id="v-attacker")).status_code == 403
    proven = addons(client, body, token(visitor_id=visitor))
    assert proven.status_code == 200
    assert bought not in {item["item_id"] for item in proven.json["items"]}
    # Without a visitor id nothing of anybody's is used, and no token is needed.
    anonymous = addons(client, {"items": [carted], "n": 50})
    assert anonymous.status_code == 200
    assert bought in {item["item_id"] for item in anonymous.json["items"]}


# --- banners ----------------------------------------------------------------------------
def test_banners_show_a_public_key_no_labels_nor_the_visitors_values(shopper, token):
    client, visitor, _carted, _bought = shopper
    rules = {"stages": ["retention"], "cart_value_min": 50, "hours": list(range(24))}
    created = client.post(
        "/v1/admin/banners",
        json={"id": "b-rich", "placement": "cart", "content": {"title": "t"}, "rules": rules},
        headers=headers(ADMIN),
    )
    assert created.status_code == 201, created.json
    url = f"/v1/visitors/{visitor}/banners"
    full = client.get(url, headers=headers(SERVER)).json
    assert full["stage"] == "retention" and "has_cart" in full["segments"]
    assert full["banners"][0]["matched"]["cart_value_min"] == 60.0
    for proof in (None, token(visitor_id=visitor)):
        public = client.get(url, headers=headers(PUBLIC, proof)).json
        [banner] = public["banners"]
        assert banner["id"] == "b-rich"
        assert public["stage"] is None and public["segments"] == []
        assert set(banner["matched"]) == {"hours"}
        assert banner["reason"].startswith("targeted to this visitor")
        assert "60" not in banner["reason"] and "retention" not in banner["reason"]
