"""The service under gunicorn, for the tests of what gunicorn itself does."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests


@pytest.fixture(scope="module")
def served(tmp_path_factory, redis_url):
    """``recsvc serve`` (gunicorn, one worker) on the test Redis, in a namespace of its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    namespace = f"tserve{os.getpid()}{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RECSVC_NAMESPACE": namespace,
        "RECSVC_LOG_LEVEL": "WARNING",
        "RECSVC_PUBLIC_KEYS": "pub",
    }
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    command = [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the service exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
    yield port, namespace
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    from recsvc.redis_client import connect
    from recsvc.store.namespace import delete_namespace

    delete_namespace(connect(redis_url), namespace)
