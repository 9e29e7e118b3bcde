"""Rate limits on events: per API key and per visitor, 429 with Retry-After and nothing
written; keys that run on the store's servers are not limited; Redis trouble fails open.

Before: one caller with the public key could send as fast as it liked, up to the stream's
5,000,000-event cap, after which ingestion answered 503 to every storefront."""

import pytest

from recsvc.store.stream import total_length
from recsvc.web.app import create_app

PUBLIC, SERVER = "pub", "srv"


def client_with(settings, clock, **limits):
    keyed = settings.replace(public_keys=(PUBLIC,), server_keys=(SERVER,), **limits)
    return create_app(keyed, clock=clock).test_client()


def events(visitor, n):
    return {"events": [{"type": "page_view", "visitor_id": visitor} for _ in range(n)]}


def post(client, body, key=PUBLIC):
    return client.post("/v1/events", json=body, headers={"X-API-Key": key})


def test_a_visitor_over_its_burst_is_429_with_retry_after(settings, clock, redis_conn, keys):
    client = client_with(
        settings,
        clock,
        max_batch_events=10,
        rate_limit_visitor_per_second=1.0,
        rate_limit_visitor_burst=10,
    )
    assert post(client, events("v-1", 10)).status_code == 202
    refused = post(client, events("v-1", 5))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    assert (
        total_length(redis_conn, keys, settings.stream_shards) == 10
    )  # nothing of the refused batch
    # Another visitor is not held back by the first.
    assert post(client, events("v-2", 5)).status_code == 202


def test_the_key_bucket_caps_all_visitors_together(settings, clock, redis_conn, keys):
    client = client_with(
        settings, clock, max_batch_events=10, rate_limit_key_per_second=1.0, rate_limit_key_burst=30
    )
    accepted = sum(post(client, events(f"v-{n}", 4)).status_code == 202 for n in range(20))
    assert accepted == 7  # 28 of the 30 tokens; the 8th batch of 4 does not fit
    assert total_length(redis_conn, keys, settings.stream_shards) == 28


def test_server_keys_are_not_limited(settings, clock):
    client = client_with(
        settings,
        clock,
        max_batch_events=2,
        rate_limit_visitor_per_second=1.0,
        rate_limit_visitor_burst=2,
    )
    for _ in range(5):
        assert post(client, events("v-1", 2), key=SERVER).status_code == 202


def test_a_refused_batch_takes_no_tokens(settings, clock):
    """Invalid or unproven batches are refused before they are charged."""
    client = client_with(
        settings,
        clock,
        max_batch_events=3,
        rate_limit_visitor_per_second=0.001,
        rate_limit_visitor_burst=3,
    )
    assert post(client, {"type": "nope", "visitor_id": "v-1"}).status_code == 422
    stitch = {"type": "page_view", "visitor_id": "v-1", "user_id": "u-1"}
    assert post(client, stitch).status_code == 401
    assert post(client, events("v-1", 3)).status_code == 202


@pytest.mark.parametrize("limits", [{"rate_limit_key_per_second": 0.0}])
def test_a_rate_of_zero_turns_a_limit_off(settings, clock, limits):
    client = client_with(settings, clock, max_batch_events=5, rate_limit_key_burst=1, **limits)
    for n in range(3):
        assert post(client, events(f"v-{n}", 5)).status_code == 202


def test_redis_trouble_fails_open_to_the_write(settings, clock):
    """The limiter cannot ask Redis: the request goes on, and the write answers 503 with
    Retry-After (Redis is really down), never a 429 or a 500."""
    from recsvc.web.metrics import RATE_LIMITER_UNAVAILABLE

    dead = settings.replace(
        redis_url=f"redis://127.0.0.1:{closed_port()}",
        redis_connect_timeout=0.2,
        redis_socket_timeout=0.2,
        redis_retries=0,
    )
    client = client_with(dead, clock)
    before = RATE_LIMITER_UNAVAILABLE._value.get()
    answer = post(client, events("v-1", 1))
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert RATE_LIMITER_UNAVAILABLE._value.get() == before + 1


@pytest.mark.parametrize("scope", ["key", "visitor"])
def test_a_burst_smaller_than_a_batch_is_refused_at_start(settings, clock, scope):
    with pytest.raises(ValueError, match="BURST"):
        client_with(settings, clock, **{f"rate_limit_{scope}_burst": 999})


def closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
