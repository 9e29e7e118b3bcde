"""Fuzzing the API from its own OpenAPI document (schemathesis), in-process on the WSGI app
against the test Redis, with API keys on.

For every operation, positive cases (valid by the document) and negative ones (violating
it) go through schemathesis' checks: never a 5xx, only documented status codes, bodies and
content types as documented, invalid data and missing or wrong keys refused. One check is
off: ``positive_data_acceptance``. Some rules cannot be said in OpenAPI (a timestamp at most
a day ahead, properties at most 2 KiB, a funnel range of at most 366 days), so a request
valid by the document may rightly get a 422 (the matrix in test_events_api pins those).

``RECSVC_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 50).
"""

import os
import socket
from collections import Counter

import pytest

from recsvc.identity.tokens import mint_token
from recsvc.web.app import create_app

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
GenerationMode = schemathesis.GenerationMode

PUBLIC = "fuzz-public-key"
ANALYST = "fuzz-analyst-key"
ADMIN = "fuzz-admin-key"
KEY = {"X-API-Key": PUBLIC}
ANALYST_KEY = {"X-API-Key": ANALYST}
EXAMPLES = int(os.environ.get("RECSVC_FUZZ_EXAMPLES", "50"))
OPERATIONS = [
    ("POST", "/v1/events"),
    ("GET", "/v1/visitors/{visitor_id}/profile"),
    ("GET", "/v1/visitors/{visitor_id}/recommendations"),
    ("GET", "/v1/items/{item_id}/similar"),
    ("POST", "/v1/recommendations/cart"),
    ("GET", "/v1/analytics/funnel"),
    ("GET", "/v1/items/{item_id}"),
    ("PUT", "/v1/admin/catalog/items"),
    ("DELETE", "/v1/admin/catalog/items/{item_id}"),
    ("GET", "/v1/admin/models"),
    ("POST", "/v1/admin/models/current"),
    ("POST", "/v1/admin/models/rollback"),
    ("GET", "/v1/admin/banners"),
    ("POST", "/v1/admin/banners"),
    ("GET", "/v1/admin/banners/{banner_id}"),
    ("PUT", "/v1/admin/banners/{banner_id}"),
    ("DELETE", "/v1/admin/banners/{banner_id}"),
    ("GET", "/v1/visitors/{visitor_id}/banners"),
    ("GET", "/v1/visitors/{visitor_id}/nudges"),
    ("POST", "/v1/nudges/claim"),
    ("GET", "/v1/analytics/nudges"),
]
# What positive cases must reach at least once: proof the key was sent and the fuzz got
# past validation into the handler (a profile of a random visitor is a 404, and so are a
# random catalog item and model version; with no model published a rollback is a 409).
REACHED = {
    "/v1/events": 202,
    "/v1/visitors/{visitor_id}/profile": 404,
    # No model is published in the fuzz: an empty answer from memory, never an error.
    "/v1/visitors/{visitor_id}/recommendations": 200,
    "/v1/items/{item_id}/similar": 200,
    "/v1/recommendations/cart": 200,
    "/v1/analytics/funnel": 200,
    "/v1/items/{item_id}": 404,
    "/v1/admin/catalog/items": 200,
    "/v1/admin/catalog/items/{item_id}": 404,
    "/v1/admin/models": 200,
    "/v1/admin/models/current": 404,
    "/v1/admin/models/rollback": 409,
    "/v1/admin/banners": 200,
    # Random banner ids: none exists (a created one has a made-up id of its own).
    "/v1/admin/banners/{banner_id}": 404,
    "/v1/visitors/{visitor_id}/banners": 200,
    # An unknown visitor has no nudge (not a 404: the storefront asks on every page).
    "/v1/visitors/{visitor_id}/nudges": 200,
    "/v1/nudges/claim": 200,
    "/v1/analytics/nudges": 200,
}
# Where one path's operations reach different statuses.
REACHED_BY_METHOD = {("POST", "/v1/admin/banners"): 201}
CONFIG = {
    "auth": {"openapi": {"ApiKey": {"api_key": PUBLIC}}},
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        # Refusals of invalid data also include a URL or body over the limits
        # (recsvc.web.request_guard): an exclude list of 4,096 characters that are not
        # ASCII is 20 KB of URL.
        "negative_data_rejection": {
            "expected-statuses": [
                "400",
                "401",
                "403",
                "404",
                "405",
                "406",
                "409",
                "413",
                "414",
                "415",
                "422",
                "428",
                "429",
            ]
        },
    },
}


