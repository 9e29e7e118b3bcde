"""The HTTP contract of ``POST /v1/events``: what is accepted, how it lands in the Redis
stream, and the 4xx matrix, each error naming the event's index and the field.

(Named ``test_events_api`` beside ``tests/store/test_events.py``: test modules share one
namespace, the test folders have no ``__init__.py``.)
"""

import json
import re
import socket
import time
from datetime import timedelta

import pytest

from recsvc.clock import utc
from recsvc.core.events import PRODUCT_EVENT_TYPES, format_timestamp
from recsvc.eventlog.exporter import parse_stream_id
from recsvc.settings import Settings
from recsvc.store.stream import decode_entry, stream_keys
from recsvc.web.app import create_app

HEX32 = re.compile(r"^[0-9a-f]{32}$")
OK = {"type": "page_view", "visitor_id": "v-1"}


def post(client, body):
    return client.post("/v1/events", json=body)


def post_raw(client, data, content_type="application/json"):
    return client.post("/v1/events", data=data, content_type=content_type)


def error_of(response, status=422, code="validation_error"):
    """The error object, after checking the one error shape every failure answers with."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def errors_of(response, code="validation_error"):
    errors = error_of(response, 422, code)["details"]["errors"]
    assert errors
    for entry in errors:
        assert set(entry) == {"index", "field", "reason"}
        assert isinstance(entry["reason"], str) and entry["reason"]
    return errors


def stream(redis_conn, keys):
    """The event records in every shard of the stream, oldest first (each shard in its
    order: a visitor's events are in one shard)."""
    entries = []
    for key in stream_keys(keys, Settings.stream_shards):
        entries += redis_conn.xrange(key)
    entries.sort(key=lambda entry: parse_stream_id(entry[0]))
    return [decode_entry(fields) for _, fields in entries]


def snapshot(redis_conn, settings):
    """Every key of the test's namespace with its serialised value."""
    found = redis_conn.scan_iter(match=f"{settings.namespace}:*", count=1000)
    return {key: redis_conn.dump(key) for key in found}


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- accepted -----------------------------------------------------------------------------


def test_one_event_is_accepted_and_streamed(client, redis_conn, keys, clock):
    response = post(client, {**OK, "source": "email", "channel": "web"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["accepted"] == 1
    assert len(body["ids"]) == 1 and HEX32.match(body["ids"][0])
    [record] = stream(redis_conn, keys)
    now = format_timestamp(utc(clock))
    assert record == {
        "id": body["ids"][0],
        "type": "page_view",
        "visitor_id": "v-1",
        "source": "email",
        "channel": "web",
        "timestamp": now,  # server time when absent
        "received_at": now,
    }


def test_server_ids_are_unique_and_start_with_the_acceptance_time(client, clock):
    body = post(client, {"events": [OK] * 20}).get_json()
    assert body["accepted"] == 20
    assert len(set(body["ids"])) == 20
    assert all(HEX32.match(i) for i in body["ids"])
    millis = f"{int(clock.now() * 1000):012x}"
    assert {i[:12] for i in body["ids"]} == {millis}


def test_batch_lands_in_order_with_normalised_utc_timestamps(client, redis_conn, keys):
    events = [
        {**OK, "timestamp": "2026-03-10T13:30:00+01:30"},
        {**OK, "timestamp": "2026-03-10T11:00:00"},  # no offset: UTC
        {**OK, "timestamp": "2026-03-10T11:00:00.123456Z"},
        {**OK, "timestamp": "2026-03-09T23:00:00-02:00"},
        {"type": "add_to_cart", "visitor_id": "v-2", "item_id": 42, "quantity": 2, "price": 9.5},
    ]
    response = post(client, {"events": events})
    assert response.status_code == 202
    ids = response.get_json()["ids"]
    # In order per visitor (a visitor's events share a stream shard).
    found = stream(redis_conn, keys)
    records = [r for r in found if r["visitor_id"] == OK["visitor_id"]]
    records += [r for r in found if r["visitor_id"] == "v-2"]
    assert [r["id"] for r in records] == ids
    assert [r["timestamp"] for r in records[:4]] == [
        "2026-03-10T12:00:00.000Z",
        "2026-03-10T11:00:00.000Z",
        "2026-03-10T11:00:00.123Z",
        "2026-03-10T01:00:00.000Z",
    ]
    cart = records[4]
    assert cart["item_id"] == "42"  # integer item ids are taken as strings
    assert (cart["quantity"], cart["price"]) == (2, 9.5)


def test_accepted_events_update_the_profile(client, redis_conn, keys):
    post(client, {"type": "product_view", "visitor_id": "v-9", "item_id": "sku-1"})
    assert redis_conn.exists(keys.visitor_profile("v-9"))
    assert client.get("/v1/visitors/v-9/profile").get_json()["events"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"visitor_id": "x" * 128}, id="id-128-chars"),
        pytest.param({"visitor_id": "a.b_c:d@e|f=g+h/i#j~k-l"}, id="id-punctuation"),
        pytest.param({"type": "purchase", "item_id": 0, "quantity": 10_000}, id="item-0"),
        pytest.param({"price": 0}, id="price-0"),
        pytest.param({"price": 1e9}, id="price-max"),
        # The clock is 2026-03-10T12:00Z: an open service (as a server key) takes events
        # back analytics_retention_days (400), whose counters would expire at once.
        pytest.param({"timestamp": "2025-02-03T12:00:00Z"}, id="retention-back"),
        pytest.param({"timestamp": "2026-03-11T12:00:00Z"}, id="exactly-a-day-ahead"),
        pytest.param({"properties": {f"k{i}": i for i in range(20)}}, id="20-properties"),
        pytest.param(
            {"properties": {"tags": ["a", 1, 2.5, True, None], "q": None}}, id="scalar-lists"
        ),
        pytest.param({"properties": {}}, id="no-properties"),
    ],
)
def test_edge_values_are_accepted(client, redis_conn, keys, fields):
    response = post(client, {**OK, **fields})
    assert response.status_code == 202, response.get_json()
    [record] = stream(redis_conn, keys)
    for name, value in fields.items():
        if name != "timestamp":
            assert record[name] == (str(value) if name == "item_id" else value)


