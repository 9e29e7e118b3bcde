"""The nudge store on real Redis: the cart index kept by ingestion, claims (also by racing
threads and processes), holdout, weekly cap, and attribution of sends and purchases."""

import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from recsvc.core.events import format_timestamp, new_event_id
from recsvc.core.nudges import in_holdout
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.store.events import EventWriter
from recsvc.store.nudges import NudgeStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY0 = "2026-03-02"
# Due for email: 30 minutes to abandonment, then an hour's delay.
EMAIL_DUE = 1800 + 3600


def epoch(seconds=0.0) -> float:
    return T0.timestamp() + seconds


def rec(kind, visitor, seconds=0, **fields):
    return {
        "id": new_event_id(),
        "type": kind,
        "visitor_id": visitor,
        "timestamp": format_timestamp(T0 + timedelta(seconds=seconds)),
        **fields,
    }


def sent(visitor, seconds, channel="email", **fields):
    return rec("nudge_sent", visitor, seconds, properties={"channel": channel}, **fields)


@pytest.fixture
def plain(settings):
    """No holdout: every due cart can be claimed."""
    return settings.replace(nudge_holdout_share=0.0)


@pytest.fixture
def writer(redis_conn, keys, plain):
    return EventWriter(redis_conn, keys, plain)


@pytest.fixture
def store(redis_conn, keys, plain):
    return NudgeStore(redis_conn, keys, plain)


def index(redis_conn, keys, channel="email"):
    entries = redis_conn.zrange(keys.cart_index(channel), 0, -1, withscores=True)
    return {owner.decode(): score for owner, score in entries}


def state(redis_conn, keys, owner):
    raw = redis_conn.hgetall(keys.nudge_state(owner))
    return {k.decode(): v.decode() for k, v in raw.items()}


def stats(redis_conn, keys):
    raw = redis_conn.hgetall(keys.nudge_stats())
    return {k.decode(): float(v) for k, v in raw.items()}


def owners(claimed):
    return [cart.owner for cart in claimed]


# --- the cart index ------------------------------------------------------------------------
def test_ingestion_keeps_the_cart_index(writer, redis_conn, keys):
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=5.0)])
    writer.write([rec("add_to_cart", "v1", 60, item_id="b", price=2.0)])
    assert index(redis_conn, keys) == {"v:v1": epoch(60)}
    writer.write([rec("remove_from_cart", "v1", 120, item_id="a")])
    assert index(redis_conn, keys) == {"v:v1": epoch(120)}
    writer.write([rec("remove_from_cart", "v1", 180, item_id="b")])
    assert index(redis_conn, keys) == {}  # empty cart: nothing to abandon


def test_a_purchase_takes_the_cart_out_of_the_index(writer, store, redis_conn, keys):
    writer.write(
        [rec("add_to_cart", "v1", 0, item_id="a"), rec("add_to_cart", "v1", 1, item_id="b")]
    )
    writer.write([rec("purchase", "v1", 60, item_id="a")])
    # "b" is still in the cart, but bought from after the last change: not abandoned.
    assert index(redis_conn, keys) == {}
    assert store.claim("email", 10, epoch(EMAIL_DUE + 3600)) == []


def test_only_owners_a_batch_touches_are_written(writer, redis_conn, keys):
    redis_conn.zadd(keys.cart_index("email"), {"v:elsewhere": 1.0})
    writer.write([rec("page_view", "v1", 0), rec("add_to_cart", "v2", 0, item_id="a")])
    assert index(redis_conn, keys) == {"v:elsewhere": 1.0, "v:v2": epoch(0)}


def test_stitching_moves_the_index_entry_to_the_customer(writer, redis_conn, keys):
    writer.write([rec("add_to_cart", "phone", 0, item_id="a", price=5.0)])
    assert index(redis_conn, keys) == {"v:phone": epoch(0)}
    writer.write([rec("page_view", "phone", 30, user_id="u1")])
    assert index(redis_conn, keys) == {"u:u1": epoch(0)}
    # Later cart events without user_id land on the customer's cart.
    writer.write([rec("add_to_cart", "phone", 90, item_id="b")])
    assert index(redis_conn, keys) == {"u:u1": epoch(90)}


