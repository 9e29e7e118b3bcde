"""Identity is proven, never taken on trust: the stitching takeover of issue 13, and what a
public key may read of a profile.

Before: ``{"type": "page_view", "visitor_id": "v-attacker", "user_id": "<victim>"}`` with
the public key stitched the attacker's device to the victim, whose cart and purchases the
attacker then read at ``/v1/visitors/v-attacker/profile``, and whose cart the attacker's
``add_to_cart`` changed.
"""

import pytest

from recsvc.identity.tokens import mint_token
from recsvc.web.app import create_app

PUBLIC, ANALYST, SERVER, SENDER, ADMIN = "pub", "ana", "srv", "snd", "adm"
SECRET = "identity-secret-of-thirty-two-chars!"


@pytest.fixture
def app(settings, clock):
    keyed = settings.replace(
        public_keys=(PUBLIC,),
        analyst_keys=(ANALYST,),
        server_keys=(SERVER,),
        sender_keys=(SENDER,),
        admin_keys=(ADMIN,),
        identity_secrets=(SECRET,),
    )
    return create_app(keyed, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


def headers(key, token=None):
    found = {"X-API-Key": key}
    if token is not None:
        found["X-Identity-Token"] = token
    return found


@pytest.fixture
def token(clock):
    def token(user_id=None, visitor_id=None, ttl=3600, secret=SECRET):
        return mint_token(
            secret, user_id=user_id, visitor_id=visitor_id, ttl_seconds=ttl, now=clock.now()
        )

    return token


def snapshot(redis_conn, settings):
    keys = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    # Rate-limit buckets change with every public request, written or not.
    return {k: redis_conn.dump(k) for k in keys if b":{ratelimit}:" not in k}


@pytest.fixture
def victim(client, token):
    """u-victim, logged in on v-victim (with their backend's token), with a cart."""
    events = [
        {"type": "page_view", "visitor_id": "v-victim", "user_id": "u-victim"},
        {"type": "add_to_cart", "visitor_id": "v-victim", "item_id": "ring", "price": 900},
    ]
    answer = client.post(
        "/v1/events",
        json={"events": events},
        headers=headers(PUBLIC, token("u-victim", "v-victim")),
    )
    assert answer.status_code == 202, answer.get_json()
    return "u-victim"


STITCH = {"type": "page_view", "visitor_id": "v-attacker", "user_id": "u-victim"}
STEAL = {"type": "add_to_cart", "visitor_id": "v-attacker", "user_id": "u-victim", "item_id": "x"}


@pytest.mark.parametrize("event", [STITCH, STEAL], ids=["stitch", "add-to-cart"])
def test_a_user_id_without_a_token_is_401_and_writes_nothing(
    client, victim, redis_conn, settings, event
):
    before = snapshot(redis_conn, settings)
    answer = client.post("/v1/events", json=event, headers=headers(PUBLIC))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "identity_required"
    assert snapshot(redis_conn, settings) == before


def test_the_attackers_own_token_does_not_prove_the_victim(
    client, victim, token, redis_conn, settings
):
    before = snapshot(redis_conn, settings)
    mine = token("u-attacker", "v-attacker")
    answer = client.post("/v1/events", json=STEAL, headers=headers(PUBLIC, mine))
    assert answer.status_code == 403
    error = answer.get_json()["error"]
    assert error["code"] == "identity_mismatch"
    assert error["details"]["errors"] == [
        {"index": 0, "field": "user_id", "reason": "Not proven by the identity token."}
    ]
    assert snapshot(redis_conn, settings) == before


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"secret": "made-up-secret-of-thirty-two-chars!!"}, id="forged"),
        pytest.param({"ttl": -1}, id="expired"),
    ],
)
def test_forged_or_expired_tokens_are_401(client, victim, token, redis_conn, settings, bad):
    before = snapshot(redis_conn, settings)
    forged = token("u-victim", "v-attacker", **bad)
    answer = client.post("/v1/events", json=STITCH, headers=headers(PUBLIC, forged))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "invalid_identity_token"
    assert snapshot(redis_conn, settings) == before


def test_a_token_bound_to_a_visitor_stitches_only_that_visitor(client, victim, token):
    """The victim's token copied from their page (it names v-victim) does not log in the
    attacker's device."""
    copied = token("u-victim", "v-victim")
    answer = client.post("/v1/events", json=STITCH, headers=headers(PUBLIC, copied))
    assert answer.status_code == 403


