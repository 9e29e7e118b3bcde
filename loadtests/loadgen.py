"""A small closed-loop HTTP load generator for the benchmark scripts.

asyncio with raw HTTP/1.1 on loopback: far cheaper per request than an HTTP client
library, so on a 2-core machine the generator takes as little CPU from the server as
possible. Each of ``concurrency`` connections sends a request, waits for the whole
answer, records its latency and sends the next one (reconnecting when the server closes
the connection, as gunicorn's sync workers do).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, host: str) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {host}\r\n"
        for name, value in self.headers.items():
            head += f"{name}: {value}\r\n"
        if self.body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
        return head.encode() + b"\r\n" + self.body


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict:
        return {
            "name": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "statuses": self.statuses,
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    closes = headers.get("connection", "").lower() == "close"
    return status, closes, body


async def _worker(host, port, requests, deadline, result, keep_bodies) -> None:
    reader = writer = None
    for request in requests:
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request.encode(host))
            status, closes, body = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
            writer = None
            continue
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.requests += 1
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status >= 500:
            result.errors += 1
        if keep_bodies:
            result.bodies.append(body)
        if closes:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _run(host, port, make_requests, concurrency, seconds, name, keep_bodies) -> Result:
    result = Result(name)
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _worker(host, port, make_requests(n), deadline, result, keep_bodies)
            for n in range(concurrency)
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def run(
    host: str,
    port: int,
    make_requests: Callable[[int], Iterator[Request]],
    *,
    concurrency: int = 8,
    seconds: float = 10.0,
    name: str = "",
    keep_bodies: bool = False,
) -> Result:
    """Drive ``make_requests(connection_number)`` against the server for ``seconds``."""
    return asyncio.run(_run(host, port, make_requests, concurrency, seconds, name, keep_bodies))


def repeat(request: Request) -> Callable[[int], Iterator[Request]]:
    return lambda _n: itertools.repeat(request)


def json_body(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
