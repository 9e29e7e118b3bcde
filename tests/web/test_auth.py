"""API keys: storefront endpoints take a public or an admin key, ``/v1/admin/*`` only an
admin key, operations endpoints stay open, and no keys at all means open (with a warning)."""

import contextlib
import logging

import pytest

from recsvc.settings import Settings
from recsvc.store.stream import total_length
from recsvc.web.app import create_app
from recsvc.web.auth import HEADER, role_of

PUBLIC, ADMIN = "pub", "adm"
EVENT = {"type": "page_view", "visitor_id": "v-1", "source": "email"}


@pytest.fixture
def keyed(settings, clock):
    app = create_app(settings.replace(public_keys=(PUBLIC,), admin_keys=(ADMIN,)), clock=clock)
    return app.test_client()


def call(client, method, path, key=None):
    headers = {HEADER: key} if key is not None else {}
    if method == "POST":
        return client.post(path, json=EVENT, headers=headers)
    return client.get(path, headers=headers)


def error_code(response):
    assert response.mimetype == "application/json"
    return response.get_json()["error"]["code"]


STOREFRONT = [
    pytest.param("POST", "/v1/events", 202, id="events"),
    pytest.param("GET", "/v1/visitors/v-1/profile", 200, id="profile"),
    pytest.param("GET", "/v1/analytics/funnel", 200, id="funnel"),
]


@pytest.fixture
def seeded(keyed):
    assert call(keyed, "POST", "/v1/events", ADMIN).status_code == 202
    return keyed


@pytest.mark.parametrize("key", [None, "", "nope", "PUB", " pub", "pub ", "pubadm"])
@pytest.mark.parametrize(("method", "path", "_ok"), STOREFRONT)
def test_storefront_needs_a_known_key(seeded, method, path, _ok, key):
    response = call(seeded, method, path, key)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert HEADER in response.get_json()["error"]["message"]


@pytest.mark.parametrize("key", [PUBLIC, ADMIN])
@pytest.mark.parametrize(("method", "path", "ok"), STOREFRONT)
def test_storefront_takes_a_public_or_an_admin_key(seeded, method, path, ok, key):
    assert call(seeded, method, path, key).status_code == ok


def test_a_refused_event_is_not_written(keyed, redis_conn, keys):
    assert call(keyed, "POST", "/v1/events", "nope").status_code == 401
    assert total_length(redis_conn, keys, Settings.stream_shards) == 0


@pytest.mark.parametrize("path", ["/v1/admin", "/v1/admin/anything", "/v1/admin/models/1"])
def test_admin_paths_need_the_admin_key(keyed, path):
    unauthenticated = call(keyed, "GET", path)
    assert unauthenticated.status_code == 401
    assert error_code(unauthenticated) == "unauthorized"
    assert call(keyed, "GET", path, "nope").status_code == 401
    public = call(keyed, "GET", path, PUBLIC)
    assert public.status_code == 403
    assert error_code(public) == "forbidden"
    # Past the key check: no admin endpoint exists yet.
    admin = call(keyed, "GET", path, ADMIN)
    assert admin.status_code == 404
    assert error_code(admin) == "not_found"


def test_admin_key_check_applies_to_every_method(keyed):
    assert keyed.post("/v1/admin/models", json={}, headers={HEADER: PUBLIC}).status_code == 403
    assert keyed.delete("/v1/admin/models/1").status_code == 401


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
        ("/openapi.json", 200),
        ("/docs/", 200),
        ("/docs", 308),  # to /docs/
    ],
)
@pytest.mark.parametrize("key", [None, "nope"])
def test_operations_endpoints_are_open(keyed, path, ok, key):
    assert call(keyed, "GET", path, key).status_code == ok


def test_preflight_requests_pass_without_a_key(keyed):
    response = keyed.options("/v1/events")
    assert response.status_code == 200
    assert "POST" in response.headers["Allow"]


def test_refusals_carry_a_request_id(keyed):
    response = keyed.get("/v1/admin/x", headers={"X-Request-ID": "trace-1", HEADER: PUBLIC})
    assert response.status_code == 403
    assert response.headers["X-Request-ID"] == "trace-1"


@contextlib.contextmanager
def auth_log(caplog):
    """Records of the auth logger, captured at the logger itself: ``create_app`` installs
    the JSON handler on the root logger, which may displace pytest's own there."""
    logger = logging.getLogger("recsvc.web.auth")
    logger.addHandler(caplog.handler)
    try:
        yield caplog.handler.records
    finally:
        logger.removeHandler(caplog.handler)


def test_open_mode_warns_and_lets_everything_through(settings, clock, caplog):
    with auth_log(caplog) as records:
        client = create_app(settings, clock=clock).test_client()
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert warnings and "no API keys configured" in warnings[0].getMessage()
    assert client.post("/v1/events", json=EVENT).status_code == 202
    assert client.get("/v1/visitors/v-1/profile").status_code == 200
    assert client.get("/v1/admin/anything").status_code == 404


def test_no_warning_with_keys(settings, clock, caplog):
    with auth_log(caplog) as records:
        create_app(settings.replace(public_keys=(PUBLIC,)), clock=clock)
    assert not [r for r in records if r.levelno >= logging.WARNING]


def test_admin_keys_alone_turn_auth_on(settings, clock):
    client = create_app(settings.replace(admin_keys=(ADMIN,)), clock=clock).test_client()
    assert client.post("/v1/events", json=EVENT).status_code == 401
    assert client.post("/v1/events", json=EVENT, headers={HEADER: ADMIN}).status_code == 202


# --- role_of ------------------------------------------------------------------------------

KEYED = Settings(public_keys=("p1", "p2"), sender_keys=("s1",), admin_keys=("a1",))


@pytest.mark.parametrize(
    ("key", "role"),
    [
        ("a1", "admin"),
        ("p1", "public"),
        ("p2", "public"),
        ("s1", "sender"),
        (None, None),
        ("", None),
        ("p3", None),
        ("P1", None),
        ("p1 ", None),
        ("a", None),  # a prefix of a key is not the key
        ("a1a1", None),
        ("é", None),  # not ASCII: compared as bytes, no error
    ],
)
def test_role_of(key, role):
    assert role_of(key, KEYED) == role


def test_role_of_prefers_admin_for_a_key_in_both_lists():
    assert role_of("k", Settings(public_keys=("k",), admin_keys=("k",))) == "admin"


def test_role_of_without_keys_is_none():
    assert role_of("anything", Settings()) is None


@pytest.mark.parametrize(("key", "status"), [("pub", 403), ("snd", 200), ("adm", 200)])
def test_only_senders_and_admins_claim_carts(settings, clock, key, status):
    """A claim answers with customers' carts and user ids: a public key, which ships in
    storefront JavaScript, must not get them."""
    keys = {"public_keys": ("pub",), "sender_keys": ("snd",), "admin_keys": ("adm",)}
    client = create_app(settings.replace(**keys), clock=clock).test_client()
    body = {"channel": "email"}
    assert client.post("/v1/nudges/claim", json=body, headers={HEADER: key}).status_code == status
    if key == "snd":  # a sender reports its sends like any storefront event, but no admin
        sent = {"type": "nudge_sent", "visitor_id": "v-1", "properties": {"channel": "email"}}
        assert client.post("/v1/events", json=sent, headers={HEADER: key}).status_code == 202
        assert client.get("/v1/admin/banners", headers={HEADER: key}).status_code == 403
