"""The synthetic store's files: format, determinism, and the behaviour they must show."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta
from itertools import combinations, pairwise

import numpy as np
import pytest
from synth_support import SMALL, Store, tree_bytes

from recsvc.core.events import (
    CHANNELS,
    EVENT_TYPES,
    ID_PATTERN,
    OPTIONAL_FIELDS,
    PRODUCT_EVENT_TYPES,
    SOURCES,
    event_day,
    format_timestamp,
    parse_timestamp,
)
from recsvc.eventlog.reader import iter_records
from recsvc.schemas.events import EventSchema
from recsvc.settings import Settings
from recsvc.synth.generator import GenerateConfig, generate
from recsvc.synth.replay import client_event

REQUIRED_FIELDS = {"id", "type", "visitor_id", "timestamp", "received_at"}
CART_TYPES = {"add_to_cart", "remove_from_cart", "purchase"}


def by_visitor(records: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        grouped[record["visitor_id"]].append(record)
    return grouped


def visitors_with(store: Store, event_type: str) -> set[str]:
    return {r["visitor_id"] for r in store.records if r["type"] == event_type}


# --- determinism ---------------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes(store: Store, tmp_path) -> None:
    again = replace(store.config, out=tmp_path / "again")
    generate(again)
    first, second = tree_bytes(store.config.out), tree_bytes(again.out)
    assert first.keys() == second.keys()
    assert first == second


def test_another_seed_gives_other_data(store: Store, tmp_path) -> None:
    other = replace(store.config, out=tmp_path / "other", seed=SMALL["seed"] + 1)
    generate(other)
    for name in ("items.csv", "ground_truth.jsonl"):
        assert (other.out / name).read_bytes() != (store.config.out / name).read_bytes()
    other_ids = {r["id"] for r in iter_records(other.out / "events")}
    assert other_ids.isdisjoint(r["id"] for r in store.records)


def test_gzip_parts_hold_the_same_records_deterministically(tmp_path) -> None:
    small = {**SMALL, "visitors": 300}
    plain = GenerateConfig(out=tmp_path / "plain", **small)
    zipped = GenerateConfig(out=tmp_path / "gz", gzip=True, **small)
    generate(plain)
    generate(zipped)
    zipped_bytes = tree_bytes(zipped.out)
    assert all(name.endswith(".jsonl.gz") for name in zipped_bytes if name.startswith("events"))
    assert list(iter_records(zipped.out)) == list(iter_records(plain.out))
    generate(zipped)  # again over the same folder: same bytes, no leftovers
    assert tree_bytes(zipped.out) == zipped_bytes


def test_regenerating_replaces_only_synthetic_parts(store: Store, tmp_path) -> None:
    config = replace(store.config, out=tmp_path / "data", visitors=200, days=5)
    foreign = config.out / "events" / "date=2020-01-01" / "part-exporter.jsonl"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("{}\n")
    generate(replace(config, days=10))
    generate(config)
    parts = sorted(p.parent.name for p in (config.out / "events").rglob("part-synthetic*"))
    assert len(parts) == 5
    assert parts[0] == f"date={config.start_date}"
    assert foreign.read_text() == "{}\n"


# --- format ----------------------------------------------------------------------------


def test_every_record_follows_the_event_vocabulary(store: Store) -> None:
    allowed = REQUIRED_FIELDS | set(OPTIONAL_FIELDS)
    for record, partition in zip(store.records, store.partitions, strict=True):
        assert REQUIRED_FIELDS <= record.keys() <= allowed, record
        assert None not in record.values()
        assert record["type"] in EVENT_TYPES
        if record["type"] in PRODUCT_EVENT_TYPES:
            assert record["item_id"]
        assert record.get("source", "direct") in SOURCES
        assert record["channel"] in CHANNELS
        for key in ("visitor_id", "user_id", "item_id", "session_id"):
            assert key not in record or ID_PATTERN.fullmatch(record[key])
        moment = parse_timestamp(record["timestamp"])
        assert format_timestamp(moment) == record["timestamp"] == record["received_at"]
        assert event_day(record) == partition


def test_records_are_accepted_by_the_service_schema(store: Store) -> None:
    schema = EventSchema(now=parse_timestamp(f"{store.config.end_date}T23:59:59Z"))
    errors = schema.validate([client_event(r) for r in store.records], many=True)
    assert errors == {}


def test_field_details_by_type(store: Store) -> None:
    for record in store.records:
        kind, props = record["type"], record.get("properties", {})
        if kind in CART_TYPES:
            assert isinstance(record["quantity"], int) and record["quantity"] >= 1
            assert isinstance(record["price"], float) and record["price"] > 0
        else:
            assert "quantity" not in record and "price" not in record
        if kind == "page_view":
            assert record["source"] in SOURCES and props["page"]
        if kind == "search":
            assert props["query"].strip()
        if kind.startswith("banner_"):
            assert re.fullmatch(r"b\d\d", props["banner_id"])
        if kind == "purchase":
            assert props["order_id"]
        if kind in {"email_open", "survey_response"}:
            assert record["channel"] == "email" and "session_id" not in record
        else:
            assert record["channel"] in {"web", "app"} and record["session_id"]


def test_ids_are_unique_time_ordered_hex(store: Store) -> None:
    ids = [r["id"] for r in store.records]
    assert len(set(ids)) == len(ids)
    for record in store.records:
        millis = int(parse_timestamp(record["timestamp"]).timestamp() * 1000 + 0.5)
        assert re.fullmatch(r"[0-9a-f]{32}", record["id"])
        assert int(record["id"][:12], 16) == millis


def test_each_day_is_sorted_by_timestamp(store: Store) -> None:
    days = Counter(store.partitions)
    assert len(days) == store.config.days
    start = 0
    for count in days.values():
        stamps = [r["timestamp"] for r in store.records[start : start + count]]
        assert stamps == sorted(stamps)
        start += count


def test_catalog_file(store: Store) -> None:
    items = store.items
    assert list(items[0]) == ["item_id", "category", "price", "in_stock"]
    assert len(items) == SMALL["items"]
    assert all(re.fullmatch(r"i\d{6}", i["item_id"]) for i in items)
    assert all(re.fullmatch(r"c\d\d", i["category"]) for i in items)
    in_stock = [i["in_stock"] == "true" for i in items]
    assert {i["in_stock"] for i in items} == {"true", "false"}
    assert 0.82 < np.mean(in_stock) < 0.97
    assert all(re.fullmatch(r"\d+\.99", i["price"]) for i in items)
    # Prices depend on the category: medians differ several-fold between categories.
    prices: dict[str, list[float]] = defaultdict(list)
    for item in items:
        prices[item["category"]].append(float(item["price"]))
    medians = [np.median(p) for p in prices.values()]
    assert max(medians) > 4 * min(medians)
    known = {i["item_id"] for i in items}
    assert {r["item_id"] for r in store.records if "item_id" in r} <= known


def test_world_file_counts_what_was_written(store: Store) -> None:
    counts = store.world["counts"]
    assert counts["events"] == len(store.records) == store.result.events
    assert counts["events_by_type"] == {
        kind: sum(r["type"] == kind for r in store.records) for kind in EVENT_TYPES
    }
    assert counts["visitors"] == SMALL["visitors"] and counts["items"] == SMALL["items"]
    assert counts["purchases"] == counts["events_by_type"]["purchase"]
    assert counts["ground_truth_visitors"] == len(store.truth)
    assert store.world["arguments"]["seed"] == SMALL["seed"]
    assert store.world["params"]["item_zipf"] > 0
    # Nothing that varies between runs (like the time taken): the file is deterministic.
    assert "elapsed" not in (store.config.out / "world.json").read_text()


# --- behaviour -------------------------------------------------------------------------


def test_funnel_drops_off_step_by_step(store: Store) -> None:
    steps = ("page_view", "product_view", "add_to_cart", "checkout_start", "purchase")
    reached = [len(visitors_with(store, step)) for step in steps]
    assert all(a > b > 0 for a, b in pairwise(reached)), reached
    assert reached[-1] < 0.25 * reached[1]  # most browsers never buy
    assert 0 < len(visitors_with(store, "review_view")) < reached[1]
    purchased = visitors_with(store, "purchase")
    assert visitors_with(store, "survey_response") <= visitors_with(store, "email_open")
    assert visitors_with(store, "survey_response") <= purchased


def test_most_carts_are_abandoned(store: Store) -> None:
    counts = store.world["counts"]
    assert counts["abandoned_carts"] > 0.55 * counts["carts"]
    sessions = defaultdict(set)
    for record in store.records:
        if "session_id" in record:
            sessions[record["type"]].add(record["session_id"])
    assert len(sessions["purchase"]) < 0.5 * len(sessions["add_to_cart"])
    assert sessions["remove_from_cart"]


def test_visits_are_separated_by_the_visit_gap(store: Store) -> None:
    gap = timedelta(seconds=Settings.visit_gap_seconds)
    for events in by_visitor(store.records).values():
        web = [r for r in events if "session_id" in r]
        for before, after in pairwise(web):
            pause = parse_timestamp(after["timestamp"]) - parse_timestamp(before["timestamp"])
            assert (pause > gap) == (before["session_id"] != after["session_id"])


def test_visitors_return_and_buy_again(store: Store) -> None:
    sessions = Counter()
    days = defaultdict(set)
    orders = defaultdict(set)
    for record in store.records:
        if "session_id" in record:
            sessions[record["visitor_id"]] += 0 if record["type"] != "page_view" else 1
            days[record["visitor_id"]].add(event_day(record))
        if record["type"] == "purchase":
            orders[record["visitor_id"]].add(record["properties"]["order_id"])
    returning = sum(n >= 3 and len(days[v]) >= 2 for v, n in sessions.items())
    assert returning > 0.1 * len(sessions)
    assert sum(len(o) >= 2 for o in orders.values()) > 10


def test_sources_differ_in_share_and_conversion(store: Store) -> None:
    landings = Counter(r["source"] for r in store.records if r["type"] == "page_view")
    assert set(landings) == set(SOURCES)
    by_session = {r["session_id"]: r["source"] for r in store.records if "session_id" in r}
    bought = {r["session_id"] for r in store.records if r["type"] == "purchase"}
    converted = Counter(by_session[s] for s in bought)
    rate = {source: converted[source] / landings[source] for source in SOURCES}
    assert rate["email"] + rate["direct"] > 2 * (rate["social"] + rate["facebook_ads"])
    assert landings["organic_search"] > 2 * landings["referral"]


def test_channels_banners_searches_and_marketing_email(store: Store) -> None:
    web = [r for r in store.records if "session_id" in r]
    app_share = sum(r["channel"] == "app" for r in web) / len(web)
    assert 0.05 < app_share < 0.35
    kinds = Counter(r["type"] for r in store.records)
    assert kinds["banner_impression"] > 10 * kinds["banner_click"] > 0
    assert kinds["search"] > 0
    campaigns = Counter(
        r["properties"]["campaign"].split("-")[0]
        for r in store.records
        if r["type"] == "email_open"
    )
    assert campaigns["newsletter"] > 0 and campaigns["order_confirmation"] > 0


def test_purchases_follow_tastes(store: Store) -> None:
    """Two different items one visitor carted or bought share a category far more often
    than two drawn from all carts: the planted taste structure."""
    category = {i["item_id"]: i["category"] for i in store.items}
    carted: dict[str, set[str]] = defaultdict(set)
    for record in store.records:
        if record["type"] in {"add_to_cart", "purchase"}:
            carted[record["visitor_id"]].add(record["item_id"])
    shares = Counter(category[item] for items in carted.values() for item in items)
    total = sum(shares.values())
    chance = sum((n / total) ** 2 for n in shares.values())
    pairs = same = 0
    for items in carted.values():
        for first, second in combinations(sorted(items), 2):
            pairs += 1
            same += category[first] == category[second]
    assert pairs > 500
    assert same / pairs > 3 * chance


def test_a_user_is_stitched_over_two_devices(store: Store) -> None:
    visitors_of = defaultdict(set)
    for record in store.records:
        if "user_id" in record:
            visitors_of[record["user_id"]].add(record["visitor_id"])
    two_devices = [u for u, v in visitors_of.items() if len(v) >= 2]
    assert len(two_devices) >= 5
    # Registered visitors browse anonymously before logging in on the same device.
    anonymous_then_known = 0
    for events in by_visitor(store.records).values():
        logged = ["user_id" in r for r in events]
        anonymous_then_known += any(logged) and not logged[0]
    assert anonymous_then_known > 10


def test_ground_truth_is_held_out(store: Store) -> None:
    assert len(store.truth) > 20
    last_logged = max(r["timestamp"] for r in store.records)
    assert last_logged < store.world["period"]["holdout_start"]
    assert store.world["period"]["holdout_start"] > str(store.config.end_date)
    logged_users = {r["visitor_id"]: r["user_id"] for r in store.records if "user_id" in r}
    known_visitors = {r["visitor_id"] for r in store.records}
    items = {i["item_id"] for i in store.items}
    for line in store.truth:
        assert set(line) <= {"visitor_id", "user_id", "items"}
        assert line["visitor_id"] in known_visitors  # nobody new arrives in the hold-out
        assert line["items"] and len(set(line["items"])) == len(line["items"])
        assert set(line["items"]) <= items
        if line["visitor_id"] in logged_users:
            assert line["user_id"] == logged_users[line["visitor_id"]]
    visitors = [line["visitor_id"] for line in store.truth]
    assert visitors == sorted(visitors)
    held_out = store.world["counts"]["held_out_purchases"]
    assert held_out >= sum(len(line["items"]) for line in store.truth)


def test_matrix_factorisation_beats_popularity(store: Store) -> None:
    """ALS on the logs ranks the held-out purchases far better than popularity does."""
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    weight = {"product_view": 1.0, "review_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    visitors: dict[str, int] = {}
    items = {i["item_id"]: n for n, i in enumerate(store.items)}
    rows, cols, values = [], [], []
    for record in store.records:
        if record["type"] in weight:
            rows.append(visitors.setdefault(record["visitor_id"], len(visitors)))
            cols.append(items[record["item_id"]])
            values.append(weight[record["type"]])
    matrix = csr_matrix((values, (rows, cols)), shape=(len(visitors), len(items)), dtype="f4")
    with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, not BLAS's
        model = AlternatingLeastSquares(factors=32, iterations=15, random_state=0)
        model.fit(matrix, show_progress=False)
    popular = np.argsort(-np.asarray(matrix.sum(axis=0)).ravel(), kind="stable")[:10]
    truth = [t for t in store.truth if t["visitor_id"] in visitors]
    als_ndcg, popular_ndcg = [], []
    for line in truth:
        row = visitors[line["visitor_id"]]
        wanted = {items[i] for i in line["items"]}
        ranked, _ = model.recommend(row, matrix[row], N=10, filter_already_liked_items=False)
        als_ndcg.append(ndcg(ranked.tolist(), wanted))
        popular_ndcg.append(ndcg(popular.tolist(), wanted))
    assert len(truth) > 20
    assert np.mean(als_ndcg) > 2 * np.mean(popular_ndcg) > 0


def ndcg(ranked: list[int], wanted: set[int], k: int = 10) -> float:
    """NDCG@k with binary relevance: DCG of the hits over DCG of a perfect ranking."""
    gain = sum(1 / np.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in wanted)
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(len(wanted), k)))
    return gain / ideal


def test_rejects_empty_worlds(tmp_path) -> None:
    with pytest.raises(ValueError):
        generate(GenerateConfig(out=tmp_path, **{**SMALL, "visitors": 0}))