def test_a_visitor_id_with_a_slash_can_be_looked_up(client):
    assert post(client, {**OK, "visitor_id": "shop/v-1"}).status_code == 202
    response = client.get("/v1/visitors/shop/v-1/profile")
    assert response.status_code == 200
    assert response.get_json()["visitor_id"] == "shop/v-1"


def test_a_full_batch_of_1000_is_accepted(client, redis_conn, keys):
    events = [{**OK, "visitor_id": f"v-{n % 37}"} for n in range(1000)]
    response = post(client, {"events": events})
    assert response.status_code == 202
    assert response.get_json()["accepted"] == 1000
    assert len(stream(redis_conn, keys)) == 1000


# --- the validation matrix ----------------------------------------------------------------

INVALID = [
    # (fields merged into a valid page_view; None deletes the field), field named
    pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    pytest.param({"type": None}, "type", id="missing-type"),
    pytest.param({"visitor_id": None}, "visitor_id", id="missing-visitor"),
    pytest.param({"type": "teleport"}, "type", id="unknown-type"),
    pytest.param({"type": 3}, "type", id="type-number"),
    pytest.param({"quantity": "2"}, "quantity", id="quantity-string"),
    pytest.param({"quantity": True}, "quantity", id="quantity-bool"),
    pytest.param({"quantity": 1.5}, "quantity", id="quantity-fraction"),
    pytest.param({"quantity": 0}, "quantity", id="quantity-0"),
    pytest.param({"quantity": 10_001}, "quantity", id="quantity-over"),
    pytest.param({"quantity": 10**30}, "quantity", id="quantity-huge"),
    pytest.param({"price": "19.90"}, "price", id="price-string"),
    pytest.param({"price": False}, "price", id="price-bool"),
    pytest.param({"price": -0.01}, "price", id="price-negative"),
    pytest.param({"price": 1e10}, "price", id="price-huge"),
    pytest.param({"price": [1]}, "price", id="price-list"),
    pytest.param({"visitor_id": 123}, "visitor_id", id="visitor-number"),
    pytest.param({"user_id": ["u-1"]}, "user_id", id="user-list"),
    pytest.param({"session_id": {"s": 1}}, "session_id", id="session-object"),
    pytest.param({"item_id": True}, "item_id", id="item-bool"),
    pytest.param({"item_id": 1.5}, "item_id", id="item-float"),
    pytest.param({"visitor_id": "v 1"}, "visitor_id", id="visitor-space"),
    pytest.param({"visitor_id": "v{1}"}, "visitor_id", id="visitor-braces"),
    pytest.param({"visitor_id": "v-1\n"}, "visitor_id", id="visitor-trailing-newline"),
    pytest.param({"visitor_id": ""}, "visitor_id", id="visitor-empty"),
    pytest.param({"visitor_id": "x" * 129}, "visitor_id", id="visitor-129-chars"),
    pytest.param({"visitor_id": "vé"}, "visitor_id", id="visitor-non-ascii"),
    pytest.param({"user_id": "u\t1"}, "user_id", id="user-tab"),
    pytest.param({"item_id": "sku}"}, "item_id", id="item-brace"),
    pytest.param({"session_id": "s" * 129}, "session_id", id="session-129-chars"),
    pytest.param({"source": "tv"}, "source", id="source-unknown"),
    pytest.param({"source": 1}, "source", id="source-number"),
    pytest.param({"channel": "fax"}, "channel", id="channel-unknown"),
    pytest.param({"timestamp": "yesterday"}, "timestamp", id="timestamp-words"),
    pytest.param({"timestamp": "2026-13-01T00:00:00Z"}, "timestamp", id="timestamp-month-13"),
    pytest.param({"timestamp": "10/03/2026 12:00"}, "timestamp", id="timestamp-not-iso"),
    pytest.param({"timestamp": ""}, "timestamp", id="timestamp-empty"),
    pytest.param({"timestamp": 1773144000}, "timestamp", id="timestamp-number"),
    pytest.param({"timestamp": "1969-12-31T23:59:59Z"}, "timestamp", id="timestamp-before-1970"),
    pytest.param({"timestamp": "2025-02-03T11:59:59Z"}, "timestamp", id="timestamp-past-retention"),
    # Valid ISO text whose UTC time is before year 1: once a 500 (OverflowError).
    pytest.param({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", id="timestamp-year-0"),
    pytest.param({"timestamp": "2026-03-11T12:00:01Z"}, "timestamp", id="timestamp-future"),
    pytest.param({"properties": "x"}, "properties", id="properties-string"),
    pytest.param({"properties": {f"k{i}": i for i in range(21)}}, "properties", id="props-21"),
    pytest.param({"properties": {"a": {"b": 1}}}, "properties", id="properties-nested"),
    pytest.param({"properties": {"a": [{"b": 1}]}}, "properties", id="properties-list-of-obj"),
    pytest.param({"properties": {"a": [[1]]}}, "properties", id="properties-list-of-list"),
    pytest.param({"properties": {"a": "x" * 2100}}, "properties", id="properties-too-large"),
    pytest.param({"properties": {"k" * 65: 1}}, "properties", id="properties-long-key"),
    pytest.param({"properties": {"": 1}}, "properties", id="properties-empty-key"),
]


def event_with(fields):
    event = {**OK, **fields}
    return {k: v for k, v in event.items() if v is not None}


def assert_names(errors, index, field):
    assert [e["index"] for e in errors] == [index] * len(errors)
    # A field inside properties is named by its path (properties.<key>.key).
    assert {e["field"].split(".")[0] for e in errors} == {field}


@pytest.mark.parametrize(("fields", "field"), INVALID)
def test_invalid_event_alone_is_422_naming_the_field(client, redis_conn, settings, fields, field):
    errors = errors_of(post(client, event_with(fields)))
    assert_names(errors, 0, field)
    assert snapshot(redis_conn, settings) == {}


@pytest.mark.parametrize(("fields", "field"), INVALID)
def test_invalid_event_in_a_batch_names_its_index(client, redis_conn, settings, fields, field):
    response = post(client, {"events": [OK, OK, event_with(fields), OK]})
    errors = errors_of(response)
    assert_names(errors, 2, field)
    assert response.get_json()["error"]["details"]["invalid_events"] == 1
    assert snapshot(redis_conn, settings) == {}


@pytest.mark.parametrize("kind", sorted(PRODUCT_EVENT_TYPES))
def test_product_events_need_an_item_id(client, kind):
    errors = errors_of(post(client, {"type": kind, "visitor_id": "v-1"}))
    assert [(e["index"], e["field"]) for e in errors] == [(0, "item_id")]
    assert kind in errors[0]["reason"]
    assert post(client, {"type": kind, "visitor_id": "v-1", "item_id": "s"}).status_code == 202


def test_future_limit_follows_the_app_clock(client, clock):
    ahead = format_timestamp(utc(clock) + timedelta(days=1, seconds=1))
    assert_names(errors_of(post(client, {**OK, "timestamp": ahead})), 0, "timestamp")
    clock.advance(2)
    assert post(client, {**OK, "timestamp": ahead}).status_code == 202


def test_every_bad_event_of_a_batch_is_reported(client):
    events = [OK, {**OK, "type": "x"}, OK, {**OK, "quantity": "1", "source": "tv"}, 7]
    response = post(client, {"events": events})
    errors = errors_of(response)
    assert sorted((e["index"], e["field"]) for e in errors) == [
        (1, "type"),
        (3, "quantity"),
        (3, "source"),
        (4, None),
    ]
    error = response.get_json()["error"]
    assert error["details"]["invalid_events"] == 3
    assert error["message"].startswith("3 of 5 events invalid")


# --- the body as a whole ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"events": []}, "events", id="empty-batch"),
        pytest.param({"events": {}}, "events", id="events-object"),
        pytest.param({"events": None}, "events", id="events-null"),
        pytest.param({"events": [OK], "meta": 1}, "meta", id="extra-key"),
        pytest.param([OK], None, id="body-array"),
        pytest.param("page_view", None, id="body-string"),
        pytest.param(None, None, id="body-null"),
        pytest.param(5, None, id="body-number"),
    ],
)
def test_malformed_bodies_are_422_without_an_index(client, redis_conn, settings, body, field):
    errors = errors_of(post_raw(client, json.dumps(body)))
    assert [(e["index"], e["field"]) for e in errors] == [(None, field)]
    assert snapshot(redis_conn, settings) == {}


