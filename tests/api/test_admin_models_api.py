"""The admin model-version endpoints against versions really published to Redis: list,
make current, roll back, their 404/409/422 answers and the admin key."""

import pytest

from recsvc.store.models import ModelStore
from recsvc.web.app import create_app
from recsvc.web.auth import HEADER

PUBLIC, ADMIN = "pub", "adm"


def error_of(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.fixture
def store(redis_conn, keys):
    return ModelStore(redis_conn, keys)


@pytest.fixture
def published(store, make_artifact):
    """v1 then v2 published (v2 is current); v2 carries metrics."""
    store.publish(make_artifact("v1", created="2026-01-01T00:00:00Z"))
    v2 = make_artifact("v2", seed=1, created="2026-02-01T00:00:00Z")
    v2.manifest["metrics"] = {"als": {"ndcg@10": 0.12, "recall@20": 0.3}}
    store.publish(v2)
    return store


def make_current(client, version, **kwargs):
    return client.post("/v1/admin/models/current", json={"version": version}, **kwargs)


def test_nothing_published(client):
    response = client.get("/v1/admin/models")
    assert response.status_code == 200
    assert response.get_json() == {"current": None, "versions": []}
    error_of(client.post("/v1/admin/models/rollback"), 409, "conflict")
    error_of(make_current(client, "v1"), 404, "not_found")


def test_list_is_newest_first_with_the_current_one_marked(client, published):
    response = client.get("/v1/admin/models")
    assert response.status_code == 200
    assert response.get_json() == {
        "current": "v2",
        "versions": [
            {
                "version": "v2",
                "created": "2026-02-01T00:00:00Z",
                "model": "als",
                "metrics": {"als": {"ndcg@10": 0.12, "recall@20": 0.3}},
                "params": {"factors": 8},
                "current": True,
            },
            {
                "version": "v1",
                "created": "2026-01-01T00:00:00Z",
                "model": "als",
                "metrics": {},
                "params": {"factors": 8},
                "current": False,
            },
        ],
    }


def test_a_version_published_without_making_it_current(client, store, make_artifact):
    store.publish(make_artifact("v1"), make_current=False)
    listed = client.get("/v1/admin/models").get_json()
    assert listed["current"] is None
    assert [(v["version"], v["current"]) for v in listed["versions"]] == [("v1", False)]
    error_of(client.post("/v1/admin/models/rollback"), 409, "conflict")
    assert make_current(client, "v1").get_json() == {"current": "v1"}
    assert store.current_version() == "v1"


def test_make_current_then_roll_back(client, published):
    response = make_current(client, "v1")
    assert response.status_code == 200
    assert response.get_json() == {"current": "v1"}
    assert published.current_version() == "v1"
    listed = client.get("/v1/admin/models").get_json()
    assert listed["current"] == "v1"
    assert [(v["version"], v["current"]) for v in listed["versions"]] == [
        ("v2", False),
        ("v1", True),
    ]

    response = client.post("/v1/admin/models/rollback")
    assert response.status_code == 200
    assert response.get_json() == {"current": "v2"}
    assert published.current_version() == "v2"
    assert client.post("/v1/admin/models/rollback").get_json() == {"current": "v1"}
    error_of(client.post("/v1/admin/models/rollback"), 409, "conflict")
    assert published.current_version() == "v1"  # a refused rollback changes nothing


def test_making_the_current_version_current_again_changes_nothing(client, published):
    assert make_current(client, "v2").get_json() == {"current": "v2"}
    # Still one step back to v1, not a "rollback" from v2 to v2.
    assert client.post("/v1/admin/models/rollback").get_json() == {"current": "v1"}


def test_an_unpublished_version_is_404(client, published):
    error = error_of(make_current(client, "v3"), 404, "not_found")
    assert "v3" in error["message"]
    assert published.current_version() == "v2"


def test_a_deleted_version_cannot_be_made_current(client, published):
    published.delete_version("v1")
    error_of(make_current(client, "v1"), 404, "not_found")
    error_of(client.post("/v1/admin/models/rollback"), 409, "conflict")
    assert [v["version"] for v in client.get("/v1/admin/models").get_json()["versions"]] == ["v2"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "version"),
        ({"version": ""}, "version"),
        ({"version": 5}, "version"),
        ({"version": "a{b}"}, "version"),
        ({"version": "v1", "force": True}, "force"),
    ],
)
def test_an_invalid_body_is_422_naming_the_field(client, published, body, field):
    response = client.post("/v1/admin/models/current", json=body)
    errors = error_of(response, 422, "validation_error")["details"]["errors"]
    assert [e["field"] for e in errors] == [field]
    assert published.current_version() == "v2"


def test_a_body_that_is_not_json_is_400(client, published):
    response = client.post("/v1/admin/models/current", data="{", content_type="application/json")
    # The code every JSON endpoint answers a body that is not JSON with (recsvc.api.blueprint).
    error_of(response, 400, "invalid_json")
    assert published.current_version() == "v2"


# --- API keys ------------------------------------------------------------------------------


@pytest.fixture
def keyed(settings, clock):
    app = create_app(settings.replace(public_keys=(PUBLIC,), admin_keys=(ADMIN,)), clock=clock)
    return app.test_client()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/models", None),
        ("POST", "/v1/admin/models/current", {"version": "v1"}),
        ("POST", "/v1/admin/models/rollback", None),
    ],
)
def test_model_endpoints_need_the_admin_key(keyed, published, method, path, body):
    error_of(keyed.open(path, method=method, json=body), 401, "unauthorized")
    error_of(
        keyed.open(path, method=method, json=body, headers={HEADER: "nope"}), 401, "unauthorized"
    )
    error_of(keyed.open(path, method=method, json=body, headers={HEADER: PUBLIC}), 403, "forbidden")
    assert published.current_version() == "v2"
    response = keyed.open(path, method=method, json=body, headers={HEADER: ADMIN})
    assert response.status_code == 200


def test_document_describes_the_model_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    listing = paths["/v1/admin/models"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["example"]["versions"][0]["current"] is True
    current = paths["/v1/admin/models/current"]["post"]
    assert current["requestBody"]["content"]["application/json"]["example"]["version"]
    assert {"200", "400", "404", "422", "503"} <= set(current["responses"])
    assert {"200", "409", "503"} <= set(paths["/v1/admin/models/rollback"]["post"]["responses"])
