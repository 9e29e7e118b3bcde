"""The side probe times each call of a page over its own connection and summarises them."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from loadtests.side_probe import SLOW_MS, probe, summary


def test_summary_ranks_and_counts_the_slow_calls():
    figures = summary([float(n) for n in range(1, 101)])
    assert figures["calls"] == 100
    assert figures["p50"] == pytest.approx(51.0)  # nearest rank of 99 * 0.5
    assert figures["p99"] == 99.0 and figures["max"] == 100.0
    assert figures[f"over_{SLOW_MS:g}_ms"] == 80
    assert summary([]) == {"calls": 0}


class Shop(BaseHTTPRequestHandler):
    """Answers what the service would: 202 to events, 200 to reads; records each call."""

    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(202)

    def do_GET(self):
        self._answer(200)

    def _answer(self, status):
        Shop.seen.append((self.command, self.path, self.headers.get("X-API-Key")))
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_each_page_is_an_event_then_its_reads_for_one_new_visitor():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = probe(f"http://127.0.0.1:{server.server_port}", 0.5, "key-1")
    finally:
        server.shutdown()
    pages = report["events"]["calls"]
    assert pages >= 1
    assert report["recommendations"]["calls"] == report["nudges"]["calls"] == pages
    assert report["statuses"] == {202: pages, 200: 2 * pages}
    first = Shop.seen[:3]
    assert [method for method, _, _ in first] == ["POST", "GET", "GET"]
    visitor = first[1][1].split("/")[3]
    assert first[2][1] == f"/v1/visitors/{visitor}/nudges"
    assert all(key == "key-1" for _, _, key in Shop.seen)