def test_stitching_and_cart_in_one_batch(writer, redis_conn, keys):
    writer.write(
        [
            rec("add_to_cart", "phone", 0, item_id="a"),
            rec("page_view", "phone", 10, user_id="u1"),
            rec("add_to_cart", "phone", 20, item_id="b"),
        ]
    )
    assert index(redis_conn, keys) == {"u:u1": epoch(20)}


# --- claims --------------------------------------------------------------------------------
def test_due_carts_are_claimed_oldest_first_once(writer, store, redis_conn, keys):
    writer.write([rec("add_to_cart", "late", 100, item_id="a")])
    writer.write([rec("add_to_cart", "early", 0, item_id="a", price=3.0, quantity=2)])
    assert store.claim("email", 10, epoch(EMAIL_DUE - 1)) == []  # not yet due for email
    assert owners(store.claim("push", 10, epoch(1800))) == ["v:early"]  # push: no delay
    claimed = store.claim("email", 10, epoch(EMAIL_DUE + 100))
    assert owners(claimed) == ["v:early", "v:late"]
    assert claimed[0].changed == epoch(0) and claimed[0].shared["cart"]["items"]["a"] == {
        "quantity": 2,
        "price": 3.0,
    }
    assert store.claim("email", 10, epoch(EMAIL_DUE + 200)) == []
    record = state(redis_conn, keys, "v:early")
    assert float(record["email:cart"]) == epoch(0)
    assert float(record["email:claimed_at"]) == epoch(EMAIL_DUE + 100)
    assert len(record["claims"].split()) == 2  # push and email: one cap for all channels
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|claimed"] == 2 and counts[f"{DAY0}|email|eligible"] == 2
    assert counts[f"{DAY0}|push|claimed"] == 1


def test_limit_is_respected_and_the_rest_stays_for_the_next_call(writer, store):
    writer.write([rec("add_to_cart", f"v{n}", n, item_id="a") for n in range(5)])
    now = epoch(EMAIL_DUE + 10)
    first = store.claim("email", 2, now)
    second = store.claim("email", 2, now)
    third = store.claim("email", 2, now)
    assert owners(first) == ["v:v0", "v:v1"] and owners(second) == ["v:v2", "v:v3"]
    assert owners(third) == ["v:v4"]


def test_a_changed_cart_may_be_claimed_again_within_the_weekly_cap(writer, store, plain):
    assert plain.nudge_cap_per_week == 2
    writer.write([rec("add_to_cart", "v1", 0, item_id="a")])
    assert owners(store.claim("email", 5, epoch(EMAIL_DUE))) == ["v:v1"]
    writer.write([rec("add_to_cart", "v1", 10_000, item_id="b")])
    assert owners(store.claim("email", 5, epoch(10_000 + EMAIL_DUE))) == ["v:v1"]
    writer.write([rec("add_to_cart", "v1", 20_000, item_id="c")])
    assert store.claim("email", 5, epoch(20_000 + EMAIL_DUE)) == []  # two this week: capped
    assert store.claim("push", 5, epoch(20_000 + EMAIL_DUE)) == []  # the cap is per owner
    # A week after the first claim, one slot is free again.
    assert owners(store.claim("email", 5, epoch(EMAIL_DUE + 7 * 86400))) == ["v:v1"]


def test_a_cart_changed_after_the_read_is_not_claimed_stale(writer, store, redis_conn, keys):
    """The script checks the owner's document is still the one the caller read."""
    writer.write([rec("add_to_cart", "v1", 0, item_id="a")])
    now = epoch(EMAIL_DUE)
    due, _ = store._due("email", ["v:v1"], now)
    writer.write([rec("add_to_cart", "v1", 50, item_id="b")])
    assert store._take_up_to("email", due, 5, now) == ([], 0)
    assert "email:cart" not in state(redis_conn, keys, "v:v1")


def test_an_index_entry_without_its_document_is_dropped(store, redis_conn, keys):
    redis_conn.zadd(keys.cart_index("push"), {"v:expired": 1.0, "u:gone": 2.0})
    redis_conn.zadd(keys.cart_index("email"), {"v:expired": 1.0})
    assert store.claim("push", 10, epoch()) == []
    assert index(redis_conn, keys, "push") == index(redis_conn, keys, "email") == {}


