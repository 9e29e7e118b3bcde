"""The wrk driver against a small local HTTP server: rotation, counts, capture, CPU."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from loadtests import wrk

pytestmark = pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[Counter] = Counter()
    bodies: ClassVar[list[bytes]] = []
    keys: ClassVar[Counter] = Counter()

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        type(self).seen[self.path] += 1
        type(self).keys[self.headers.get("X-API-Key")] += 1
        if self.path == "/busy":
            self._answer(503, b'{"error":{}}')
        elif self.path == "/retry":
            self._answer(503, b'{"error":{}}', {"Retry-After": "1"})
        else:
            self._answer(200, b'{"path":"' + self.path.encode() + b'"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).keys[self.headers.get("X-API-Key")] += 1
        assert self.headers["Content-Type"] == "application/json"
        type(self).bodies.append(body)
        self._answer(202, json.dumps({"got": json.loads(body)}).encode())

    def log_message(self, *args) -> None:
        return None


@pytest.fixture
def server():
    _Handler.seen, _Handler.bodies, _Handler.keys = Counter(), [], Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_rotates_through_every_request_with_the_headers(server, tmp_path):
    requests = [wrk.Request("GET", f"/p{n}") for n in range(5)]
    path = wrk.write_requests(requests, {"X-API-Key": "k1"}, tmp_path / "r.tsv")
    result = wrk.run(server, path, seconds=1, connections=2, name="rotate", marker='"/p')
    assert set(_Handler.seen) == {f"/p{n}" for n in range(5)}
    counts = list(_Handler.seen.values())
    assert max(counts) - min(counts) <= 4  # in turn, not at random
    assert _Handler.keys == Counter({"k1": sum(counts)})
    assert result.requests > 0 and result.statuses == {200: result.requests}
    assert result.marked == result.requests
    assert result.rps > 0 and 0 < result.latency_ms["p50"] <= result.latency_ms["max"]
    assert result.generator_cpu_s > 0


def test_a_request_may_carry_headers_of_its_own(server, tmp_path):
    requests = [
        wrk.Request("GET", "/mine", headers=(("X-API-Key", "k2"),)),
        wrk.Request("POST", "/events", b"{}", headers=(("X-API-Key", "k3"),)),
        wrk.Request("GET", "/shared"),
    ]
    path = wrk.write_requests(requests, {"X-API-Key": "k1"}, tmp_path / "r.tsv")
    result = wrk.run(server, path, seconds=1, connections=1)
    assert set(_Handler.keys) == {"k1", "k2", "k3"}
    # Each request with its own key, and only it: wrk rotates the three in turn.
    assert _Handler.keys["k2"] == _Handler.seen["/mine"]
    assert _Handler.keys["k1"] == _Handler.seen["/shared"]
    assert 0 <= sum(_Handler.keys.values()) - result.requests <= 1  # one in flight at the end


def test_a_marker_of_several_parts_needs_them_all(server, tmp_path):
    requests = [wrk.Request("GET", "/p1"), wrk.Request("GET", "/p2")]
    path = wrk.write_requests(requests, {}, tmp_path / "r.tsv")
    result = wrk.run(server, path, seconds=1, connections=1, marker=('"path"', "/p1"))
    assert abs(result.marked - result.requests / 2) <= 1


def test_counts_statuses_and_503s_without_retry_after(server, tmp_path):
    requests = [wrk.Request("GET", "/busy"), wrk.Request("GET", "/retry")]
    path = wrk.write_requests(requests, {}, tmp_path / "r.tsv")
    result = wrk.run(server, path, seconds=1, connections=1)
    assert set(result.statuses) == {503}
    assert abs(result.no_retry_after - result.statuses[503] / 2) <= 1
    assert result.server_errors == result.statuses[503]


def test_posts_bodies_and_captures_2xx_answers(server, tmp_path):
    requests = [wrk.Request("POST", "/events", json.dumps({"n": n}).encode()) for n in range(3)]
    path = wrk.write_requests(requests, {}, tmp_path / "r.tsv")
    capture = tmp_path / "captured.jsonl"
    result = wrk.run(server, path, seconds=1, connections=1, capture=capture)
    assert {json.loads(b)["n"] for b in _Handler.bodies} == {0, 1, 2}
    answers = [json.loads(line) for line in capture.read_text().splitlines()]
    assert len(answers) == result.statuses[202]
    assert {a["got"]["n"] for a in answers} == {0, 1, 2}


def test_a_request_line_may_not_hold_a_tab_or_newline():
    with pytest.raises(ValueError):
        wrk.Request("GET", "/a\tb").line()
    with pytest.raises(ValueError):
        wrk.Request("POST", "/a", b'{"x":\n1}').line()
    with pytest.raises(ValueError):
        wrk.Request("GET", "/a", headers=(("X-Identity-Token", "a\tb"),)).line()


def test_a_phase_without_requests_is_refused(tmp_path):
    with pytest.raises(ValueError):
        wrk.write_requests([], {}, tmp_path / "r.tsv")


def test_wrk_failure_is_reported(tmp_path):
    path = wrk.write_requests([wrk.Request("GET", "/")], {}, tmp_path / "r.tsv")
    with pytest.raises(wrk.WrkError):
        wrk.run("not-a-url", path, seconds=1, connections=1)
