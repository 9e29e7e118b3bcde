import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from recsvc.store.models import ModelStore, bucket_count


@pytest.fixture
def store(redis_conn, keys):
    return ModelStore(redis_conn, keys)


def test_publish_and_read_back(store, make_artifact):
    artifact = make_artifact(users=300, items=40)
    store.publish(artifact)
    assert store.current_version() == "v1"
    side = store.load_item_side("v1")
    np.testing.assert_array_equal(side.item_factors, artifact.item_factors)
    np.testing.assert_array_equal(side.similar_items, artifact.similar_items)
    np.testing.assert_array_equal(side.similar_scores, artifact.similar_scores)
    assert side.item_ids[:3] == ["i0", "i1", "i2"]
    assert side.lists["popular"][:2] == ["i0", "i1"]
    buckets = side.manifest["user_buckets"]
    assert buckets == bucket_count(300)
    for row in (0, 17, 299):
        vector = store.user_vector("v1", buckets, 8, f"u{row}")
        np.testing.assert_array_equal(vector, artifact.user_factors[row])
    assert store.user_vector("v1", buckets, 8, "stranger") is None


def test_session_arrays_are_published_in_chunks_and_read_back(store, make_artifact, monkeypatch):
    monkeypatch.setattr("recsvc.store.models.SESSION_CHUNK_BYTES", 64)
    artifact = make_artifact()
    artifact.session = {
        "popularity": np.linspace(0, 1, 30, dtype=np.float32),  # 120 bytes: two chunks
        "walk.shape": np.array([30, 30], np.int64),
        "walk.data": np.zeros(0, np.float32),  # an empty array too
    }
    store.publish(artifact)
    side = store.load_item_side("v1")
    assert side.manifest["session_arrays"]["popularity"]["chunks"] == 2
    for name, array in artifact.session.items():
        assert side.session[name].dtype == array.dtype
        np.testing.assert_array_equal(side.session[name], array)
    assert store.load_item_side("v1").session.keys() == artifact.session.keys()
    store.publish(make_artifact("v2"))
    assert store.load_item_side("v2").session == {}
    store.delete_version("v1")  # the session keys go with the version
    assert not list(store.client.scan_iter(match=store.keys.model_session("v1", "*", 0)))


def test_pointer_history_and_rollback(store, make_artifact):
    for version in ("v1", "v2", "v3"):
        store.publish(make_artifact(version))
    assert store.current_version() == "v3"
    assert store.rollback() == "v2" and store.current_version() == "v2"
    assert store.rollback() == "v1"
    assert store.rollback() is None and store.current_version() == "v1"  # nothing older
    store.make_current("v3")
    assert store.current_version() == "v3"
    store.make_current("v3")  # again: no second history entry
    assert store.rollback() == "v1"
    with pytest.raises(KeyError):
        store.make_current("never-published")


def test_publish_without_switching(store, make_artifact):
    store.publish(make_artifact("v1"))
    store.publish(make_artifact("v2"), make_current=False)
    assert store.current_version() == "v1" and set(store.published()) == {"v1", "v2"}


def test_prune_keeps_recent_and_current(store, redis_conn, keys, make_artifact):
    for version in ("v1", "v2", "v3", "v4"):
        store.publish(make_artifact(version))
    assert sorted(store.prune(keep=2)) == ["v1", "v2"]
    assert set(store.published()) == {"v3", "v4"}
    assert not list(redis_conn.scan_iter(match=keys.model_version_patterns("v1")[0]))
    assert not list(redis_conn.scan_iter(match=keys.model_version_patterns("v1")[1]))
    with pytest.raises(ValueError):
        store.delete_version("v4")  # current


def test_republishing_a_version_replaces_it(store, make_artifact):
    store.publish(make_artifact("v1", seed=1))
    second = make_artifact("v1", seed=2)
    store.publish(second)
    side = store.load_item_side("v1")
    np.testing.assert_array_equal(side.item_factors, second.item_factors)


def test_publish_killed_halfway_leaves_the_current_version(
    store, settings, redis_conn, keys, tmp_path, make_artifact
):
    store.publish(make_artifact("good"))
    big = make_artifact("big", users=300_000, items=20_000, factors=32)
    folder = big.save(tmp_path)
    script = textwrap.dedent(
        f"""
        from recsvc.keys import KeySpace
        from recsvc.redis_client import connect
        from recsvc.scoring.artifact import ModelArtifact
        from recsvc.store.models import ModelStore
        store = ModelStore(connect({settings.redis_url!r}), KeySpace({settings.namespace!r}))
        print("start", flush=True)
        store.publish(ModelArtifact.load({str(folder)!r}))
        print("done", flush=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "start"
    # Kill it once its first key is written (the user buckets then take seconds), not
    # after a fixed sleep, which a busy machine turns into "before it wrote anything".
    deadline = time.monotonic() + 60
    while not redis_conn.exists(keys.model_item_ids("big")):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.stdout.read().strip() != "done"
    assert store.current_version() == "good"
    assert "big" not in store.published()
    # The old version still reads whole; the half-written one can be cleaned away.
    assert len(store.load_item_side("good").item_ids) == 30
    assert store.delete_version("big") > 0