def is_admin(path):
    """Admin endpoints (and the senders' claim) refuse a public key (a 403, pinned in
    test_auth), so they are fuzzed through a schema loaded with the admin key."""
    return path.startswith("/v1/admin/") or path == "/v1/nudges/claim"


# A visitor's profile and nudges (its cart) need the visitor's identity token with a public
# key (a 401 without: pinned in test_identity and tests/serving/test_disclosure.py).
PROVEN_READS = ("/v1/visitors/{visitor_id}/profile", "/v1/visitors/{visitor_id}/nudges")


def is_analyst(path):
    """Analytics, and the reads a public key needs a visitor's token for, are fuzzed with
    an analyst key (a public key gets 403 and 401 there)."""
    return path.startswith("/v1/analytics/") or path in PROVEN_READS


def schema_for(path, api, analyst_api, admin_api):
    if is_admin(path):
        return admin_api
    return analyst_api if is_analyst(path) else api


def with_key(config, key):
    return {**config, "auth": {"openapi": {"ApiKey": {"api_key": key}}}}


SECRET = "fuzz-identity-secret-of-32-characters"


def keyed(settings):
    return settings.replace(
        public_keys=(PUBLIC,),
        analyst_keys=(ANALYST,),
        admin_keys=(ADMIN,),
        identity_secrets=(SECRET,),
    )


@pytest.fixture
def app(settings, clock):
    return create_app(keyed(settings), clock=clock)


def load(app, config=CONFIG):
    return schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis.config.SchemathesisConfig.from_dict(config)
    )


@pytest.fixture
def api(app):
    return load(app)


@pytest.fixture
def admin_api(app):
    return load(app, with_key(CONFIG, ADMIN))


@pytest.fixture
def analyst_api(app):
    return load(app, with_key(CONFIG, ANALYST))


def fuzz(operation, mode, examples=EXAMPLES):
    """Run ``examples`` cases through every check; the statuses answered, counted."""
    statuses = Counter()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run; raise EXAMPLES to explore
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    def run(case):
        response = case.call_and_validate()
        statuses[response.status_code] += 1

    run()
    return statuses


def test_every_operation_is_fuzzed(api):
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api.get_all_operations()
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzz(api, analyst_api, admin_api, method, path, mode):
    statuses = fuzz(schema_for(path, api, analyst_api, admin_api)[path][method], mode)
    assert not [s for s in statuses if s >= 500], statuses
    if mode is GenerationMode.POSITIVE:
        assert statuses[REACHED_BY_METHOD.get((method, path), REACHED[path])], statuses
    else:
        assert statuses[401], statuses  # requests without the key or with a wrong one


def test_answers_with_data_match_the_document(api, app, clock):
    """Random visitors have no profile: check a real one, and a funnel with counts."""
    events = [
        {"type": "page_view", "visitor_id": "v-1", "source": "google_ads"},
        {"type": "product_view", "visitor_id": "v-1", "item_id": "a"},
        {"type": "review_view", "visitor_id": "v-1", "item_id": "a"},
        {"type": "add_to_cart", "visitor_id": "v-1", "item_id": "a", "quantity": 2, "price": 5},
        {"type": "checkout_start", "visitor_id": "v-1"},
        {"type": "purchase", "visitor_id": "v-1", "user_id": "u-1", "item_id": "a", "price": 5},
        {"type": "email_open", "visitor_id": "v-1", "channel": "email"},
        {"type": "survey_response", "visitor_id": "v-1", "properties": {"score": 9}},
    ]
    # The purchase logs v-1 in as u-1: a public key needs the backend's token for that.
    token = {
        "X-Identity-Token": mint_token(SECRET, user_id="u-1", visitor_id="v-1", now=clock.now())
    }
    response = app.test_client().post(
        "/v1/events", json={"events": events}, headers={**KEY, **token}
    )
    assert response.status_code == 202

    profile = api.make_case(
        operation=api["/v1/visitors/{visitor_id}/profile"]["GET"],
        path_parameters={"visitor_id": "v-1"},
        headers=ANALYST_KEY,
    )
    response = profile.call_and_validate()
    assert response.status_code == 200
    assert response.json()["purchases"]["count"] == 1 and response.json()["view"] == "full"
    # What the visitor's own browser reads with its token: documented too.
    browser = api.make_case(
        operation=api["/v1/visitors/{visitor_id}/profile"]["GET"],
        path_parameters={"visitor_id": "v-1"},
        headers={**KEY, **token},
    )
    response = browser.call_and_validate()
    assert response.status_code == 200
    assert response.json()["view"] == "browser" and response.json()["purchases"]["count"] == 1
    assert "segments" not in response.json()

    funnel = api.make_case(
        operation=api["/v1/analytics/funnel"]["GET"],
        query={"source": "google_ads"},
        headers=ANALYST_KEY,
    )
    response = funnel.call_and_validate()
    assert response.status_code == 200
    assert [step["visitors"] for step in response.json()["steps"]] == [1] * 8