def claim_all(store: NudgeStore, channel: str, now: float, limit: int) -> list[str]:
    got: list[str] = []
    while batch := store.claim(channel, limit, now):
        got.extend(owners(batch))
    return got


def test_threads_claiming_at_once_never_share_a_cart(writer, redis_conn, keys, plain):
    carts = 120
    writer.write([rec("add_to_cart", f"v{n}", n, item_id="a") for n in range(carts)])
    now = epoch(EMAIL_DUE + carts)
    results: list[list[str]] = [[], [], [], []]

    def sender(slot: int):
        own = NudgeStore(connect(plain.redis_url, plain), keys, plain)
        results[slot] = claim_all(own, "email", now, limit=3 + slot)

    threads = [threading.Thread(target=sender, args=(slot,)) for slot in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [owner for got in results for owner in got]
    assert len(everything) == len(set(everything)) == carts
    assert stats(redis_conn, keys)[f"{DAY0}|email|claimed"] == carts


def _claim_in_process(settings, now, queue, start):
    store = NudgeStore(
        connect(settings.redis_url, settings), KeySpace(settings.namespace), settings
    )
    start.wait(timeout=60)  # all connected, then all claim at once
    # One cart per call: many short calls, so the processes' claims interleave even on a
    # fast unix-socket Redis (with bigger calls one process could finish before the
    # others were scheduled).
    queue.put(claim_all(store, "sms", now, limit=1))


def test_processes_claiming_at_once_never_share_a_cart(writer, plain):
    carts = 120
    writer.write([rec("add_to_cart", f"v{n}", n, item_id="a") for n in range(carts)])
    now = epoch(EMAIL_DUE + carts)
    context = multiprocessing.get_context("fork")
    queue, start = context.Queue(), context.Event()
    processes = [
        context.Process(target=_claim_in_process, args=(plain, now, queue, start)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    time.sleep(0.2)
    start.set()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    everything = [owner for got in results for owner in got]
    assert len(everything) == len(set(everything)) == carts
    assert sum(1 for got in results if got) >= 2, "one process took everything: no race"


# --- holdout -------------------------------------------------------------------------------
def test_holdout_owners_are_never_claimed_but_recorded(redis_conn, keys, settings):
    half = settings.replace(nudge_holdout_share=0.5)
    writer = EventWriter(redis_conn, keys, half)
    store = NudgeStore(redis_conn, keys, half)
    writer.write([rec("add_to_cart", f"v{n}", n, item_id="a") for n in range(60)])
    now = epoch(EMAIL_DUE + 60)
    claimed = claim_all(store, "email", now, limit=7)
    held = [f"v:v{n}" for n in range(60) if in_holdout(f"v:v{n}", "email", 0.5)]
    assert 10 < len(held) < 50
    assert sorted(claimed) == sorted(set(f"v:v{n}" for n in range(60)) - set(held))
    for owner in held:
        assert float(state(redis_conn, keys, owner)["email:holdout_at"]) == now
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|held_out"] == len(held)
    assert counts[f"{DAY0}|email|eligible"] == 60
    # Recorded once per cart: claiming again counts nothing more.
    assert store.claim("email", 100, now) == []
    assert stats(redis_conn, keys) == counts


def test_the_weekly_cap_limits_sends_not_the_holdout(redis_conn, keys, settings):
    everyone = settings.replace(nudge_holdout_share=1.0)
    writer = EventWriter(redis_conn, keys, everyone)
    store = NudgeStore(redis_conn, keys, everyone)
    writer.write([rec("add_to_cart", "v1", 0, item_id="a")])
    recent = f"{epoch(-60)!r} {epoch(-30)!r}"
    redis_conn.hset(keys.nudge_state("v:v1"), "claims", recent)  # two sends this week
    assert store.claim("email", 5, epoch(EMAIL_DUE)) == []
    record = state(redis_conn, keys, "v:v1")
    assert float(record["email:holdout_at"]) == epoch(EMAIL_DUE)
    assert record["claims"] == recent  # a held-out chance is not a send


# --- attribution -----------------------------------------------------------------------------
def test_a_purchase_after_a_send_within_the_window_is_a_recovery(writer, store, redis_conn, keys):
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=10.0, quantity=2)])
    store.claim("email", 1, epoch(EMAIL_DUE))
    writer.write([sent("v1", EMAIL_DUE + 5), sent("v1", EMAIL_DUE + 6)])  # a resend counts once
    writer.write([rec("nudge_click", "v1", EMAIL_DUE + 60, properties={"channel": "email"})])
    buy = EMAIL_DUE + 86400
    order = {"order_id": "o1"}
    writer.write(
        [rec("purchase", "v1", buy, item_id="a", price=10.0, quantity=2, properties=order)]
    )
    # A second line of the same order adds value, not a recovery; another order adds nothing.
    writer.write([rec("purchase", "v1", buy + 1, item_id="b", price=5.0, properties=order)])
    other = {"order_id": "o2"}
    writer.write([rec("purchase", "v1", buy + 7200, item_id="c", price=99.0, properties=other)])
    day1 = "2026-03-03"
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|sent"] == 1 and counts[f"{DAY0}|email|clicked"] == 1
    assert counts[f"{day1}|email|recovered"] == 1
    assert counts[f"{day1}|email|recovered_value"] == 25.0
    assert float(state(redis_conn, keys, "v:v1")["email:recovered_at"]) == epoch(buy)


