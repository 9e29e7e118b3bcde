"""Drive wrk (the Debian package) from Python: a phase is a list of requests and a duration.

wrk is a C event loop: on loopback it costs a few percent of a core at the rates one
gunicorn box answers, where a Python generator takes as much CPU as the server it
measures. ``loadtests/wrk_rotate.lua`` rotates through the phase's requests (written to a
file, one per line: paths and bodies differ per request), counts answers by status and
prints the figures as JSON; this module runs it and reads its own CPU from the kernel
(``wait4``'s rusage), so every figure comes with what the generator spent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk_rotate.lua")
JSON_PREFIX = "WRK_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no figures."""


@dataclass(frozen=True)
class Request:
    """One HTTP request of a phase; ``body`` is sent as JSON when not empty. ``headers``:
    this request's own (an identity token per visitor, say), over the phase's."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    def line(self) -> str:
        """Its lines in the request file: one ``R`` line per header of its own, then the
        request."""
        for part in (self.method, self.path, *[p for h in self.headers for p in h]):
            if "\t" in part or "\n" in part:
                raise ValueError(f"tab or newline in {part!r}")
        body = self.body.decode()
        if "\t" in body or "\n" in body:  # compact JSON never holds either
            raise ValueError("tab or newline in a request body")
        own = "".join(f"R\t{name}\t{value}\n" for name, value in self.headers)
        return f"{own}{self.method}\t{self.path}\t{body}"


@dataclass
class Result:
    """What wrk measured in one phase. Latencies in ms; CPU in cores (CPU s per s)."""

    name: str
    seconds: float
    requests: int
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    marked: int
    no_retry_after: int  # 429 and 503 answers without a Retry-After header
    generator_cpu_s: float
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["p99"]

    @property
    def server_errors(self) -> int:
        """5xx answers plus requests that got no answer (connect, read, write, timeout)."""
        failed = sum(n for k, n in self.socket_errors.items() if k != "status")
        return sum(n for status, n in self.statuses.items() if status >= 500) + failed

    def summary(self) -> dict:
        return {
            "name": self.name,
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "p50_ms": self.latency_ms["p50"],
            "p90_ms": self.latency_ms["p90"],
            "p99_ms": self.latency_ms["p99"],
            "max_ms": self.latency_ms["max"],
            "statuses": self.statuses,
            "socket_errors": {k: n for k, n in self.socket_errors.items() if n},
            "marked": self.marked,
            "no_retry_after": self.no_retry_after,
            "generator_cpu_s": round(self.generator_cpu_s, 2),
            "cpu_cores": self.cpu,
        }


def available() -> bool:
    return shutil.which("wrk") is not None


def write_requests(
    requests: Iterable[Request], headers: Mapping[str, str], path: Path | None = None
) -> Path:
    """The request file ``wrk_rotate.lua`` reads: the phase's headers first, then each
    request (after its own headers' lines)."""
    if path is None:
        handle, name = tempfile.mkstemp(prefix="recsvc-wrk-", suffix=".tsv")
        os.close(handle)
        path = Path(name)
    with path.open("w", encoding="utf-8") as out:
        for name, value in headers.items():
            out.write(f"H\t{name}\t{value}\n")
        count = 0
        for request in requests:
            out.write(request.line() + "\n")
            count += 1
    if not count:
        raise ValueError("a phase needs at least one request")
    return path


def run(
    url: str,
    requests_file: Path,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    name: str = "",
    marker: str | tuple[str, ...] = "",
    capture: Path | None = None,
    timeout_s: float = 10.0,
) -> Result:
    """Run wrk for ``seconds`` with ``connections`` open connections (a closed loop: each
    sends its next request when the answer to the last one is in) on ``threads`` threads.

    ``marker``: count answers whose body holds this substring, or every one of these
    (``Result.marked``);
    ``capture``: write the bodies of 2xx answers there, one a line (compact JSON has no
    newline).
    """
    if not available():
        raise WrkError("wrk is not installed (Debian: apt-get install wrk)")
    command = [
        "wrk",
        f"--duration={max(1, round(seconds))}s",
        f"--connections={max(connections, threads)}",
        f"--threads={threads}",
        f"--timeout={max(1, round(timeout_s))}s",
        f"--script={SCRIPT}",
        url,
        "--",
        str(requests_file),
        marker if isinstance(marker, str) else "\t".join(marker),
        str(capture or ""),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        # wait4, not wait: the kernel's account of wrk's own CPU (user + system).
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = _parse(name, out.read().decode(), err.read().decode(), process.returncode)
    result.generator_cpu_s = usage.ru_utime + usage.ru_stime
    return result


def _parse(name: str, stdout: str, stderr: str, returncode: int) -> Result:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(JSON_PREFIX)), None)
    if returncode != 0 or line is None:
        raise WrkError(f"wrk failed ({returncode}): {stderr.strip() or stdout.strip()}")
    raw = json.loads(line[len(JSON_PREFIX) :])
    return Result(
        name=name,
        seconds=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        statuses={int(k): v for k, v in sorted(raw["statuses"].items())},
        socket_errors=raw["errors"],
        latency_ms={k: round(v / 1000, 3) for k, v in raw["latency_us"].items()},
        marked=raw["marked"],
        no_retry_after=raw["no_retry_after"],
        generator_cpu_s=0.0,
    )