def test_similar_and_cart_answers_with_a_model_match_the_document(api, app, make_artifact, clock):
    """The fuzz runs without a model (empty answers): check full ones, with catalog tiles."""
    from recsvc.store.models import ModelStore

    svc = app.extensions["recsvc"]
    ModelStore(svc.client, svc.keys).publish(make_artifact("v1"))
    svc.catalog.upsert([{"item_id": "i1", "category": "c", "price": 2.5, "title": "One"}])
    svc.holder.refresh()
    similar = api.make_case(
        operation=api["/v1/items/{item_id}/similar"]["GET"],
        path_parameters={"item_id": "i0"},
        query={"n": 3},
        headers=KEY,
    )
    response = similar.call_and_validate()
    assert response.status_code == 200
    assert [i["item_id"] for i in response.json()["items"]] == ["i1", "i2", "i3"]
    assert response.json()["items"][0]["title"] == "One"
    cart = api.make_case(
        operation=api["/v1/recommendations/cart"]["POST"],
        body={"items": ["i0", "i5"], "visitor_id": "v-1", "n": 4},
        # A visitor_id with a public key needs that visitor's identity token.
        headers={**KEY, "X-Identity-Token": mint_token(SECRET, visitor_id="v-1", now=clock.now())},
    )
    response = cart.call_and_validate()
    assert response.status_code == 200
    assert response.json()["strategy"] == "cart" and len(response.json()["items"]) == 4


def test_fuzz_without_redis(settings, clock):
    """Redis unreachable: validation still answers 4xx, the rest a documented-shape 503
    with Retry-After (``response_headers_conformance`` and the body schema are checked),
    never a 500."""
    dead = keyed(settings).replace(
        redis_url=f"redis://127.0.0.1:{closed_port()}",
        redis_connect_timeout=0.2,
        redis_socket_timeout=0.2,
        redis_retries=0,
    )
    config = {
        **CONFIG,
        "checks": {
            **CONFIG["checks"],
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
        },
    }
    app = create_app(dead, clock=clock)
    api, admin_api = load(app, config), load(app, with_key(config, ADMIN))
    analyst_api = load(app, with_key(config, ANALYST))
    statuses = Counter()
    for method, path in OPERATIONS:
        operation = schema_for(path, api, analyst_api, admin_api)[path][method]
        statuses.update(fuzz(operation, GenerationMode.POSITIVE, examples=15))
    assert statuses[503], statuses
    assert not [s for s in statuses if s >= 500 and s != 503], statuses


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what the fuzz found, pinned ----------------------------------------------------------
# (The events side is pinned in test_events_api: timestamp-year-0, NaN, 1e400 properties.)


@pytest.mark.parametrize(
    ("query", "status", "fields"),
    [
        # A start after the default end (today): an empty day list, PFCOUNT of no key, a 500.
        ("start=2424-11-26", 422, ["start"]),
        # The default start 29 days before 0001-01-05: OverflowError, a 500.
        ("end=0001-01-05", 200, None),
        # webargs dropped unknown query parameters although the schema says RAISE.
        ("sorce=email", 422, ["sorce"]),
        ("=", 422, [None]),
    ],
)
def test_funnel_queries_found_by_fuzzing(app, query, status, fields):
    response = app.test_client().get(f"/v1/analytics/funnel?{query}", headers=ANALYST_KEY)
    assert response.status_code == status, response.get_json()
    if fields is not None:
        errors = response.get_json()["error"]["details"]["errors"]
        assert [e["field"] for e in errors] == fields


# --- hostile shapes schemathesis does not generate ------------------------------------------
# 33,923 schemathesis cases passed while each of these was a 500, a truncated body accepted
# or an HTML answer: the document describes valid JSON, so its generators never write JSON
# nested 100,000 deep, a lone surrogate, a 5,000-digit number, bytes that are not UTF-8, a
# chunked body over the limit, an invented method, a path with empty segments or a URL over
# the limit. These strategies do, against every JSON endpoint, and check what the fuzz
# checks (a 4xx in the error shape) plus that nothing was written.

