"""Hostile JSON on every JSON endpoint: a 400 in the error shape, nothing written.

Before: a body nested 100,000 deep was a 500 (RecursionError) everywhere; a 5,000-digit
integer a 500 on the webargs endpoints (cart add-ons' ``n``, claims' ``limit``, banners'
``priority``); a lone surrogate (``"\\ud800"``) in an event a 500 on every retry of the
batch, and in catalog and banner text a 500.
"""

import pytest

from recsvc.store.stream import total_length

BIG = "1" + "0" * 5000
DEEP = "[" * 100_000 + "]" * 100_000

# (method, path, a valid body with a {} where the hostile value goes)
ENDPOINTS = [
    ("POST", "/v1/events", '{"type": "search", "visitor_id": "v-1", "properties": {"q": %s}}'),
    ("PUT", "/v1/admin/catalog/items", '{"items": [{"item_id": "a", "title": %s}]}'),
    ("POST", "/v1/recommendations/cart", '{"items": ["a"], "n": %s}'),
    ("POST", "/v1/nudges/claim", '{"channel": "email", "limit": %s}'),
    ("POST", "/v1/admin/banners", '{"placement": "home", "content": {"title": %s}}'),
    ("PUT", "/v1/admin/banners/b-1", '{"placement": "home", "content": {"title": %s}}'),
    (
        "POST",
        "/v1/admin/banners",
        '{"placement": "home", "content": {"title": "x"}, "priority": %s}',
    ),
    ("POST", "/v1/admin/models/current", '{"version": %s}'),
]
HOSTILE = {
    "lone-surrogate": '"\\ud800"',
    "lone-low-surrogate": '"ok \\udfff"',
    "5000-digit-int": BIG,
    "deep-value": "[" * 5000 + "]" * 5000,
    "1e400": "1e400",
}


def snapshot(redis_conn, settings):
    keys = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    return {key: redis_conn.dump(key) for key in keys}


@pytest.fixture
def banner(client):
    body = {"id": "b-1", "placement": "home", "content": {"title": "t"}}
    assert client.post("/v1/admin/banners", json=body).status_code == 201


def send(client, method, path, data):
    return client.open(path, method=method, data=data, content_type="application/json")


def assert_refused(response):
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=lambda v: str(v)[:30])
def test_a_hostile_value_is_400_and_writes_nothing(
    client, banner, redis_conn, settings, method, path, body, hostile
):
    before = snapshot(redis_conn, settings)
    assert_refused(send(client, method, path, body % HOSTILE[hostile]))
    assert snapshot(redis_conn, settings) == before


@pytest.mark.parametrize(("method", "path"), sorted({(m, p) for m, p, _ in ENDPOINTS}))
@pytest.mark.parametrize("data", [DEEP.encode(), b'{"a": "\xff\xfe"}'], ids=["deep", "not-utf8"])
def test_a_hostile_body_is_400_and_writes_nothing(
    client, banner, redis_conn, settings, method, path, data
):
    before = snapshot(redis_conn, settings)
    assert_refused(send(client, method, path, data))
    assert snapshot(redis_conn, settings) == before


def test_a_surrogate_pair_is_text_not_an_error(client, redis_conn, keys, settings):
    """An emoji written as a JSON surrogate pair is one character and is accepted."""
    body = '{"type": "search", "visitor_id": "v-1", "properties": {"q": "\\ud83d\\ude00"}}'
    assert send(client, "POST", "/v1/events", body).status_code == 202
    assert total_length(redis_conn, keys, settings.stream_shards) == 1
