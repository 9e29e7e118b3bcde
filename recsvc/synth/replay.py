"""Replay an event log against a running service, as a storefront would send it.

Records are read with ``recsvc.eventlog.reader.iter_records`` (so duplicates are dropped),
stripped of the fields the server sets (``id``, ``received_at``) and posted in batches as
``{"events": [...]}`` to ``<url>/v1/events``. Timestamps are sent unchanged: the service
keeps the time an event happened, and rejects times more than a day in the future.

A batch answered 503 or 429 (Redis down, rate limited) is sent again after the server's
``Retry-After`` (or an exponential backoff without one), a bounded number of times; any
other answer that is not 2xx stops the replay with the server's error body, because
sending the next batch would only make the same mistake again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from itertools import islice
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from recsvc.eventlog.reader import iter_records

# Set by the server when it accepts an event; a client must not send them.
SERVER_FIELDS: frozenset[str] = frozenset({"id", "received_at"})
RETRY_STATUSES: frozenset[int] = frozenset({429, 503})
EVENTS_PATH = "/v1/events"


class ReplayError(RuntimeError):
    """The replay stopped: the server refused a batch, kept answering 503/429, or could not
    be reached. ``sent`` events were accepted before that."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "", sent: int = 0):
        super().__init__(message)
        self.status = status
        self.body = body
        self.sent = sent


@dataclass(frozen=True)
class ReplayResult:
    """How a replay went: events and batches accepted, retries made, seconds taken."""

    sent: int
    batches: int
    retries: int
    elapsed_s: float

    @property
    def events_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def client_event(record: dict[str, Any]) -> dict[str, Any]:
    """The event a storefront would have sent for a logged record: the record without the
    server-side fields. Everything else, the timestamp included, is kept as is."""
    return {key: value for key, value in record.items() if key not in SERVER_FIELDS}


def batched(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Lists of ``size`` records (the last one shorter), in order."""
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def retry_after_seconds(header: str | None, default: float, cap: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or
    ``default`` when it is absent or unreadable; never negative, never above ``cap``."""
    if header:
        try:
            seconds = float(header)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(header).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = default
    else:
        seconds = default
    return min(max(seconds, 0.0), cap)


@dataclass
class Replayer:
    """Posts batches to one service with one HTTP session (connections are kept alive).

    ``max_retries`` bounds the retries of one batch; ``max_wait_s`` caps one wait, so a
    strange ``Retry-After`` cannot stall the replay for hours. ``sleep`` is injectable so
    that tests need not wait.
    """

    url: str
    api_key: str | None = None
    session: requests.Session | None = None
    max_retries: int = 10
    max_wait_s: float = 60.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.endpoint = self.url.rstrip("/") + EVENTS_PATH
        self.session = self.session or requests.Session()
        self.headers = {"X-API-Key": self.api_key} if self.api_key else {}
        self.retries = 0

    def post(self, batch: list[dict[str, Any]], sent: int = 0) -> int:
        """Send one batch until the server accepts it; return the events it accepted.

        Raises ReplayError on a refusal, on too many 503/429 answers or when the server
        cannot be reached; ``sent`` is carried into the error for the caller's report.
        """
        for attempt in range(self.max_retries + 1):
            response = self._send(batch, sent)
            if response.status_code not in RETRY_STATUSES:
                return self._accepted(response, len(batch), sent)
            if attempt == self.max_retries:
                break
            backoff = min(2.0**attempt, self.max_wait_s)
            header = response.headers.get("Retry-After")
            self.sleep(retry_after_seconds(header, backoff, self.max_wait_s))
            self.retries += 1
        raise ReplayError(
            f"gave up after {self.max_retries} retries: HTTP {response.status_code}",
            status=response.status_code,
            body=response.text,
            sent=sent,
        )

    def _send(self, batch: list[dict[str, Any]], sent: int) -> requests.Response:
        assert self.session is not None
        try:
            return self.session.post(
                self.endpoint, json={"events": batch}, headers=self.headers, timeout=self.timeout_s
            )
        except requests.RequestException as error:
            raise ReplayError(f"cannot reach {self.endpoint}: {error}", sent=sent) from error

    def _accepted(self, response: requests.Response, expected: int, sent: int) -> int:
        if not 200 <= response.status_code < 300:
            raise ReplayError(
                f"server refused a batch: HTTP {response.status_code}: {response.text}",
                status=response.status_code,
                body=response.text,
                sent=sent,
            )
        try:
            accepted = int(response.json()["accepted"])
        except (ValueError, KeyError, TypeError) as error:
            raise ReplayError(
                f"unexpected answer: {response.text[:200]}", body=response.text, sent=sent
            ) from error
        if accepted != expected:
            raise ReplayError(
                f"server accepted {accepted} of {expected} events",
                status=response.status_code,
                body=response.text,
                sent=sent + accepted,
            )
        return accepted


def replay(
    url: str,
    source: Path,
    batch_size: int = 100,
    api_key: str | None = None,
    limit: int | None = None,
    *,
    max_retries: int = 10,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = False,
) -> ReplayResult:
    """Post the log under ``source`` (a folder or one file) to the service at ``url``.

    Sends at most ``limit`` events, ``batch_size`` per request (the service takes up to
    1,000), with the ``X-API-Key`` header when ``api_key`` is given; a batch is retried at
    most ``max_retries`` times. Raises ValueError on a bad size and ReplayError when the
    server stops the replay (its ``sent`` says how far it got).
    """
    if batch_size < 1 or (limit is not None and limit < 0):
        raise ValueError("batch_size must be positive and limit non-negative")
    replayer = Replayer(url, api_key=api_key, max_retries=max_retries, sleep=sleep)
    records: Iterable[dict[str, Any]] = map(client_event, iter_records(Path(source)))
    if limit is not None:
        records = islice(records, limit)
    started = time.perf_counter()
    sent = batches = 0
    with tqdm(total=limit, desc="replay", unit="event", disable=not progress) as bar:
        for batch in batched(records, batch_size):
            sent += replayer.post(batch, sent)
            batches += 1
            bar.update(len(batch))
    return ReplayResult(
        sent=sent,
        batches=batches,
        retries=replayer.retries,
        elapsed_s=time.perf_counter() - started,
    )