# Every JSON body the API reads, with ``%s`` where a hostile value goes, and the key it needs.
JSON_ENDPOINTS = [
    ("POST", "/v1/events", '{"type": "search", "visitor_id": "v-1", "properties": {"q": %s}}'),
    (
        "POST",
        "/v1/events",
        '{"type": "add_to_cart", "visitor_id": "v-1", "item_id": "a", "quantity": %s}',
    ),
    ("PUT", "/v1/admin/catalog/items", '{"items": [{"item_id": "a", "title": %s}]}'),
    ("POST", "/v1/recommendations/cart", '{"items": ["a"], "n": %s}'),
    ("POST", "/v1/nudges/claim", '{"channel": "email", "limit": %s}'),
    ("POST", "/v1/admin/banners", '{"placement": "home", "content": {"title": %s}}'),
    (
        "POST",
        "/v1/admin/banners",
        '{"placement": "home", "content": {"title": "t"}, "priority": %s}',
    ),
    ("POST", "/v1/admin/models/current", '{"version": %s}'),
]
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}


def key_header(path):
    """The key an operation needs (so that an answer is about the request, not the key)."""
    if is_admin(path):
        return {"X-API-Key": ADMIN}
    analyst = path.startswith("/v1/analytics/") or path.endswith(("/profile", "/nudges"))
    return {"X-API-Key": ANALYST if analyst else PUBLIC}


def lone_surrogate_strings():
    """JSON string text holding an unpaired surrogate escape somewhere."""
    surrogate = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
    text = st.text(st.characters(codec="ascii", exclude_characters='"\\'), max_size=20)
    return st.tuples(text, surrogate, text).map(lambda parts: '"' + "".join(parts) + '"')


def huge_numbers():
    """Numbers past a double's range: integers of 310 to 6,000 digits (past Python's
    4,300-digit limit too), and exponents past 308. (Integers of 20 to 309 digits are
    doubles, which number fields take and integer fields refuse: test_events_api.)"""
    digits = st.integers(310, 6000).map(lambda n: "9" * n)
    exponents = st.integers(309, 100_000).map(lambda e: f"1e{e}")
    return st.one_of(digits, exponents, exponents.map(lambda x: "-" + x))


def deep_json():
    """Arrays or objects nested 33 (one past the limit) to 100,000 deep."""
    depth = st.integers(33, 100_000)
    array = depth.map(lambda d: "[" * d + "]" * d)
    objects = st.integers(33, 2000).map(lambda d: '{"a":' * d + "1" + "}" * d)
    return st.one_of(array, objects)


def invalid_utf8():
    """A JSON string whose bytes are not UTF-8 (a lone continuation byte, an overlong
    form, a surrogate encoded as UTF-8, a truncated sequence)."""
    bad = st.sampled_from([b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xff", b"\xfe"])
    text = st.binary(max_size=10).filter(lambda b: b'"' not in b and b"\\" not in b and b.isascii())
    return st.tuples(text, bad, text).map(lambda parts: b'"' + b"".join(parts) + b'"')


HOSTILE_VALUES = {
    "lone-surrogate": lone_surrogate_strings(),
    "huge-number": huge_numbers(),
    "deep-json": deep_json(),
}


def snapshot(redis_conn, settings):
    keys = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    # Rate-limit buckets change with every public request, refused or not.
    return {key: redis_conn.dump(key) for key in keys if b":{ratelimit}:" not in key}


def assert_4xx_json(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:200])
    assert response.mimetype == "application/json"
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


def hostile_settings():
    return hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[
            hypothesis.HealthCheck.too_slow,
            hypothesis.HealthCheck.function_scoped_fixture,
            hypothesis.HealthCheck.data_too_large,
        ],
    )


@pytest.mark.parametrize("shape", list(HOSTILE_VALUES))
def test_hostile_values_in_every_json_body(app, redis_conn, settings, shape):
    client = app.test_client()
    before = snapshot(redis_conn, settings)

    @hostile_settings()
    @hypothesis.given(endpoint=st.sampled_from(JSON_ENDPOINTS), value=HOSTILE_VALUES[shape])
    def run(endpoint, value):
        method, path, body = endpoint
        response = client.open(
            path, method=method, data=body % value, headers=key_header(path),
            content_type="application/json",
        )  # fmt: skip
        assert_4xx_json(response)
        assert snapshot(redis_conn, settings) == before

    run()


