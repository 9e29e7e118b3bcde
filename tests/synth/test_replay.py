"""The replayer against a real HTTP server on loopback that records what it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from synth_support import Store

from recsvc.cli import main
from recsvc.eventlog.reader import iter_records
from recsvc.synth.replay import (
    ReplayError,
    batched,
    client_event,
    replay,
    retry_after_seconds,
)

ERROR_BODY = {
    "error": {
        "code": "invalid_events",
        "message": "2 events are invalid.",
        "details": {"errors": [{"index": 3, "field": "item_id", "reason": "Required."}]},
    }
}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorder:
    """What the server received, and the answers it gives before falling back to 202."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    always: Answer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Answer:
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            if self.script:
                return self.script.pop(0)
        if self.always:
            return self.always
        n = len(body["events"])
        return Answer(202, {"accepted": n, "ids": [f"id{k}" for k in range(n)]})

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [request["body"]["events"] for request in self.requests]


@dataclass
class Server:
    url: str
    recorder: Recorder


@pytest.fixture
def server() -> Iterator[Server]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            answer = recorder.answer(self.path, dict(self.headers), body)
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass  # keep the test output clean

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", recorder)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def logged(store: Store, n: int) -> list[dict[str, Any]]:
    records = list(iter_records(store.config.out / "events"))[:n]
    return [client_event(r) for r in records]


def test_posts_the_log_in_batches_with_the_key(server: Server, store: Store) -> None:
    result = replay(server.url + "/", store.config.out / "events", 100, "k-123", limit=250)
    assert (result.sent, result.batches, result.retries) == (250, 3, 0)
    assert [len(b) for b in server.recorder.batches] == [100, 100, 50]
    for request in server.recorder.requests:
        assert request["path"] == "/v1/events"
        assert request["headers"]["X-API-Key"] == "k-123"
        assert request["headers"]["Content-Type"] == "application/json"
    sent = [event for batch in server.recorder.batches for event in batch]
    assert sent == logged(store, 250)  # in log order, timestamps untouched
    assert all("id" not in e and "received_at" not in e for e in sent)
    assert all(e["timestamp"] for e in sent)


def test_no_key_no_header(server: Server, store: Store) -> None:
    replay(server.url, store.config.out, 10, limit=10)
    assert "X-API-Key" not in server.recorder.requests[0]["headers"]


def test_waits_as_told_and_resends_the_same_batch_on_503(server: Server, store: Store) -> None:
    unavailable = {"error": {"code": "unavailable", "message": "Redis down", "details": {}}}
    server.recorder.script = [Answer(202, {"accepted": 20, "ids": []})]
    server.recorder.script.append(Answer(503, unavailable, {"Retry-After": "3"}))
    waits: list[float] = []
    result = replay(server.url, store.config.out, 20, limit=60, sleep=waits.append)
    assert waits == [3.0]
    assert (result.sent, result.batches, result.retries) == (60, 3, 1)
    batches = server.recorder.batches
    assert len(batches) == 4 and batches[1] == batches[2]
    assert [e for b in (batches[0], *batches[2:]) for e in b] == logged(store, 60)


def test_backs_off_on_429_without_retry_after(server: Server, store: Store) -> None:
    slow_down = Answer(429, {"error": {"code": "rate_limited", "message": "", "details": {}}})
    server.recorder.script = [slow_down, slow_down]
    waits: list[float] = []
    result = replay(server.url, store.config.out, 5, limit=5, sleep=waits.append)
    assert waits == [1.0, 2.0]
    assert result.sent == 5 and len(server.recorder.requests) == 3


def test_gives_up_after_bounded_retries(server: Server, store: Store) -> None:
    server.recorder.always = Answer(503, {"error": {"code": "down"}}, {"Retry-After": "1"})
    waits: list[float] = []
    with pytest.raises(ReplayError) as raised:
        replay(server.url, store.config.out, 5, limit=50, max_retries=2, sleep=waits.append)
    assert raised.value.status == 503 and raised.value.sent == 0
    assert waits == [1.0, 1.0] and len(server.recorder.requests) == 3


def test_stops_on_422_with_the_error_body(server: Server, store: Store) -> None:
    server.recorder.script = [Answer(202, {"accepted": 10, "ids": []}), Answer(422, ERROR_BODY)]
    with pytest.raises(ReplayError) as raised:
        replay(server.url, store.config.out, 10, limit=100, sleep=pytest.fail)
    error = raised.value
    assert error.status == 422 and error.sent == 10
    assert json.loads(error.body) == ERROR_BODY and "item_id" in str(error)
    assert len(server.recorder.requests) == 2  # nothing after the refusal


def test_unreachable_server_is_a_replay_error(store: Store) -> None:
    with pytest.raises(ReplayError, match="cannot reach"):
        replay("http://127.0.0.1:9", store.config.out, 10, limit=10)


def test_cli_reports_events_sent(server: Server, store: Store) -> None:
    args = ["replay", "--url", server.url, "--from", str(store.config.out), "--limit", "30"]
    result = CliRunner().invoke(main, [*args, "--batch-size", "10", "--api-key", "k"])
    assert result.exit_code == 0, result.output
    assert "sent 30 events in 3 batches" in result.output and "events/s" in result.output
    assert len(server.recorder.requests) == 3


def test_cli_fails_with_the_server_error(server: Server, store: Store) -> None:
    server.recorder.script = [Answer(422, ERROR_BODY)]
    args = ["replay", "--url", server.url, "--from", str(store.config.out), "--limit", "30"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "invalid_events" in result.output and "sent 0 events" in result.output


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7", default=1.0, cap=60.0) == 7.0
    assert retry_after_seconds(None, default=4.0, cap=60.0) == 4.0
    assert retry_after_seconds("soon", default=2.0, cap=60.0) == 2.0
    assert retry_after_seconds("3600", default=1.0, cap=60.0) == 60.0
    assert retry_after_seconds("-5", default=1.0, cap=60.0) == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25.0 < retry_after_seconds(later, default=1.0, cap=60.0) <= 30.0


def test_batched_and_client_event() -> None:
    assert [len(b) for b in batched(({"n": k} for k in range(7)), 3)] == [3, 3, 1]
    record = {"id": "x", "type": "page_view", "visitor_id": "v", "received_at": "t"}
    assert client_event(record) == {"type": "page_view", "visitor_id": "v"}
