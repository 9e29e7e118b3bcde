"""What gunicorn itself refuses, as a real client meets it: the JSON error shape, never
HTML; and the request guard's answers through gunicorn (chunked bodies, long lines)."""

import json
import socket

import pytest

from recsvc.web.protocol_errors import error_bytes


def test_error_bytes_are_a_complete_json_response():
    raw = error_bytes(414, "URI Too Long", "Request Line is too large (5034 > 4094)")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "error": {
            "code": "uri_too_long",
            "message": "Request Line is too large (5034 > 4094)",
            "details": {},
        }
    }


def exchange(port, request: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the whole answer: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def request_line(line: bytes, extra: bytes = b"") -> bytes:
    return line + b"\r\nHost: x\r\nX-API-Key: pub\r\nConnection: close\r\n" + extra + b"\r\n"


def error_of(answer):
    status, headers, body = answer
    assert headers["content-type"].startswith("application/json"), body[:200]
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    return status, error["code"]


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"foo /v1/events HTTP/1.1", 400),  # a method gunicorn will not parse
        (b"GET /v1/visitors/" + b"a" * 5000 + b"/profile HTTP/1.1", 414),
        (b"GET /v1/visitors/x/profile HTTP/9.9", 400),
    ],
    ids=["lowercase-method", "request-line-5000", "http-9.9"],
)
def test_gunicorn_refusals_are_json(served, line, status):
    port, _ = served
    assert error_of(exchange(port, request_line(line)))[0] == status


@pytest.mark.parametrize(
    ("line", "status", "code"),
    [
        (b"FOO /v1/events HTTP/1.1", 405, "method_not_allowed"),
        (b"GET /v1//admin/banners HTTP/1.1", 404, "not_found"),
        (b"GET /v1/visitors/" + b"a" * 3000 + b"/profile HTTP/1.1", 422, "validation_error"),
    ],
    ids=["FOO", "double-slash", "request-line-3000"],
)
def test_the_apps_refusals_through_gunicorn(served, line, status, code):
    port, _ = served
    assert error_of(exchange(port, request_line(line))) == (status, code)


def test_a_chunked_body_over_2_mib_is_413_through_gunicorn(served, redis_url):
    from recsvc.keys import KeySpace
    from recsvc.redis_client import connect
    from recsvc.settings import Settings
    from recsvc.store.stream import total_length

    port, namespace = served
    events = [{"type": "page_view", "visitor_id": f"v-{n}"} for n in range(100)]
    body = json.dumps({"events": events}).encode()
    body += b" " * (2 * 1024 * 1024 + 1000 - len(body))
    chunked = b"".join(
        b"%x\r\n" % len(body[i : i + 65536]) + body[i : i + 65536] + b"\r\n"
        for i in range(0, len(body), 65536)
    )
    headers = b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    answer = exchange(
        port, request_line(b"POST /v1/events HTTP/1.1", headers) + chunked + b"0\r\n\r\n"
    )
    assert error_of(answer) == (413, "request_entity_too_large")
    assert total_length(connect(redis_url), KeySpace(namespace), Settings.stream_shards) == 0