def test_non_object_events_in_a_batch_are_named_by_index(client):
    errors = errors_of(post(client, {"events": [OK, 5, "x", None, [], OK]}))
    assert [(e["index"], e["field"]) for e in errors] == [(i, None) for i in (1, 2, 3, 4)]


def test_a_batch_over_1000_events_is_refused(client, redis_conn, settings):
    errors = errors_of(post(client, {"events": [OK] * 1001}), code="too_many_events")
    assert [(e["index"], e["field"]) for e in errors] == [(None, "events")]
    assert "1001" in errors[0]["reason"]
    assert snapshot(redis_conn, settings) == {}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("type=page_view&visitor_id=v-1", id="form"),
        pytest.param('{"type": "page_view", ', id="truncated"),
        pytest.param("", id="empty"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param('{"type": "page_view", "visitor_id": "v-1", "price": NaN}', id="NaN"),
        pytest.param('{"type": "page_view", "visitor_id": "v-1", "price": -Infinity}', id="inf"),
        pytest.param(
            f'{{"type": "page_view", "visitor_id": "v-1", "quantity": 1{"0" * 5000}}}',
            id="5000-digit-int",
        ),
    ],
)
def test_bodies_that_are_not_json_are_400(client, redis_conn, settings, data):
    error = error_of(post_raw(client, data), 400, "invalid_json")
    assert error["details"] == {}
    assert snapshot(redis_conn, settings) == {}