def test_the_victims_cart_is_untouched_by_every_attempt(client, victim, token):
    for event in (STITCH, STEAL):
        client.post("/v1/events", json=event, headers=headers(PUBLIC))
        client.post("/v1/events", json=event, headers=headers(PUBLIC, token("u-attacker")))
    profile = client.get("/v1/visitors/v-victim/profile", headers=headers(ANALYST)).get_json()
    assert profile["cart"]["items"] == [{"item_id": "ring", "quantity": 1, "price": 900.0}]
    attacker = client.get("/v1/visitors/v-attacker/profile", headers=headers(ANALYST))
    assert attacker.status_code == 404


@pytest.mark.parametrize("key", [SERVER, SENDER, ADMIN])
def test_server_keys_may_assert_a_user_id(client, redis_conn, keys, key):
    event = {"type": "purchase", "visitor_id": "v-pos", "user_id": "u-7", "item_id": "a"}
    assert client.post("/v1/events", json=event, headers=headers(key)).status_code == 202
    assert redis_conn.exists(keys.customer("u-7"))


def test_an_analyst_key_is_not_a_server_key(client):
    assert client.post("/v1/events", json=STITCH, headers=headers(ANALYST)).status_code == 401


def test_a_batch_of_the_tokens_user_stitches(client, token, redis_conn, keys):
    events = [
        {"type": "page_view", "visitor_id": "v-2"},
        {"type": "page_view", "visitor_id": "v-2", "user_id": "u-2"},
    ]
    answer = client.post(
        "/v1/events", json={"events": events}, headers=headers(PUBLIC, token("u-2", "v-2"))
    )
    assert answer.status_code == 202
    assert redis_conn.exists(keys.customer("u-2"))


# --- reading profiles -------------------------------------------------------------------


def test_a_public_profile_read_needs_the_visitors_token(client, victim, token):
    answer = client.get("/v1/visitors/v-victim/profile", headers=headers(PUBLIC))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "identity_required"
    other = token(visitor_id="v-attacker")
    answer = client.get("/v1/visitors/v-victim/profile", headers=headers(PUBLIC, other))
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "identity_mismatch"


def test_an_unproven_read_does_not_tell_whether_a_visitor_exists(client, token):
    other = token(visitor_id="v-attacker")
    answer = client.get("/v1/visitors/v-nobody/profile", headers=headers(PUBLIC, other))
    assert answer.status_code == 403


def test_the_browser_view_holds_the_visitors_own_data_only(client, victim, token):
    mine = token("u-victim", "v-victim")
    profile = client.get("/v1/visitors/v-victim/profile", headers=headers(PUBLIC, mine))
    assert profile.status_code == 200
    shown = profile.get_json()
    assert shown["view"] == "browser"
    assert shown["user_id"] == "u-victim"
    assert shown["cart"]["items"][0]["item_id"] == "ring"
    assert shown["recent_items"][0]["item_id"] == "ring"
    for label in ("stage", "segments", "stage_history", "sources", "first_touch", "events"):
        assert label not in shown


def test_a_device_proven_without_its_user_shows_no_customer_data(client, victim, token):
    """A shared computer a customer logged out of: its visitor token does not show them."""
    device_only = token(visitor_id="v-victim")
    shown = client.get("/v1/visitors/v-victim/profile", headers=headers(PUBLIC, device_only))
    assert shown.status_code == 200
    body = shown.get_json()
    assert body["user_id"] is None
    assert "cart" not in body and "purchases" not in body
    assert body["visits"] == 1


def test_an_anonymous_visitor_sees_its_own_cart(client, token):
    cart = {"type": "add_to_cart", "visitor_id": "v-anon", "item_id": "mug"}
    assert client.post("/v1/events", json=cart, headers=headers(PUBLIC)).status_code == 202
    shown = client.get(
        "/v1/visitors/v-anon/profile", headers=headers(PUBLIC, token(visitor_id="v-anon"))
    ).get_json()
    assert shown["cart"]["items"] == [{"item_id": "mug", "quantity": 1, "price": None}]


@pytest.mark.parametrize("key", [ANALYST, SERVER, SENDER, ADMIN])
def test_other_roles_read_the_full_profile(client, victim, key):
    shown = client.get("/v1/visitors/v-victim/profile", headers=headers(key)).get_json()
    assert shown["view"] == "full"
    assert shown["user_id"] == "u-victim" and "segments" in shown


# --- analytics ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/analytics/funnel", "/v1/analytics/nudges"])
@pytest.mark.parametrize(
    ("key", "status"),
    [(PUBLIC, 403), (SENDER, 403), (ANALYST, 200), (SERVER, 200), (ADMIN, 200)],
)
def test_analytics_and_nudge_revenue_need_an_analyst_server_or_admin_key(client, path, key, status):
    answer = client.get(path, headers=headers(key))
    assert answer.status_code == status
    if status == 403:
        assert answer.get_json()["error"]["code"] == "forbidden"
