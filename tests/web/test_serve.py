"""``recsvc serve`` as a user runs it: gunicorn workers on an embedded Redis."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


@pytest.mark.slow
def test_serve_with_embedded_redis_from_a_clean_folder(tmp_path, free_port):
    port = free_port
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["RECSVC_DATA_DIR"] = str(tmp_path / "var")
    process = subprocess.Popen(
        [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        sent = requests.post(
            f"{url}/v1/events",
            json={"events": [{"type": "page_view", "visitor_id": f"v{n}"} for n in range(20)]},
            timeout=5,
        )
        assert sent.status_code == 202 and sent.json()["accepted"] == 20
        # Any worker answers for any visitor: the state is in Redis, not in a worker.
        for n in range(20):
            assert requests.get(f"{url}/v1/visitors/v{n}/profile", timeout=5).status_code == 200
        metrics = requests.get(f"{url}/metrics", timeout=5).text
        assert 'recsvc_events_accepted_total{type="page_view"} 20.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    socket_path = tmp_path / "var" / "redis.sock"
    assert (tmp_path / "var" / "appendonly.aof").exists()
    assert not socket_path.exists(), "the embedded Redis should stop with the service"


def test_gunicorn_settings_layer_config_env_then_options(monkeypatch, tmp_path):
    """The config module's defaults, then GUNICORN_CMD_ARGS, then recsvc serve's options."""
    from recsvc.web.serve import RecsvcGunicorn

    # Loading the config in this process would otherwise set PROMETHEUS_MULTIPROC_DIR for
    # good, and every service a later test starts would share that folder, removed by the
    # first of them to exit.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--max-requests 7 --workers 5")
    app = RecsvcGunicorn({"bind": ["127.0.0.1:9999"], "workers": 3})
    assert app.cfg.max_requests == 7  # from the environment
    assert app.cfg.workers == 3  # the command line option wins
    assert app.cfg.preload_app and app.cfg.graceful_timeout == 20  # from the config module