def test_bytes_that_are_not_utf8_in_every_json_body(app, redis_conn, settings):
    client = app.test_client()
    before = snapshot(redis_conn, settings)

    @hostile_settings()
    @hypothesis.given(endpoint=st.sampled_from(JSON_ENDPOINTS), value=invalid_utf8())
    def run(endpoint, value):
        method, path, body = endpoint
        data = body.encode().replace(b"%s", value)
        response = client.open(
            path, method=method, data=data, headers=key_header(path),
            content_type="application/json",
        )  # fmt: skip
        assert_4xx_json(response)
        assert snapshot(redis_conn, settings) == before

    run()


def chunked(app, method, path, data, headers):
    """``data`` sent as gunicorn hands a chunked body to the app (no Content-Length)."""
    import io

    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(
        path,
        method=method,
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json", **headers},
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    body, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    return app.response_class(body, status, response_headers)


def test_chunked_bodies_over_the_limit(settings, clock, redis_conn):
    """Valid JSON padded past the limit: cut at the limit it would still parse."""
    limit = 4096
    app = create_app(keyed(settings).replace(max_body_bytes=limit), clock=clock)

    @hostile_settings()
    @hypothesis.given(endpoint=st.sampled_from(JSON_ENDPOINTS), extra=st.integers(1, 3 * limit))
    def run(endpoint, extra):
        method, path, body = endpoint
        data = (body % '"x"').encode()
        data += b" " * (limit + extra - len(data))
        response = chunked(app, method, path, data, key_header(path))
        assert response.status_code == 413
        assert_4xx_json(response)
        assert snapshot(redis_conn, settings) == {}

    run()


def operation_paths():
    """Concrete paths of every documented operation (ids filled in)."""
    filled = {"{visitor_id}": "v-1", "{item_id}": "i-1", "{banner_id}": "b-1"}
    paths = []
    for method, template in OPERATIONS:
        for name, value in filled.items():
            template = template.replace(name, value)
        paths.append((method, template))
    return paths


def test_invented_methods(app, redis_conn, settings):
    client = app.test_client()
    before = snapshot(redis_conn, settings)
    invented = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"), min_size=1, max_size=24)

    @hostile_settings()
    @hypothesis.given(
        operation=st.sampled_from(operation_paths()),
        method=invented.filter(lambda m: m not in KNOWN_METHODS),
    )
    def run(operation, method):
        _, path = operation
        response = client.open(path, method=method, headers=key_header(path))
        assert response.status_code == 405
        assert_4xx_json(response)
        assert snapshot(redis_conn, settings) == before

    run()


def test_paths_with_empty_segments_are_never_merged(app, redis_conn, settings):
    client = app.test_client()
    before = snapshot(redis_conn, settings)

    @hostile_settings()
    @hypothesis.given(operation=st.sampled_from(operation_paths()), data=st.data())
    def run(operation, data):
        method, path = operation
        slashes = [i for i, c in enumerate(path) if c == "/" and i > 0]
        at = data.draw(st.sampled_from(slashes))
        doubled = path[:at] + "/" * data.draw(st.integers(1, 3)) + path[at:]
        body = {"json": {}} if method in ("POST", "PUT") else {}
        response = client.open(doubled, method=method, headers=key_header(path), **body)
        # Never merged into another route nor redirected (an HTML 308 before). Ids may hold
        # "/" (ID_PATTERN), so a read of visitor "/v-1" may rightly answer 200.
        assert response.status_code < 300 or 400 <= response.status_code < 500
        assert response.mimetype == "application/json"
        assert snapshot(redis_conn, settings) == before

    run()


def test_over_long_urls(app, redis_conn, settings):
    client = app.test_client()
    before = snapshot(redis_conn, settings)

    @hostile_settings()
    @hypothesis.given(
        operation=st.sampled_from(operation_paths()),
        length=st.integers(4097, 20_000),
        where=st.sampled_from(["path", "query"]),
    )
    def run(operation, length, where):
        method, path = operation
        if where == "query":
            url = path + "?q=" + "a" * (length - len(path) - 3)
        else:
            url = "/v1/visitors/" + "a" * length + "/profile"
        response = client.open(url, method=method, headers=key_header(path))
        assert response.status_code == 414
        assert_4xx_json(response)
        assert snapshot(redis_conn, settings) == before

    run()
