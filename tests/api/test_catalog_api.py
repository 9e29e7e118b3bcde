"""The HTTP contract of the catalog: ``PUT /v1/admin/catalog/items`` (merge-upsert, all or
nothing, errors naming index and field), ``GET /v1/items/<id>``,
``DELETE /v1/admin/catalog/items/<id>``, and their API keys."""

import socket

import pytest

from recsvc.store.catalog import CatalogStore
from recsvc.web.app import create_app
from recsvc.web.auth import HEADER

PUBLIC, ADMIN = "pub", "adm"
SHOE = {
    "item_id": "sku-1",
    "category": "shoes",
    "price": 59.9,
    "in_stock": True,
    "title": "Trail shoe",
    "url": "https://shop.example.com/p/sku-1",
    "image_url": "https://cdn.example.com/sku-1.jpg",
}
SOCKS = {"item_id": "sku-2", "category": "socks", "price": 4.5}


def put(client, items, **kwargs):
    return client.put("/v1/admin/catalog/items", json={"items": items}, **kwargs)


def put_raw(client, data):
    return client.put("/v1/admin/catalog/items", data=data, content_type="application/json")


def error_of(response, status, code):
    """The error object, after checking the one error shape every failure answers with."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["message"]
    return error


def errors_of(response, code="validation_error"):
    errors = error_of(response, 422, code)["details"]["errors"]
    for entry in errors:
        assert set(entry) == {"index", "field", "reason"}
        assert entry["reason"]
    return errors


@pytest.fixture
def store(redis_conn, keys):
    return CatalogStore(redis_conn, keys)


def snapshot(redis_conn, settings):
    found = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    return {key: redis_conn.dump(key) for key in found}


# --- upsert, get, delete -------------------------------------------------------------------


def test_upsert_then_get(client):
    response = put(client, [SHOE, SOCKS])
    assert response.status_code == 200
    assert response.get_json() == {"upserted": 2, "changed": 2, "version": 1}
    got = client.get("/v1/items/sku-1")
    assert got.status_code == 200
    assert got.get_json() == SHOE
    assert client.get("/v1/items/sku-2").get_json() == SOCKS


def test_upsert_merges_fields_into_the_stored_item(client):
    put(client, [SHOE])
    response = put(client, [{"item_id": "sku-1", "in_stock": False}])
    assert response.get_json() == {"upserted": 1, "changed": 1, "version": 2}
    assert client.get("/v1/items/sku-1").get_json() == {**SHOE, "in_stock": False}


def test_null_removes_a_field(client):
    put(client, [SHOE])
    put(client, [{"item_id": "sku-1", "image_url": None}])
    item = client.get("/v1/items/sku-1").get_json()
    assert "image_url" not in item
    assert item["title"] == "Trail shoe"


def test_the_same_items_again_change_nothing(client, store):
    put(client, [SHOE, SOCKS])
    response = put(client, [SHOE, SOCKS])
    assert response.get_json() == {"upserted": 2, "changed": 0, "version": 1}
    client.get("/v1/items/sku-1")
    client.get("/v1/items/nope")
    assert store.version() == 1  # reads never move it


def test_an_integer_item_id_is_its_string(client):
    assert put(client, [{"item_id": 123, "price": 1}]).status_code == 200
    assert client.get("/v1/items/123").get_json() == {"item_id": "123", "price": 1.0}


def test_ids_with_a_slash_round_trip(client):
    assert put(client, [{"item_id": "shop/sku-1", "title": "T"}]).status_code == 200
    assert client.get("/v1/items/shop/sku-1").get_json() == {"item_id": "shop/sku-1", "title": "T"}
    assert client.delete("/v1/admin/catalog/items/shop/sku-1").status_code == 204
    error_of(client.get("/v1/items/shop/sku-1"), 404, "not_found")


@pytest.mark.parametrize(
    "fields",
    [
        {"price": 0},
        {"price": 1e9},
        {"in_stock": False},
        {"url": "http://localhost:8080/p/1"},
        {"title": "t" * 512, "category": "c" * 128},
        {"url": "https://x.example/" + "a" * 2000},
        {"title": "Ünïcödé ✓"},
    ],
)
def test_edge_values_are_accepted(client, fields):
    response = put(client, [{"item_id": "e", **fields}])
    assert response.status_code == 200, response.get_json()
    item = client.get("/v1/items/e").get_json()
    assert item == {"item_id": "e", **{k: v for k, v in fields.items()}}


def test_a_full_batch_of_1000_is_accepted(client, store):
    items = [{"item_id": f"i{n}", "price": float(n)} for n in range(1000)]
    assert put(client, items).get_json() == {"upserted": 1000, "changed": 1000, "version": 1}
    assert store.count() == 1000


def test_get_unknown_item_is_404(client):
    error = error_of(client.get("/v1/items/nope"), 404, "not_found")
    assert "nope" in error["message"]


def test_delete(client, store):
    put(client, [SHOE])
    response = client.delete("/v1/admin/catalog/items/sku-1")
    assert response.status_code == 204
    assert response.get_data() == b""
    error_of(client.get("/v1/items/sku-1"), 404, "not_found")
    assert store.version() == 2
    error_of(client.delete("/v1/admin/catalog/items/sku-1"), 404, "not_found")
    assert store.version() == 2


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("item_id", ["a%20b", "a%7Bb%7D", "x" * 129, "%C3%A9"])
def test_invalid_item_ids_in_the_path_are_422(client, method, item_id):
    path = f"/v1/items/{item_id}" if method == "GET" else f"/v1/admin/catalog/items/{item_id}"
    response = client.open(path, method=method)
    errors = error_of(response, 422, "validation_error")["details"]["errors"]
    assert [e["field"] for e in errors] == ["item_id"]


# --- validation: all or nothing, naming index and field ------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": -0.01}, "price"),
        ({"price": "5"}, "price"),
        ({"price": True}, "price"),
        ({"price": 1e10}, "price"),
        ({"in_stock": "yes"}, "in_stock"),
        ({"in_stock": 1}, "in_stock"),
        ({"url": "ftp://shop.example.com/p"}, "url"),
        ({"url": "/p/sku-1"}, "url"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
        ({"url": "https://x.example/" + "a" * 2100}, "url"),
        ({"title": ""}, "title"),
        ({"title": "t" * 513}, "title"),
        ({"title": 5}, "title"),
        ({"category": "c" * 129}, "category"),
        ({"colour": "red"}, "colour"),
        ({"item_id": None}, "item_id"),
        ({"item_id": "a{b}"}, "item_id"),
        ({"item_id": ""}, "item_id"),
        ({"item_id": 1.5}, "item_id"),
    ],
)
def test_an_invalid_item_names_its_index_and_field_and_nothing_is_written(
    client, redis_conn, settings, fields, field
):
    before = snapshot(redis_conn, settings)
    response = put(client, [SOCKS, {"item_id": "bad", **fields}, SHOE])
    errors = errors_of(response)
    assert [(e["index"], e["field"]) for e in errors] == [(1, field)]
    assert response.get_json()["error"]["details"]["invalid_items"] == 1
    assert snapshot(redis_conn, settings) == before
    error_of(client.get("/v1/items/sku-2"), 404, "not_found")


def test_a_missing_item_id_is_named(client):
    errors = errors_of(put(client, [{"price": 1}]))
    assert [(e["index"], e["field"]) for e in errors] == [(0, "item_id")]


def test_every_bad_item_is_named(client):
    response = put(client, [{"item_id": "a", "price": -1}, SHOE, "x", {"item_id": "b", "foo": 1}])
    errors = errors_of(response)
    assert [(e["index"], e["field"]) for e in errors] == [(0, "price"), (2, None), (3, "foo")]
    error = response.get_json()["error"]
    assert error["details"]["invalid_items"] == 3
    assert error["message"] == "3 of 4 items invalid; nothing was written."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([SHOE], None),
        ("sku-1", None),
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": SHOE}, "items"),
        ({"items": [SHOE], "dry_run": True}, "dry_run"),
        (SHOE, "category"),  # one bare item is not a batch: its fields are unknown here
    ],
)
def test_malformed_bodies_are_422_without_an_index(client, redis_conn, settings, body, field):
    response = client.put("/v1/admin/catalog/items", json=body)
    errors = errors_of(response)
    assert errors[0]["index"] is None
    assert errors[0]["field"] == field
    assert snapshot(redis_conn, settings) == {}


def test_over_1000_items_is_refused(client, redis_conn, settings):
    items = [{"item_id": f"i{n}"} for n in range(1001)]
    errors = errors_of(put(client, items), code="too_many_items")
    assert errors == [{"index": None, "field": "items", "reason": "1001 items; the limit is 1000."}]
    assert snapshot(redis_conn, settings) == {}


@pytest.mark.parametrize("data", ["{", "", '{"items": [{"item_id": "a", "price": NaN}]}'])
def test_a_body_that_is_not_json_is_400(client, data):
    error_of(put_raw(client, data), 400, "invalid_json")


def test_an_oversized_body_is_413(settings, clock):
    client = create_app(settings.replace(max_body_bytes=1000), clock=clock).test_client()
    items = [{"item_id": f"i{n}", "title": "t" * 100} for n in range(20)]
    error_of(put(client, items), 413, "request_entity_too_large")


# --- API keys ------------------------------------------------------------------------------


@pytest.fixture
def keyed(settings, clock):
    app = create_app(settings.replace(public_keys=(PUBLIC,), admin_keys=(ADMIN,)), clock=clock)
    return app.test_client()


def test_upsert_and_delete_need_the_admin_key(keyed, store):
    error_of(put(keyed, [SHOE]), 401, "unauthorized")
    error_of(put(keyed, [SHOE], headers={HEADER: PUBLIC}), 403, "forbidden")
    error_of(keyed.delete("/v1/admin/catalog/items/sku-1"), 401, "unauthorized")
    error_of(
        keyed.delete("/v1/admin/catalog/items/sku-1", headers={HEADER: PUBLIC}), 403, "forbidden"
    )
    assert store.version() == 0
    assert put(keyed, [SHOE], headers={HEADER: ADMIN}).status_code == 200
    assert keyed.delete("/v1/admin/catalog/items/sku-1", headers={HEADER: ADMIN}).status_code == 204


@pytest.mark.parametrize("key", [PUBLIC, ADMIN])
def test_items_are_read_with_either_key(keyed, store, key):
    store.upsert([SHOE])
    error_of(keyed.get("/v1/items/sku-1"), 401, "unauthorized")
    response = keyed.get("/v1/items/sku-1", headers={HEADER: key})
    assert response.status_code == 200
    assert response.get_json() == SHOE


# --- Redis unreachable ---------------------------------------------------------------------


@pytest.fixture
def dead(settings, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    broken = settings.replace(
        redis_url=f"redis://127.0.0.1:{port}",
        redis_connect_timeout=0.2,
        redis_socket_timeout=0.2,
        redis_retries=0,
    )
    return create_app(broken, clock=clock).test_client()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/admin/catalog/items", {"items": [SHOE]}),
        ("GET", "/v1/items/sku-1", None),
        ("DELETE", "/v1/admin/catalog/items/sku-1", None),
    ],
)
def test_without_redis_the_answer_is_503_with_retry_after(dead, method, path, body):
    response = dead.open(path, method=method, json=body)
    error_of(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_without_redis_validation_still_answers_422(dead):
    errors_of(put(dead, [{"item_id": "a", "price": -1}]))


# --- the API document ----------------------------------------------------------------------


def test_document_describes_the_catalog_from_the_schemas(client):
    document = client.get("/openapi.json").get_json()
    item = document["components"]["schemas"]["CatalogItem"]
    assert item["required"] == ["item_id"]
    assert item["additionalProperties"] is False
    # An integer item id is taken (as its string), so the document says so.
    assert [s["type"] for s in item["properties"]["item_id"]["anyOf"]] == ["string", "integer"]
    assert item["properties"]["price"]["minimum"] == 0
    assert item["properties"]["in_stock"]["type"] == "boolean"
    batch = document["components"]["schemas"]["CatalogUpsert"]["properties"]["items"]
    assert batch["maxItems"] == 1000
    put_doc = document["paths"]["/v1/admin/catalog/items"]["put"]
    body = put_doc["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/CatalogUpsert"}
    assert {"new", "out_of_stock", "remove_a_field"} <= set(body["examples"])
    assert {"200", "400", "413", "422", "503"} <= set(put_doc["responses"])
    get_doc = document["paths"]["/v1/items/{item_id}"]["get"]
    assert {"200", "404", "422", "503"} <= set(get_doc["responses"])