def test_a_purchase_outside_the_window_is_not_a_recovery(writer, store, redis_conn, keys):
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=10.0)])
    store.claim("email", 1, epoch(EMAIL_DUE))
    writer.write([sent("v1", EMAIL_DUE)])
    writer.write([rec("purchase", "v1", EMAIL_DUE + 7 * 86400 + 1, item_id="a", price=10.0)])
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|sent"] == 1
    assert not [field for field in counts if "recovered" in field]


def test_a_held_out_cart_bought_within_the_window_counts_for_the_holdout(
    redis_conn, keys, settings
):
    everyone = settings.replace(nudge_holdout_share=1.0)
    writer = EventWriter(redis_conn, keys, everyone)
    store = NudgeStore(redis_conn, keys, everyone)
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=4.0, quantity=3)])
    assert store.claim("email", 5, epoch(EMAIL_DUE)) == []
    writer.write([rec("purchase", "v1", EMAIL_DUE + 600, item_id="a", price=4.0, quantity=3)])
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|held_out"] == 1
    assert counts[f"{DAY0}|email|holdout_recovered"] == 1
    assert counts[f"{DAY0}|email|holdout_recovered_value"] == 12.0
    assert f"{DAY0}|email|recovered" not in counts


def test_attribution_follows_the_cart_to_the_customer(writer, store, redis_conn, keys):
    """Claimed as a customer's cart; the purchase comes from another of their devices."""
    writer.write([rec("add_to_cart", "phone", 0, item_id="a", price=8.0, user_id="u1")])
    assert owners(store.claim("push", 1, epoch(1800))) == ["u:u1"]
    writer.write([sent("phone", 1800, channel="push")])
    writer.write([rec("purchase", "laptop", 3600, item_id="a", price=8.0, user_id="u1")])
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|push|recovered"] == 1
    assert counts[f"{DAY0}|push|recovered_value"] == 8.0


def test_nudges_move_with_the_cart_when_the_visitor_logs_in(writer, store, redis_conn, keys):
    """Nudged as an anonymous visitor, who logs in at checkout and buys: still a recovery."""
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=6.0)])
    assert owners(store.claim("email", 1, epoch(EMAIL_DUE))) == ["v:v1"]
    writer.write([sent("v1", EMAIL_DUE)])
    writer.write([rec("page_view", "v1", EMAIL_DUE + 60, user_id="u1")])
    assert redis_conn.exists(keys.nudge_state("v:v1")) == 0
    moved = state(redis_conn, keys, "u:u1")
    assert float(moved["email:sent_at"]) == epoch(EMAIL_DUE) and len(moved["claims"].split()) == 1
    writer.write([rec("purchase", "v1", EMAIL_DUE + 120, item_id="a", price=6.0)])
    counts = stats(redis_conn, keys)
    assert counts[f"{DAY0}|email|recovered"] == 1
    assert counts[f"{DAY0}|email|recovered_value"] == 6.0
    # The customer's cart (the moved one) was claimed already: not claimed again.
    assert store.claim("email", 1, epoch(EMAIL_DUE + 200)) == []


