"""Requests refused before any view: a streamed body over the limit, an over-long URL,
paths spelt with empty segments, unknown methods; each with the JSON error body and
nothing written."""

import io
import json

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from recsvc.store.stream import total_length
from recsvc.web.app import create_app


def snapshot(redis_conn, settings):
    keys = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    return {key: redis_conn.dump(key) for key in keys}


def chunked_post(app, path, data):
    """POST ``data`` as gunicorn hands a chunked body to the app: no Content-Length, and
    ``wsgi.input_terminated`` set (the server ends the stream)."""
    environ = EnvironBuilder(
        path,
        method="POST",
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return app.response_class(body, status, headers)


def batch_padded_to(size):
    """A valid batch followed by whitespace up to ``size`` bytes: cut anywhere in the
    padding it is still valid JSON (which is how a cut body used to get accepted)."""
    events = [{"type": "page_view", "visitor_id": f"v-{n}"} for n in range(100)]
    raw = json.dumps({"events": events}).encode()
    return raw + b" " * (size - len(raw))


def test_a_chunked_body_over_the_limit_is_413_not_cut_and_accepted(app, settings, redis_conn):
    """Before: read up to 2 MiB and handed on, 202, profiles written."""
    response = chunked_post(app, "/v1/events", batch_padded_to(settings.max_body_bytes + 1))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    assert snapshot(redis_conn, settings) == {}


def test_a_chunked_body_within_the_limit_is_read_whole(app, settings, redis_conn, keys):
    response = chunked_post(app, "/v1/events", batch_padded_to(settings.max_body_bytes))
    assert response.status_code == 202, response.get_data(as_text=True)[:300]
    assert total_length(redis_conn, keys, settings.stream_shards) == 100


def test_the_limit_applies_to_every_endpoint_that_reads_a_body(settings, clock, redis_conn):
    app = create_app(settings.replace(max_body_bytes=1000), clock=clock)
    for path in ("/v1/admin/banners", "/v1/recommendations/cart", "/v1/nudges/claim"):
        response = chunked_post(app, path, b'{"x": "' + b"a" * 1200 + b'"}')
        assert response.status_code == 413, path
    assert snapshot(redis_conn, settings) == {}


def test_an_over_long_url_is_414_json(client, settings):
    response = client.get("/v1/visitors/v-1/recommendations?exclude=" + "a," * 2100)
    assert response.status_code == 414
    assert response.get_json()["error"]["code"] == "uri_too_long"
    assert client.get("/v1/visitors/v-1/recommendations?exclude=" + "a," * 1000).status_code == 200


@pytest.mark.parametrize("path", ["/v1//events", "/v1/events/", "/v1/visitors//profile"])
def test_paths_with_empty_segments_are_json_404s_not_html_redirects(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "TRACE", "PATCH", "DELETE"])
def test_an_unknown_method_is_a_json_405(client, redis_conn, settings, method):
    response = client.open("/v1/events", method=method, json={"type": "page_view"})
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert snapshot(redis_conn, settings) == {}