@pytest.mark.parametrize(
    "json_text",
    [
        '{"type": "page_view", "visitor_id": "v-1", "price": 1e400}',
        '{"type": "page_view", "visitor_id": "v-1", "quantity": 1e400}',
        '{"type": "page_view", "visitor_id": "v-1", "properties": {"x": -1e400}}',
        '{"type": "page_view", "visitor_id": "v-1", "properties": {"x": [1e999]}}',
    ],
    ids=["price", "quantity", "property", "property-list"],
)
def test_numbers_beyond_float_range_are_400(client, redis_conn, keys, json_text):
    # JSON has no NaN or infinity, but 1e400 is valid JSON text that Python's json reads as
    # infinity: the strict parser (recsvc.web.json_body) refuses the body, so it never
    # reaches the stream, whose records every reader parses as strict JSON.
    error_of(post_raw(client, json_text), 400, "invalid_json")
    assert len(stream(redis_conn, keys)) == 0


@pytest.mark.parametrize(
    ("json_text", "field"),
    [
        (
            '{"type": "page_view", "visitor_id": "v-1", "quantity": 18446744073709551616}',
            "quantity",
        ),
        ('{"type": "page_view", "visitor_id": "v-1", "item_id": 99999999999999999999}', "item_id"),
    ],
    ids=["quantity-2^64", "item-id-20-digits"],
)
def test_integers_beyond_64_bits_are_422(client, redis_conn, keys, json_text, field):
    # orjson reads them as floats, which an integer field refuses.
    assert_names(errors_of(post_raw(client, json_text)), 0, field)
    assert len(stream(redis_conn, keys)) == 0


