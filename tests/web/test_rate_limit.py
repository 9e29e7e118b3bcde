"""Rate limits: events per API key, per client address and per visitor; reads per client
address and per visitor; 429 with Retry-After and nothing written; keys that run on the
store's servers are not limited; Redis trouble fails open. ``make test-cluster`` runs
these on a 3-master Redis Cluster too.

Before: one caller with the public key could send as fast as it liked, up to the stream's
5,000,000-event cap, after which ingestion answered 503 to every storefront. Then, with
only a per-key bucket, one attacker emptied the bucket every browser of the store shares;
and reads were not limited at all."""

import pytest

from recsvc.store.stream import total_length
from recsvc.web.app import create_app

PUBLIC, SERVER = "pub", "srv"


def client_with(settings, clock, **limits):
    keyed = settings.replace(public_keys=(PUBLIC,), server_keys=(SERVER,), **limits)
    return create_app(keyed, clock=clock).test_client()


def events(visitor, n):
    return {"events": [{"type": "page_view", "visitor_id": visitor} for _ in range(n)]}


def post(client, body, key=PUBLIC, address="127.0.0.1", forwarded=None):
    headers = {"X-API-Key": key}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    environ = {"REMOTE_ADDR": address}
    return client.post("/v1/events", json=body, headers=headers, environ_base=environ)


def read(client, visitor="v-1", key=PUBLIC, address="127.0.0.1"):
    return client.get(
        f"/v1/visitors/{visitor}/banners",
        headers={"X-API-Key": key},
        environ_base={"REMOTE_ADDR": address},
    )


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


@pytest.mark.parametrize("scope", ["key", "visitor", "address"])
def test_a_burst_smaller_than_a_batch_is_refused_at_start(settings, clock, scope):
    with pytest.raises(ValueError, match="BURST"):
        client_with(settings, clock, **{f"rate_limit_{scope}_burst": 999})


def closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- per client address -------------------------------------------------------------------
ATTACKER, SHOPPER = "203.0.113.7", "198.51.100.20"


def test_one_address_cannot_take_the_keys_bucket_from_every_shopper(settings, clock):
    """The key's bucket (what all browsers may send together) holds 50 events; the
    attacker's address is refused after 20 of them, and a shopper elsewhere is served."""
    client = client_with(
        settings,
        clock,
        max_batch_events=10,
        rate_limit_key_per_second=0.01,
        rate_limit_key_burst=50,
        rate_limit_address_per_second=0.01,
        rate_limit_address_burst=20,
    )
    answers = [post(client, events(f"v-bot-{n}", 10), address=ATTACKER) for n in range(10)]
    assert [a.status_code for a in answers] == [202, 202] + [429] * 8
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert post(client, events("v-shopper", 10), address=SHOPPER).status_code == 202


def test_forwarded_for_is_trusted_only_behind_the_configured_proxies(settings, clock):
    limits = {
        "max_batch_events": 5,
        "rate_limit_address_per_second": 0.01,
        "rate_limit_address_burst": 5,
    }
    # No trusted proxy: the header is the client's to write, and ignored.
    direct = client_with(settings, clock, **limits)
    sent = {"address": "192.0.2.1"}
    assert post(direct, events("v-1", 5), forwarded="10.0.0.1", **sent).status_code == 202
    assert post(direct, events("v-2", 5), forwarded="10.0.0.2", **sent).status_code == 429
    # Two trusted proxies (a CDN, then nginx): the value two places from the right is the
    # client's; what the client wrote left of it changes nothing.
    proxied = client_with(settings, clock, trusted_proxies=2, **limits)
    chain = f"{SHOPPER}, 10.0.0.9"  # the client as the CDN saw it, the CDN as nginx saw it
    assert post(proxied, events("v-1", 5), forwarded=chain).status_code == 202
    assert post(proxied, events("v-2", 5), forwarded=f"1.2.3.4, {chain}").status_code == 429
    assert post(proxied, events("v-3", 5), forwarded=f"{ATTACKER}, 10.0.0.9").status_code == 202
    # Fewer values than proxies: the socket's address, as werkzeug's ProxyFix does.
    assert post(proxied, events("v-4", 5), forwarded="10.0.0.9").status_code == 202
    assert post(proxied, events("v-5", 5), forwarded="10.0.0.8").status_code == 429


