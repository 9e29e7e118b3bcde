"""``recsvc demo``, the README's first command, end to end on an embedded Redis."""

import os
import signal
import subprocess
import sys
import urllib.request

import pytest


@pytest.mark.slow
def test_demo_generates_serves_replays_and_prints_curl_lines(tmp_path, free_port):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["RECSVC_DATA_DIR"] = str(tmp_path / "var")
    command = [
        sys.executable,
        "-m",
        "recsvc.cli",
        "demo",
        "--no-wait",
        "--visitors",
        "300",
        "--items",
        "80",
        "--days",
        "5",
        "--port",
        str(free_port),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "events accepted" in done.stdout
    for path in ("/profile", "/similar", "/recommendations/cart", "/banners", "/nudges"):
        assert path in done.stdout, path
    assert (tmp_path / "var" / "demo" / "store" / "items.csv").exists()
    assert not (tmp_path / "var" / "redis.sock").exists(), "demo must stop its Redis"


@pytest.mark.slow
def test_a_terminated_demo_stops_its_server_and_redis(tmp_path, free_port):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["RECSVC_DATA_DIR"] = str(tmp_path / "var")
    command = [sys.executable, "-m", "recsvc.cli", "demo", "--visitors", "200", "--items", "60"]
    command += ["--days", "4", "--port", str(free_port)]
    demo = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        for line in demo.stdout:
            if "Ctrl-C to stop." in line:
                break
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    finally:
        demo.kill()
    assert not (tmp_path / "var" / "redis.sock").exists(), "demo must stop its Redis"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/healthz", timeout=2)