def test_oversized_body_is_413_json(settings, clock, redis_conn):
    client = create_app(settings.replace(max_body_bytes=1000), clock=clock).test_client()
    events = [{**OK, "visitor_id": f"v-{n}"} for n in range(30)]  # valid, about 1.3 KB
    response = post(client, {"events": events})
    error_of(response, 413, "request_entity_too_large")
    assert snapshot(redis_conn, settings) == {}
    assert post(client, {"events": events[:10]}).status_code == 202


def test_default_body_limit_is_2_mib(client, settings):
    error_of(post_raw(client, "x" * (settings.max_body_bytes + 1)), 413, "request_entity_too_large")


# --- all or nothing -----------------------------------------------------------------------


@pytest.mark.parametrize("bad_at", [0, 25, 50])
def test_one_bad_event_among_50_writes_nothing(client, redis_conn, keys, settings, bad_at):
    seed = [
        {"type": "page_view", "visitor_id": "v-0", "source": "email"},
        {"type": "add_to_cart", "visitor_id": "v-0", "user_id": "u-0", "item_id": "a"},
    ]
    assert post(client, {"events": seed}).status_code == 202
    before = snapshot(redis_conn, settings)
    assert len(stream(redis_conn, keys)) == 2

    events = [
        {
            "type": ("product_view", "add_to_cart", "purchase", "page_view")[n % 4],
            "visitor_id": f"v-{n % 7}",
            "user_id": f"u-{n % 3}",
            "item_id": f"sku-{n}",
            "source": "social",
        }
        for n in range(50)
    ]
    events.insert(bad_at, {"type": "purchase", "visitor_id": "v-1"})  # no item_id
    errors = errors_of(post(client, {"events": events}))
    assert [(e["index"], e["field"]) for e in errors] == [(bad_at, "item_id")]

    assert len(stream(redis_conn, keys)) == 2
    assert snapshot(redis_conn, settings) == before
    assert not redis_conn.exists(keys.visitor_profile("v-5"), keys.customer("u-2"))


# --- Redis unreachable --------------------------------------------------------------------


@pytest.fixture
def client_without_redis(settings, clock):
    dead = settings.replace(
        redis_url=f"redis://127.0.0.1:{closed_port()}",
        redis_connect_timeout=0.2,
        redis_socket_timeout=0.2,
        redis_retries=0,
        retry_after_seconds=7,
    )
    return create_app(dead, clock=clock).test_client()


