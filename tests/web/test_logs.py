"""JSON log lines, request ids and the access log switch."""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
from datetime import UTC, datetime

import pytest

from recsvc.web.app import create_app
from recsvc.web.logs import JsonFormatter, new_request_id

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")


def _record(**extra) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "recsvc.test", "levelname": "INFO", "msg": "hi %s"})
    record.args = ("there",)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_the_record_and_its_extras():
    record = _record(status=200, path="/x")
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info" and line["logger"] == "recsvc.test"
    assert line["message"] == "hi there"
    assert line["status"] == 200 and line["path"] == "/x"
    assert "args" not in line and "msg" not in line


def test_the_timestamp_is_utc_with_milliseconds_as_datetime_writes_it():
    formatter = JsonFormatter()
    for created in (1_700_000_000.0, 1_700_000_000.9996, 1_700_000_001.25, 1_700_000_001.5):
        record = _record()
        record.created = created
        ts = json.loads(formatter.format(record))["ts"]
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert ISO_MS.match(ts) and ts == expected


def test_values_json_cannot_hold_are_written_as_text():
    line = json.loads(JsonFormatter().format(_record(when={1, 2}, huge=10**30, keyed={1: "a"})))
    assert line["huge"] == 10**30
    assert line["when"] == str({1, 2})
    assert line["keyed"] == {"1": "a"}


def test_an_exception_is_in_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]


def test_new_request_ids_are_unique_hex_of_32():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def _child_id(queue) -> None:
    queue.put(new_request_id())


def test_a_forked_worker_draws_its_own_prefix():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_child_id, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    ids = [queue.get(timeout=10) for _ in children] + [new_request_id()]
    for child in children:
        child.join()
    assert len({i[:16] for i in ids}) == 3


@pytest.mark.parametrize("enabled", [True, False])
def test_the_access_log_setting(settings, clock, caplog, enabled):
    app = create_app(settings.replace(access_log=enabled), clock=clock)
    with caplog.at_level(logging.INFO, logger="recsvc.access"):
        response = app.test_client().get("/healthz", headers={"X-Request-ID": "req-1"})
    lines = [r for r in caplog.records if r.name == "recsvc.access"]
    assert response.headers["X-Request-ID"] == "req-1"
    if not enabled:
        assert lines == []
        return
    (line,) = lines
    assert (line.method, line.path, line.status) == ("GET", "/healthz", 200)
    assert line.duration_ms >= 0
