"""Steady storefront traffic for drills: threads posting event batches and reading
recommendations, every answer recorded (time sent, time answered, status, event ids).

Bounded: each thread stops when ``stop()`` is called or at ``max_seconds``. Loopback only
(the drills start everything they talk to).
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Answer:
    kind: str  # "event" or "read"
    sent: float  # time.monotonic()
    done: float
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    ids: list[str] = field(default_factory=list)  # event ids of a 202
    error: str = ""  # the exception's name when there was no HTTP answer

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Traffic:
    """``writers`` threads POST batches of ``batch`` events, ``readers`` threads GET
    recommendations, all against ``base`` (``http://127.0.0.1:port``)."""

    def __init__(
        self,
        base: str,
        writers: int = 2,
        readers: int = 2,
        batch: int = 5,
        visitors: int = 500,
        max_seconds: float = 120.0,
        pause: float = 0.0,
    ) -> None:
        self.base = urlsplit(base)
        self.writers, self.readers, self.batch = writers, readers, batch
        self.visitors = visitors
        self.deadline = time.monotonic() + max_seconds
        self.pause = pause
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counter = itertools.count()

    def start(self) -> Traffic:
        for n in range(self.writers):
            self._threads.append(threading.Thread(target=self._loop, args=("event", n)))
        for n in range(self.readers):
            self._threads.append(threading.Thread(target=self._loop, args=("read", n)))
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.answers

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=5)

    def _loop(self, kind: str, number: int) -> None:
        connection = self._connection()
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            n = next(self._counter)
            sent = time.monotonic()
            status, ids, error = 0, [], ""
            try:
                if kind == "event":
                    status, ids = self._post(connection, n)
                else:
                    status = self._get(connection, n)
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
                connection.close()
                connection = self._connection()
            with self._lock:
                self.answers.append(Answer(kind, sent, time.monotonic(), status, ids, error))
            if self.pause:
                time.sleep(self.pause)
        connection.close()

    def _post(self, connection: http.client.HTTPConnection, n: int) -> tuple[int, list[str]]:
        events = [
            {
                "type": "product_view",
                "visitor_id": f"d{(n * self.batch + k) % self.visitors}",
                "item_id": f"i{(n + k) % 200}",
            }
            for k in range(self.batch)
        ]
        body = json.dumps({"events": events})
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        ids = json.loads(payload).get("ids", []) if response.status == 202 else []
        return response.status, ids

    def _get(self, connection: http.client.HTTPConnection, n: int) -> int:
        path = f"/v1/visitors/d{n % self.visitors}/recommendations?n=10"
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status


def summary(answers: list[Answer], kind: str) -> dict[str, int]:
    """Counts of one kind of answer by status (``"0"`` for no HTTP answer)."""
    counts: dict[str, int] = {}
    for answer in answers:
        if answer.kind == kind:
            counts[str(answer.status)] = counts.get(str(answer.status), 0) + 1
    return dict(sorted(counts.items()))
