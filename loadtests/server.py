"""Start ``recsvc serve`` in a subprocess for a benchmark or a drill, in a namespace of its own.

The service runs with API keys on, as in production: ``KEYS`` holds one key per role, and
load generators send the admin key (``ADMIN_HEADERS``) so that they keep working whatever
a public key may do (identity tokens and the per-key, per-address and per-visitor rate
limits apply to public keys).
"""

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from recsvc.redis_client import start_embedded

KEYS = {"public": "bench-public-key", "sender": "bench-sender-key", "admin": "bench-admin-key"}
ADMIN_HEADERS = {"X-API-Key": KEYS["admin"]}
KEY_SETTINGS = {
    "RECSVC_PUBLIC_KEYS": KEYS["public"],
    "RECSVC_SENDER_KEYS": KEYS["sender"],
    "RECSVC_ADMIN_KEYS": KEYS["admin"],
}


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


@dataclass(frozen=True)
class Service:
    """A running ``recsvc serve``: gunicorn's master is ``process``."""

    port: int
    namespace: str
    redis_url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def call(
        self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)
    ) -> Any:
        """One request with the admin key (setting up a benchmark: never measured); the
        JSON answer. Raises when the status is not in ``expect``."""
        answer = requests.request(
            method, self.url + path, json=body, headers=ADMIN_HEADERS, timeout=120
        )
        if answer.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def send_events(self, events: list[dict], batch: int = 1000) -> int:
        """Post ``events`` in batches; how many were accepted."""
        accepted = 0
        for start in range(0, len(events), batch):
            body = {"events": events[start : start + batch]}
            accepted += self.call("POST", "/v1/events", body, expect=(202,))["accepted"]
        return accepted


@contextlib.contextmanager
def running_service(
    redis_url: str,
    *,
    namespace: str | None = None,
    workers: int = 2,
    threads: int | None = None,
    settings: Mapping[str, str] | None = None,
    log_level: str = "INFO",
    gunicorn_args: str = "",
    app: str | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[Service]:
    """``recsvc serve`` on ``redis_url`` with API keys on (``KEYS``), ready when yielded,
    terminated (SIGTERM, then waited for) when the block ends.

    ``settings``: extra environment (``RECSVC_*`` names), ``gunicorn_args``: as
    ``GUNICORN_CMD_ARGS``; ``app``: run plain gunicorn with the service's configuration
    on this WSGI app instead (``"module:factory(args)"``, e.g. a variant of
    ``loadtests.app_variants``). The log (JSON lines) goes to a temporary file,
    ``log_path``.
    """
    port = free_port()
    namespace = namespace or f"bench{uuid.uuid4().hex[:8]}"
    log_path = Path(tempfile.gettempdir()) / f"recsvc-{namespace}-{port}.log"
    command = [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port)]
    if app:
        command = [sys.executable, "-m", "gunicorn", "-c", "python:recsvc.web.gunicorn_conf"]
        command += ["--bind", f"127.0.0.1:{port}", app]
    command += ["--workers", str(workers)]
    if threads:  # else the gunicorn configuration's default
        command += ["--threads", str(threads)]
    env = {
        **os.environ,
        **KEY_SETTINGS,
        "REDIS_URL": redis_url,
        "RECSVC_NAMESPACE": namespace,
        "RECSVC_LOG_LEVEL": log_level,
        **(settings or {}),
    }
    if gunicorn_args:
        env["GUNICORN_CMD_ARGS"] = gunicorn_args
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            wait_ready(port, process, log_path, ready_timeout)
            yield Service(port, namespace, redis_url, process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    """Until ``/readyz`` answers 200: the service is up and reaches Redis."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"service not up within {timeout} s; see {log_path}")