def test_an_ipv6_host_is_its_64_network(settings, clock):
    client = client_with(
        settings,
        clock,
        max_batch_events=5,
        rate_limit_address_per_second=0.01,
        rate_limit_address_burst=5,
    )
    assert post(client, events("v-1", 5), address="2001:db8:1:2::1").status_code == 202
    assert post(client, events("v-2", 5), address="2001:db8:1:2:ffff::9").status_code == 429
    assert post(client, events("v-3", 5), address="2001:db8:1:3::1").status_code == 202


# --- reads --------------------------------------------------------------------------------
def test_reads_of_one_visitor_are_limited_and_others_are_not(settings, clock):
    client = client_with(
        settings, clock, rate_limit_read_visitor_per_second=0.01, rate_limit_read_visitor_burst=3
    )
    assert [read(client, "v-1").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = read(client, "v-1")
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert read(client, "v-2").status_code == 200
    assert read(client, "v-1", key=SERVER).status_code == 200


def test_reads_from_one_address_are_limited_and_other_addresses_are_not(settings, clock):
    client = client_with(
        settings, clock, rate_limit_read_address_per_second=0.01, rate_limit_read_address_burst=5
    )
    answers = [read(client, f"v-{n}", address=ATTACKER).status_code for n in range(8)]
    assert answers == [200] * 5 + [429] * 3
    assert read(client, "v-1", address=SHOPPER).status_code == 200
    # Not per visitor path only: an item page is a read of the address's too.
    item = client.get(
        "/v1/items/i-1", headers={"X-API-Key": PUBLIC}, environ_base={"REMOTE_ADDR": ATTACKER}
    )
    assert item.status_code == 429


def test_reads_are_charged_to_redis_a_batch_at_a_time(settings, clock, redis_conn, keys):
    """The default batch (8): the first reads of a visitor never reach Redis, and a
    flood is refused within a batch of the burst."""
    client = client_with(
        settings, clock, rate_limit_read_visitor_per_second=0.01, rate_limit_read_visitor_burst=100
    )
    for _ in range(7):
        assert read(client, "v-1").status_code == 200
    assert not redis_conn.exists(keys.rate_bucket("read-visitor", "v-1"))
    statuses = [read(client, "v-1").status_code for _ in range(150)]
    served = 7 + statuses.index(429)
    assert 100 - 7 <= served <= 100 + 7
    assert set(statuses[statuses.index(429) :]) == {429}


def test_reading_never_costs_a_visitor_its_events(settings, clock):
    client = client_with(
        settings, clock, rate_limit_read_visitor_per_second=0.01, rate_limit_read_visitor_burst=1
    )
    assert read(client, "v-1").status_code == 200
    assert read(client, "v-1").status_code == 429
    assert post(client, events("v-1", 3)).status_code == 202


def test_buckets_expire_once_full_again(settings, clock, redis_conn, keys):
    client = client_with(
        settings,
        clock,
        rate_limit_read_visitor_per_second=2.0,
        rate_limit_read_visitor_burst=10,
        rate_limit_read_address_per_second=100.0,
        rate_limit_read_address_burst=1000,
    )
    assert read(client, "v-1", address=SHOPPER).status_code == 200
    visitor_ttl = redis_conn.pttl(keys.rate_bucket("read-visitor", "v-1"))
    address_ttl = redis_conn.pttl(keys.rate_bucket("read-address", SHOPPER))
    assert 0 < visitor_ttl <= 10 / 2.0 * 1000 + 1000
    assert 0 < address_ttl <= 1000 / 100.0 * 1000 + 1000