def test_unreachable_redis_is_503_with_retry_after(client_without_redis, redis_conn, settings):
    response = post(client_without_redis, {"events": [OK, {**OK, "visitor_id": "v-2"}]})
    error_of(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "7"
    # The same namespace on the live Redis: nothing of the batch anywhere.
    assert snapshot(redis_conn, settings) == {}


@pytest.fixture
def client_with_hung_redis(settings, clock):
    """A Redis host that accepts connections and never answers (a paused or overloaded
    server): every command waits out the socket timeout."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        stalled = settings.replace(
            redis_url=f"redis://127.0.0.1:{hung.getsockname()[1]}",
            redis_socket_timeout=0.3,
            redis_retries=0,
            breaker_failures=2,
            breaker_reset_seconds=60,
        )
        yield create_app(stalled, clock=clock).test_client()


def test_after_failed_writes_events_are_refused_at_once(client_with_hung_redis):
    def timed_post():
        started = time.perf_counter()
        response = post(client_with_hung_redis, OK)
        return response, time.perf_counter() - started

    waited = [timed_post() for _ in range(2)]
    assert all(r.status_code == 503 and took >= 0.3 for r, took in waited)
    # The breaker is open: no more waiting for the socket timeout.
    response, took = timed_post()
    error_of(response, 503, "unavailable")
    assert "Retry-After" in response.headers and took < 0.15


def test_validation_does_not_need_redis(client_without_redis):
    errors = errors_of(post(client_without_redis, {**OK, "type": "teleport"}))
    assert [(e["index"], e["field"]) for e in errors] == [(0, "type")]


# --- bounded state (issue 13) -------------------------------------------------------------

PUBLIC_KEY = {"X-API-Key": "pub"}
SERVER_KEY = {"X-API-Key": "srv"}


@pytest.fixture
def keyed_client(settings, clock):
    keyed = settings.replace(public_keys=("pub",), server_keys=("srv",))
    return create_app(keyed, clock=clock).test_client()


def funnel_keys(redis_conn, keys):
    return list(redis_conn.scan_iter(match=keys.funnel_counter("*", "*", "*", "*")))


def test_backdated_events_from_a_public_key_are_refused(keyed_client, redis_conn, keys, settings):
    """Before: one request of 1,000 events stamped back to 1970 made 2,000 funnel keys that
    never expired."""
    events = [
        {
            "type": "page_view",
            "visitor_id": f"v-{n}",
            "timestamp": f"{1970 + n % 50}-06-01T00:00:00Z",
        }
        for n in range(1000)
    ]
    response = keyed_client.post("/v1/events", json={"events": events}, headers=PUBLIC_KEY)
    assert response.status_code == 422
    assert snapshot(redis_conn, settings) == {}
    assert funnel_keys(redis_conn, keys) == []


@pytest.mark.parametrize(
    ("key", "timestamp", "status"),
    [
        (PUBLIC_KEY, "2026-03-07T12:00:00Z", 202),  # 3 days back: the public window
        (PUBLIC_KEY, "2026-03-07T11:59:59Z", 422),
        (PUBLIC_KEY, "2026-03-11T12:00:01Z", 422),  # more than a day ahead
        (SERVER_KEY, "2025-02-03T12:00:00Z", 202),  # 400 days back: the retention
        (SERVER_KEY, "2025-02-03T11:59:59Z", 422),
    ],
)
def test_the_accepted_time_window_depends_on_the_key(keyed_client, key, timestamp, status):
    event = {"type": "page_view", "visitor_id": "v-1", "timestamp": timestamp}
    response = keyed_client.post("/v1/events", json=event, headers=key)
    assert response.status_code == status, response.get_json()
    if status == 422:
        assert response.get_json()["error"]["details"]["errors"][0]["field"] == "timestamp"


def test_a_cart_past_its_line_cap_is_422_naming_the_event(settings, clock, redis_conn, keys):
    """Before: carts grew without bound (30 requests made a 1.1 MB profile)."""
    client = create_app(settings.replace(cart_max_lines=5), clock=clock).test_client()
    lines = [{"type": "add_to_cart", "visitor_id": "v-1", "item_id": f"i{n}"} for n in range(5)]
    assert post(client, {"events": lines}).status_code == 202
    before = snapshot(redis_conn, settings)
    more = [
        {"type": "product_view", "visitor_id": "v-1", "item_id": "i9"},
        {"type": "add_to_cart", "visitor_id": "v-1", "item_id": "i0"},  # more of a line: fine
        {"type": "add_to_cart", "visitor_id": "v-1", "item_id": "i5"},  # a 6th line
    ]
    errors = errors_of(post(client, {"events": more}))
    assert [(e["index"], e["field"]) for e in errors] == [(2, "item_id")]
    assert snapshot(redis_conn, settings) == before


def test_a_cart_line_past_its_quantity_cap_is_422(client, redis_conn, settings):
    add = {"type": "add_to_cart", "visitor_id": "v-1", "item_id": "a", "quantity": 600}
    assert post(client, add).status_code == 202
    before = snapshot(redis_conn, settings)
    errors = errors_of(post(client, add))  # 1,200 of one line: over 1,000
    assert [(e["index"], e["field"]) for e in errors] == [(0, "quantity")]
    assert snapshot(redis_conn, settings) == before


def test_impressions_of_made_up_banners_are_not_counted(client, redis_conn, keys):
    """Before: any banner id grew the visitor's document, one entry per made-up id."""
    banner = {"id": "b-real", "placement": "home", "content": {"title": "t"}}
    assert client.post("/v1/admin/banners", json=banner).status_code == 201
    shown = [
        {"type": "banner_impression", "visitor_id": "v-1", "properties": {"banner_id": b}}
        for b in ["b-real", *(f"b-fake-{n}" for n in range(200))]
    ]
    assert post(client, {"events": shown}).status_code == 202
    document = json.loads(redis_conn.get(keys.visitor_profile("v-1")))
    assert list(document["banner_impressions"]) == ["b-real"]
    assert len(stream(redis_conn, keys)) == 201  # the events themselves are kept
