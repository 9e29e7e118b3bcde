"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI document and its
page, and the request id every response carries."""

import re
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recsvc.core.events import EVENT_TYPES
from recsvc.web.app import create_app

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def client_without_redis(settings, clock):
    dead = settings.replace(
        redis_url=f"redis://127.0.0.1:{closed_port()}",
        redis_connect_timeout=0.2,
        redis_socket_timeout=0.2,
        redis_retries=0,
    )
    return create_app(dead, clock=clock).test_client()


# --- health and readiness -----------------------------------------------------------------


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_does_not_depend_on_redis(client_without_redis):
    assert client_without_redis.get("/healthz").status_code == 200


def test_readyz_with_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readyz_without_redis_is_503(client_without_redis):
    response = client_without_redis.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "redis"}


# --- metrics ------------------------------------------------------------------------------


def sample(client, name, **labels):
    """The value of one sample on /metrics (0 when the series does not exist yet). The
    registry is the process's, shared by every app of the test session: compare deltas."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics_is_prometheus_text(client):
    response = client.get("/metrics")
    assert response.mimetype == "text/plain"
    names = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"recsvc_http_requests", "recsvc_events_accepted"} <= names


def test_requests_are_counted_by_route_pattern_not_raw_path(client, app):
    rule = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == "visitors.get_profile")
    labels = {"endpoint": rule, "method": "GET", "status": "404"}
    before = sample(client, "recsvc_http_requests_total", **labels)
    for n in range(3):
        assert client.get(f"/v1/visitors/raw-visitor-{n}/profile").status_code == 404
    assert sample(client, "recsvc_http_requests_total", **labels) == before + 3
    assert "raw-visitor-" not in client.get("/metrics").get_data(as_text=True)


def test_unknown_paths_share_one_series(client):
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    before = sample(client, "recsvc_http_requests_total", **labels)
    client.get("/no/such/path-123")
    client.get("/another-one")
    assert sample(client, "recsvc_http_requests_total", **labels) == before + 2
    assert "path-123" not in client.get("/metrics").get_data(as_text=True)


def test_invented_methods_share_one_series(client):
    """Before: every new method string a caller sent became a series of its own."""
    labels = {"endpoint": "unmatched", "method": "other", "status": "405"}
    before = sample(client, "recsvc_http_requests_total", **labels)
    for n in range(5):
        assert client.open("/v1/events", method=f"INVENTED{n}").status_code == 405
    assert sample(client, "recsvc_http_requests_total", **labels) == before + 5
    assert "INVENTED" not in client.get("/metrics").get_data(as_text=True)


def test_latency_is_observed_per_endpoint(client):
    name = "recsvc_http_request_duration_seconds_count"
    before = sample(client, name, endpoint="/healthz")
    client.get("/healthz")
    assert sample(client, name, endpoint="/healthz") == before + 1


def test_accepted_events_are_counted_by_type(client):
    def accepted(kind):
        return sample(client, "recsvc_events_accepted_total", type=kind)

    before = {kind: accepted(kind) for kind in ("page_view", "product_view", "purchase")}
    events = [{"type": "page_view", "visitor_id": f"v-{n}"} for n in range(3)] + [
        {"type": "product_view", "visitor_id": "v-1", "item_id": "a"},
        {"type": "product_view", "visitor_id": "v-2", "item_id": "b"},
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    assert accepted("page_view") == before["page_view"] + 3
    assert accepted("product_view") == before["product_view"] + 2
    assert accepted("purchase") == before["purchase"]


def test_rejected_batches_count_as_rejected_not_accepted(client):
    rejected_before = sample(client, "recsvc_events_rejected_total", reason="validation")
    accepted_before = sample(client, "recsvc_events_accepted_total", type="page_view")
    events = [{"type": "page_view", "visitor_id": "v-1"}, {"type": "nope", "visitor_id": "v"}]
    assert client.post("/v1/events", json={"events": events}).status_code == 422
    assert sample(client, "recsvc_events_rejected_total", reason="validation") == (
        rejected_before + 1
    )
    assert sample(client, "recsvc_events_accepted_total", type="page_view") == accepted_before


# --- the API document and its page --------------------------------------------------------

PATHS = {
    "/v1/events": {"post"},
    "/v1/visitors/{visitor_id}/profile": {"get"},
    "/v1/visitors/{visitor_id}/recommendations": {"get"},
    "/v1/items/{item_id}/similar": {"get"},
    "/v1/recommendations/cart": {"post"},
    "/v1/analytics/funnel": {"get"},
    "/v1/items/{item_id}": {"get"},
    "/v1/admin/catalog/items": {"put"},
    "/v1/admin/catalog/items/{item_id}": {"delete"},
    "/v1/admin/models": {"get"},
    "/v1/admin/models/current": {"post"},
    "/v1/admin/models/rollback": {"post"},
    "/v1/admin/banners": {"get", "post"},
    "/v1/admin/banners/{banner_id}": {"get", "put", "delete"},
    "/v1/visitors/{visitor_id}/banners": {"get"},
    "/v1/visitors/{visitor_id}/nudges": {"get"},
    "/v1/nudges/claim": {"post"},
    "/v1/analytics/nudges": {"get"},
}


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_is_valid_openapi_3(document):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)  # raises on any violation
    assert document["openapi"].startswith("3.")


def test_document_lists_the_api(document):
    operations = {
        path: {m for m in item if m in {"get", "post", "put", "patch", "delete"}}
        for path, item in document["paths"].items()
    }
    assert operations == PATHS


def test_document_describes_events_from_the_schemas(document):
    schemas = document["components"]["schemas"]
    event = schemas["Event"]
    assert set(event["required"]) == {"type", "visitor_id"}
    assert event["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert event["additionalProperties"] is False
    assert schemas["EventBatch"]["properties"]["events"]["maxItems"] == 1000
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    refs = {s["$ref"] for s in body["schema"]["oneOf"]}
    assert refs == {"#/components/schemas/Event", "#/components/schemas/EventBatch"}
    responses = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"202", "400", "413", "422", "503"} <= set(responses)


def test_document_declares_the_api_key(document):
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["security"] == [{"ApiKey": []}]


def test_every_error_response_documents_the_error_shape(document):
    error_ref = "#/components/schemas/ApiError"
    assert document["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"][
        "schema"
    ] == {"$ref": error_ref}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status == "default":
                    assert response == {"$ref": "#/components/responses/DEFAULT_ERROR"}
                elif int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": error_ref}, (path, method, status)


def test_docs_page_renders_swagger_ui(client):
    response = client.get("/docs/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page.lower()
    assert "/openapi.json" in page


def test_docs_assets_are_served_locally(client):
    response = client.get("/docs/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert len(response.data) > 100_000


# --- request ids --------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["abc", "req-123_x.Y", "A" * 64, "0193a5c1-d2e8-4b1f"])
def test_a_sane_request_id_is_echoed(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given", ["", "has space", "A" * 65, "<script>", "a/b", "semi;colon", "ünï"]
)
def test_an_insane_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert HEX32.match(response.headers["X-Request-ID"])
    assert response.headers["X-Request-ID"] != given


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(HEX32.match(i) for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/events", 422),
        ("GET", "/v1/visitors/nobody/profile", 404),
        ("GET", "/nowhere", 404),
        ("GET", "/metrics", 200),
        ("POST", "/healthz", 405),
    ],
)
def test_every_response_carries_the_request_id(client, method, path, status):
    response = client.open(path, method=method, json={}, headers={"X-Request-ID": "t-1"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "t-1"
