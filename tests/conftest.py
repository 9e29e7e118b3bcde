"""Shared fixtures: a real Redis for every test, isolated by a namespace of its own.

Redis is the one at ``REDIS_URL`` when that is set (CI points it at the machine's server),
else an embedded redis-server started once for the session under a temporary folder.
With ``--redis-cluster``, it is a 3-master Redis Cluster the session starts on free
loopback ports and stops at the end (``loadtests.drills._cluster``): ``.ci/run`` runs the
store, ingestion, exporter and API tests that way too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from recsvc.keys import KeySpace
from recsvc.redis_client import connect, start_embedded
from recsvc.settings import Settings
from recsvc.store.namespace import delete_namespace


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-cluster",
        action="store_true",
        help="run against a local 3-master Redis Cluster started for the session",
    )


@pytest.fixture(scope="session")
def redis_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    if request.config.getoption("--redis-cluster"):
        from loadtests.drills._cluster import start_cluster

        cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
        yield cluster.url
        cluster.stop()
        return
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    embedded = start_embedded(tmp_path_factory.mktemp("redis"))
    yield embedded.url
    embedded.stop()


@pytest.fixture
def settings(redis_url: str) -> Iterator[Settings]:
    """Settings on the test Redis with a namespace no other test uses; its keys are
    deleted afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield Settings(redis_url=redis_url, namespace=namespace)
    delete_namespace(connect(redis_url), namespace)


@pytest.fixture
def redis_conn(settings: Settings) -> redis.Redis:
    return connect(settings.redis_url, settings)


@pytest.fixture
def keys(settings: Settings) -> KeySpace:
    return KeySpace(settings.namespace)


@pytest.fixture
def clock():
    """A manual clock at a fixed moment: the app's notion of now in API tests."""
    from datetime import UTC, datetime

    from recsvc.clock import ManualClock

    return ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(settings: Settings, clock):
    from recsvc.web.app import create_app

    return create_app(settings, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def env(settings: Settings, tmp_path, monkeypatch):
    """The environment a command-line test runs in: the test's Redis and namespace, and a
    local registry of its own (returned)."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("RECSVC_NAMESPACE", settings.namespace)
    monkeypatch.setenv("RECSVC_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture
def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_artifact():
    """A factory of small, valid model artifacts with random factors."""
    import numpy as np

    from recsvc.scoring.artifact import ModelArtifact

    def make_artifact(version="v1", users=50, items=30, factors=8, seed=0, created="2026-01-01"):
        rng = np.random.default_rng(seed)
        similar = np.stack([np.roll(np.arange(items), -k - 1)[:5] for k in range(items)])
        return ModelArtifact(
            version=version,
            manifest={"model": "als", "created": created, "params": {"factors": factors}},
            item_ids=[f"i{n}" for n in range(items)],
            user_ids=[f"u{n}" for n in range(users)],
            item_factors=rng.normal(size=(items, factors)),
            user_factors=rng.normal(size=(users, factors)),
            popular=np.arange(10),
            trending=np.arange(10)[::-1],
            similar_items=similar,
            similar_scores=np.linspace(1, 0, 5)[None, :].repeat(items, 0),
        )

    return make_artifact
