import pytest

from recsvc.redis_client import connect, is_alive, start_embedded


def test_embedded_redis_starts_from_a_clean_folder_and_keeps_data(tmp_path):
    folder = tmp_path / "fresh" / "redis"  # does not exist yet
    first = start_embedded(folder)
    try:
        client = connect(first.url)
        assert client.ping()
        client.xadd("s", {"e": "1"})
        # A second start on the same folder reuses the running server.
        again = start_embedded(folder)
        assert again.process is None and connect(again.url).xlen("s") == 1
    finally:
        first.stop()
    assert first.process.returncode is not None
    assert (folder / "appendonly.aof").exists()
    # Restarted, it finds what was written before it stopped.
    second = start_embedded(folder)
    try:
        assert connect(second.url).xlen("s") == 1
    finally:
        second.stop()


def test_unreachable_redis_is_not_alive():
    assert not is_alive(connect("redis://127.0.0.1:1", socket_connect_timeout=0.2))


def test_a_sentinel_url_must_name_its_master():
    with pytest.raises(ValueError, match="name the master"):
        connect("redis+sentinel://127.0.0.1:26379")


def test_a_cluster_url_gives_a_cluster_client(redis_url):
    from recsvc.redis_client import is_cluster

    if not redis_url.startswith("redis+cluster://"):
        pytest.skip("runs with --redis-cluster")
    client = connect(redis_url)
    assert is_cluster(client) and client.ping()
