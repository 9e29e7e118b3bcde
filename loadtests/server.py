"""Start ``recsvc serve`` in a subprocess for a benchmark, in a namespace of its own."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from recsvc.redis_client import start_embedded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def benchmark_redis(prefix: str = "recsvc-bench-") -> Iterator[str]:
    """``REDIS_URL`` when set, else an embedded Redis in a new temporary folder, stopped
    when the block ends (so a benchmark can still inspect it while the block runs)."""
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        yield redis_url
        return
    embedded = start_embedded(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        yield embedded.url
    finally:
        embedded.stop()


@contextlib.contextmanager
def running_service(
    workers: int,
    threads: int = 1,
    log_level: str = "WARNING",
    log_file: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[int, str, str]]:
    """Yield ``(port, namespace, redis_url)`` of a fresh service, on ``benchmark_redis()``
    (still running while the block runs, so the benchmark can inspect it afterwards)."""
    port = free_port()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    log_path = log_file or Path(tempfile.gettempdir()) / f"recsvc-bench-{namespace}.log"
    command = [
        sys.executable,
        "-m",
        "recsvc.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    with benchmark_redis() as redis_url, log_path.open("wb") as log:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "RECSVC_NAMESPACE": namespace,
            "RECSVC_LOG_LEVEL": log_level,
            **(extra_env or {}),
        }
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(port, process, log_path)
            yield port, namespace, redis_url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_ready(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("service not ready")