def test_login_and_purchase_in_one_batch_keep_the_attribution(writer, store, redis_conn, keys):
    writer.write([rec("add_to_cart", "v1", 0, item_id="a", price=6.0)])
    store.claim("push", 1, epoch(1800))
    writer.write(
        [
            sent("v1", 1800, channel="push"),
            rec("page_view", "v1", 1860, user_id="u1"),
            rec("purchase", "v1", 1900, item_id="a", price=6.0),
        ]
    )
    assert stats(redis_conn, keys)[f"{DAY0}|push|recovered"] == 1
    assert redis_conn.exists(keys.nudge_state("v:v1")) == 0


def test_a_customers_newer_nudge_is_kept_over_the_visitors_older_one(
    writer, store, redis_conn, keys
):
    writer.write([rec("add_to_cart", "v1", 0, item_id="a")])
    store.claim("push", 1, epoch(1800))
    writer.write([rec("add_to_cart", "laptop", 600, item_id="b", user_id="u1")])
    assert owners(store.claim("push", 1, epoch(2400))) == ["u:u1"]
    writer.write([rec("page_view", "v1", 2500, user_id="u1")])
    moved = state(redis_conn, keys, "u:u1")
    assert float(moved["push:cart"]) == epoch(600)
    assert len(moved["claims"].split()) == 2  # both sends count for the cap


def test_counts_sums_days_and_channels(store, redis_conn, keys):
    from datetime import date

    redis_conn.hset(
        keys.nudge_stats(),
        mapping={
            "2026-03-01|email|sent": 2,
            "2026-03-02|email|sent": 3,
            "2026-03-03|email|sent": 100,
            "2026-03-02|push|recovered_value": "1.25",
        },
    )
    counts = store.counts(date(2026, 3, 1), date(2026, 3, 2), ["email", "push"])
    assert counts["email"]["sent"] == 5 and counts["push"]["recovered_value"] == 1.25
    assert counts["push"]["sent"] == 0


def test_a_claimed_cart_leaves_its_channel_index_only(writer, store, redis_conn, keys):
    """Claims read the carts still waiting on a channel, not every cart ever claimed: a
    taken cart leaves that channel's index, stays in the others', and comes back to all of
    them when it changes."""
    writer.write([rec("add_to_cart", "v1", 0, item_id="a")])
    assert owners(store.claim("email", 5, epoch(EMAIL_DUE))) == ["v:v1"]
    assert index(redis_conn, keys, "email") == {}
    assert list(index(redis_conn, keys, "push")) == ["v:v1"]
    writer.write([rec("add_to_cart", "v1", 60, item_id="b")])
    assert list(index(redis_conn, keys, "email")) == ["v:v1"]


# --- onsite chances ----------------------------------------------------------------------------
def test_onsite_chances_are_recorded_once_per_cart_and_counted(store, redis_conn, keys):
    """Queued by the page, written in one batch; the report's ``counts`` writes what its
    process queued first. A cart counts once, whichever process (here store) writes it."""
    from datetime import date

    now = epoch(1800)
    assert store.record_chance("v:v1", "onsite", epoch(0), False, now) is True
    assert store.record_chance("v:v1", "onsite", epoch(0), False, now + 5) is False
    assert store.record_chance("v:v2", "onsite", epoch(0), True, now) is True
    other = NudgeStore(redis_conn, keys, store.settings)  # another worker, same carts
    assert other.record_chance("v:v1", "onsite", epoch(0), False, now + 9) is True
    counts = store.counts(date(2026, 3, 2), date(2026, 3, 2), ["onsite"])["onsite"]
    other.counts(date(2026, 3, 2), date(2026, 3, 2), ["onsite"])
    assert (counts["eligible"], counts["held_out"]) == (2, 1)
    assert stats(redis_conn, keys) == {
        f"{DAY0}|onsite|eligible": 2.0,
        f"{DAY0}|onsite|held_out": 1.0,
    }
    assert float(state(redis_conn, keys, "v:v2")["onsite:holdout_at"]) == now


def test_onsite_chances_load_the_script_when_redis_lost_it(store, redis_conn, keys):
    from datetime import date

    redis_conn.script_flush()  # as after a Redis restart
    store.record_chance("v:v1", "onsite", epoch(0), False, epoch(1800))
    counts = store.counts(date(2026, 3, 2), date(2026, 3, 2), ["onsite"])["onsite"]
    assert counts["eligible"] == 1
