"""``recsvc demo``, the README's first command, end to end on an embedded Redis."""

import os
import shlex
import signal
import subprocess
import sys
import urllib.error
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
        printed = []
        for line in demo.stdout:
            if "Ctrl-C to stop." in line:
                break
            printed.append(line)
        # Every command the demo tells a new user to try answers as it says it will.
        for call in curl_calls("".join(printed)):
            assert call_status(call) in (200, 202), call
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    finally:
        demo.kill()
    assert not (tmp_path / "var" / "redis.sock").exists(), "demo must stop its Redis"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/healthz", timeout=2)


def curl_calls(printed: str) -> list[list[str]]:
    """The printed ``curl`` commands as argument lists (continuation lines joined, the
    ``| python -m json.tool`` and comments dropped)."""
    joined = printed.replace("\\\n", " ")
    calls = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("curl "):
            calls.append(shlex.split(line.split("|")[0].split("   #")[0]))
    assert len(calls) >= 10, printed
    return calls


def call_status(args: list[str]) -> int:
    """Run one printed curl command with urllib (curl need not be installed): its status."""
    headers, method, data, url = {}, "GET", None, None
    words = iter(args[1:])
    for word in words:
        if word == "-H":
            name, _, value = next(words).partition(": ")
            headers[name] = value
        elif word == "-X":
            method = next(words)
        elif word == "-d":
            data = next(words).encode()
        elif word.startswith("http"):
            url = word
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
