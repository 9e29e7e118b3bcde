"""The rule backtest engine on hand-made logs whose answers are known."""

from __future__ import annotations

import json

import pytest
from backtest_support import DAY, HOUR, MINUTE, Log, banner

from recsvc.core.banners import assigned_variant
from recsvc.core.nudges import in_holdout
from recsvc.keys import KeySpace
from recsvc.marketing.backtest import Backtest
from recsvc.marketing.banner_sim import placement_for
from recsvc.marketing.nudge_sim import ENDINGS
from recsvc.marketing.replay import ProfileReplay, timeline
from recsvc.marketing.report import Report, to_markdown, to_table
from recsvc.settings import Settings
from recsvc.store.events import EventWriter

# No holdout, quiet hours or weekly cap in the way unless a test asks for them.
PLAIN = Settings(nudge_holdout_share=0.0, nudge_quiet_hours="", nudge_cap_per_week=100)
CATEGORIES = {"i1": "shoes", "i2": "shoes", "i3": "bags"}


def run(banners, log: Log, settings: Settings = PLAIN, **options) -> Report:
    return Backtest(banners, settings, CATEGORIES.get, **options).run(log.records)


def per_day(report: Report, banner_id: str) -> dict[str, int]:
    return report.to_dict()["banners"][banner_id]["reached_per_day"]


def per_stage(report: Report, banner_id: str) -> dict[str, int]:
    return report.to_dict()["banners"][banner_id]["reached_per_stage"]


# --- banners -------------------------------------------------------------------------------


def test_reach_counts_each_visitor_once_per_day_and_per_stage() -> None:
    log = Log()
    log.page("v1", 0)
    log.page("v1", 1 * MINUTE)  # same day, same stage: no new reach
    log.add("product_view", "v1", 2 * MINUTE, item_id="i1")
    log.add("product_view", "v1", 3 * MINUTE, item_id="i3")  # two views: consideration
    log.page("v1", 4 * MINUTE)
    log.page("v2", DAY)
    report = run([banner("b1")], log)

    stats = report.banners["b1"]
    assert (stats.opportunities, stats.eligible, stats.chosen) == (4, 4, 4)
    assert len(stats.reached_visitors) == 2
    assert per_day(report, "b1") == {"2026-03-10": 1, "2026-03-11": 1}
    assert per_stage(report, "b1") == {"awareness": 2, "consideration": 1}
    assert report.placements == {"home": {"opportunities": 4, "filled": 4}}


def test_pages_ask_for_the_placement_they_show() -> None:
    used = frozenset({"home", "product", "category"})
    page = {"type": "page_view", "properties": {"page": "category"}}
    assert placement_for(page, used) == "category"
    assert placement_for(page, frozenset({"home"})) == "home"  # unknown pages ask for home
    assert placement_for({"type": "page_view"}, used) == "home"
    assert placement_for({"type": "product_view"}, used) == "product"
    assert placement_for({"type": "add_to_cart"}, used) is None  # no banner uses "cart"
    assert placement_for({"type": "purchase"}, used) is None  # not a page that asks


def test_a_cap_of_one_loses_the_second_logged_impression_of_the_day() -> None:
    log = Log()
    log.page("v1", 0)
    log.add("banner_impression", "v1", 1, properties={"banner_id": "b1", "placement": "home"})
    log.page("v1", 5 * MINUTE)  # seen once today: capped
    log.page("v1", DAY)  # a new day
    report = run([banner("b1", frequency_cap_per_day=1)], log)

    stats = report.banners["b1"]
    assert (stats.eligible, stats.chosen, stats.lost_to_cap) == (3, 2, 1)


def test_simulated_impressions_count_the_banners_chosen_on_the_store_local_day() -> None:
    # 23:00 and 06:00 UTC are 19:00 and 02:00 in New York: one store day, two UTC days.
    log = Log()
    log.page("v1", 11 * HOUR)
    log.page("v1", 18 * HOUR)
    log.page("v1", 30 * HOUR)  # 18:00 UTC next day: 14:00 in New York, a new store day
    settings = PLAIN.replace(marketing_timezone="America/New_York")
    capped = [banner("b1", frequency_cap_per_day=1)]

    logged = run(capped, log, settings).banners["b1"]
    assert (logged.chosen, logged.lost_to_cap) == (3, 0)  # nothing logged as shown
    simulated = run(capped, log, settings, simulate_impressions=True)
    assert (simulated.banners["b1"].chosen, simulated.banners["b1"].lost_to_cap) == (2, 1)
    assert per_day(simulated, "b1") == {"2026-03-10": 1, "2026-03-11": 1}


def test_an_experiment_shows_each_visitor_the_assigned_variant_only() -> None:
    log = Log()
    visitors = [f"v{n}" for n in range(40)]
    for n, visitor in enumerate(visitors):
        log.page(visitor, n * MINUTE)
    banners = [
        banner("copy-a", experiment={"id": "copy", "variant": "a"}),
        banner("copy-b", experiment={"id": "copy", "variant": "b"}),
    ]
    report = run(banners, log, keep_decisions=True)

    on_a = {v for v in visitors if assigned_variant("copy", ["a", "b"], v) == "a"}
    assert 0 < len(on_a) < len(visitors)
    a, b = report.banners["copy-a"], report.banners["copy-b"]
    assert a.reached_visitors == on_a and b.reached_visitors == set(visitors) - on_a
    assert (a.eligible, a.chosen, a.lost_to_other_variant) == (40, len(on_a), 40 - len(on_a))
    assert (b.chosen, b.lost_to_other_variant) == (40 - len(on_a), len(on_a))
    overlap = report.banner_overlaps()
    assert overlap == [{"banners": ["copy-a", "copy-b"], "reached_both": 0, "eligible_both": 40}]
    assert [d.chosen for d in report.decisions][:3] == [
        ("copy-a",) if v in on_a else ("copy-b",) for v in visitors[:3]
    ]


def test_a_higher_priority_banner_outranks_and_both_reach_the_visitor() -> None:
    log = Log()
    log.page("v1", 0)  # no cart: only the fallback matches
    log.cart("v1", MINUTE)
    log.page("v1", 2 * MINUTE)  # cart: the cart banner wins
    log.page("v2", 3 * MINUTE)
    banners = [banner("cart", priority=10, rules={"has_cart": True}), banner("fallback")]
    report = run(banners, log, keep_decisions=True)

    cart, fallback = report.banners["cart"], report.banners["fallback"]
    assert (cart.eligible, cart.chosen) == (1, 1)
    assert (fallback.eligible, fallback.chosen, fallback.lost_to_higher_rank) == (3, 2, 1)
    assert report.banner_overlaps() == [
        {"banners": ["cart", "fallback"], "reached_both": 1, "eligible_both": 1}
    ]
    assert per_stage(report, "cart") == {"decision": 1}
    assert [(d.visitor_id, d.placement, d.chosen) for d in report.decisions] == [
        ("v1", "home", ("fallback",)),
        ("v1", "home", ("cart",)),
        ("v2", "home", ("fallback",)),
    ]


def test_category_rules_need_the_catalog() -> None:
    log = Log()
    log.add("product_view", "v1", 0, item_id="i1")
    log.add("product_view", "v2", MINUTE, item_id="i3")
    shoes = [banner("shoes", "product", rules={"categories": ["shoes"]})]
    assert run(shoes, log).banners["shoes"].reached_visitors == {"v1"}
    blind = Backtest(shoes, PLAIN).run(log.records)  # no catalog
    assert blind.banners["shoes"].eligible == 0 and blind.banners["shoes"].opportunities == 2


def test_a_login_on_another_device_sees_the_customers_cart() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v1", MINUTE, user_id="u1")  # stitches v1's cart into u1's
    log.page("v2", 2 * MINUTE, user_id="u1")  # another device of u1
    report = run([banner("cart", rules={"has_cart": True})], log)
    assert report.banners["cart"].reached_visitors == {"v1", "v2"}


def test_events_are_replayed_in_time_order_whatever_the_input_order() -> None:
    log = Log()
    log.page("v1", 0)
    log.cart("v1", MINUTE)
    log.page("v1", 2 * MINUTE)
    banners = [banner("cart", priority=1, rules={"has_cart": True}), banner("fallback")]
    forward = run(banners, log, keep_decisions=True)
    backward = Backtest(banners, PLAIN, keep_decisions=True).run(reversed(log.records))
    assert [d.chosen for d in backward.decisions] == [d.chosen for d in forward.decisions]
    assert [d.chosen for d in forward.decisions] == [("fallback",), ("cart",)]


def test_records_without_a_time_or_visitor_are_counted_not_replayed() -> None:
    log = Log()
    log.page("v1", 0)
    broken = [
        {**log.page("v2", MINUTE), "timestamp": "yesterday"},
        {"id": "x", "type": "search"},
        {**log.add("add_to_cart", "v3", MINUTE)},  # no item
    ]
    report = Backtest([banner("b1")], PLAIN).run([log.records[0], *broken])
    assert (report.events, report.unusable, report.banners["b1"].chosen) == (1, 3, 1)


def test_profiles_match_what_the_event_writer_stores(settings, redis_conn) -> None:
    """The in-memory replay builds the very documents the live writer keeps in Redis."""
    log = Log()
    log.add("product_view", "v1", 0, item_id="i1", source="google_ads")
    log.cart("v1", MINUTE)
    log.page("v1", 2 * MINUTE, user_id="u1")
    log.cart("v2", 3 * MINUTE, item="i2", user_id="u1")
    log.buy("v2", 4 * MINUTE, item="i2", properties={"order_id": "o1"})
    log.page("v3", 2 * DAY)
    log.add("banner_impression", "v3", 2 * DAY + 1, properties={"banner_id": "b1"})
    keys = KeySpace(settings.namespace)
    writer = EventWriter(redis_conn, keys, settings)
    for record in log.records:  # one at a time, as a storefront sends them
        writer.write([record])
    replay = ProfileReplay(settings)
    for _, record in timeline(log.records).events:
        replay.apply(record)

    for visitor_id, document in replay.visitors.items():
        assert json.loads(redis_conn.get(keys.visitor_profile(visitor_id))) == document
    assert json.loads(redis_conn.get(keys.customer("u1"))) == replay.customers["u1"]


# --- nudges --------------------------------------------------------------------------------


def assert_every_nudge_ends_once(report: Report) -> None:
    for stats in report.nudges.values():
        assert stats.scheduled == sum(getattr(stats, name) for name in ENDINGS), stats.channel


def test_an_abandoned_cart_is_nudged_on_every_channel_once_due() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v9", 3 * HOUR)  # time passes: every channel is due by then
    report = run([], log)

    for channel in ("onsite", "push", "email", "sms"):
        stats = report.nudges[channel]
        assert (stats.scheduled, stats.due, stats.sent) == (1, 1, 1), channel
        assert stats.reached_owners == {"v:v1"}
    data = report.to_dict()["nudges"]["email"]
    assert data["reached_per_day"] == {"2026-03-10": 1}
    assert data["reached_per_stage"] == {"decision": 1}
    overlaps = report.to_dict()["nudge_overlaps"]
    assert len(overlaps) == 6 and all(o["reached_both"] == 1 for o in overlaps)
    assert_every_nudge_ends_once(report)


def test_the_log_ends_before_later_channels_are_due() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v9", 45 * MINUTE)  # onsite and push due at 30 min; email and sms at 90
    report = run([], log)
    assert report.nudges["push"].sent == 1
    assert (report.nudges["email"].sent, report.nudges["email"].pending_at_end) == (0, 1)
    assert_every_nudge_ends_once(report)


def test_a_purchase_cancels_what_has_not_fired_and_recovers_what_has() -> None:
    log = Log()
    log.cart("v1", 0)
    log.buy("v1", 40 * MINUTE)  # after onsite and push (30 min), before email (90 min)
    log.page("v9", 5 * HOUR)
    report = run([], log)

    onsite, push, email = report.nudges["onsite"], report.nudges["push"], report.nudges["email"]
    assert (onsite.sent, onsite.recovered) == (1, 1)
    assert (push.sent, push.recovered) == (1, 1)
    assert (email.sent, email.cancelled_by_purchase, email.recovered) == (0, 1, 0)
    assert report.nudges["sms"].cancelled_by_purchase == 1
    assert_every_nudge_ends_once(report)


def test_a_purchase_after_the_attribution_window_is_not_a_recovery() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v9", HOUR)  # onsite sent at 30 min
    log.cart("v1", 8 * DAY, item="i2")
    log.buy("v1", 8 * DAY + MINUTE, item="i2")  # 8 days on: outside the 7-day window
    report = run([], log)
    onsite = report.nudges["onsite"]
    assert (onsite.sent, onsite.recovered, onsite.cancelled_by_purchase) == (1, 0, 1)


def test_a_new_cart_change_reschedules() -> None:
    log = Log()
    log.cart("v1", 0)
    log.cart("v1", 20 * MINUTE, item="i2")  # before anything was due
    log.page("v9", 3 * HOUR)
    report = run([], log)
    for stats in report.nudges.values():
        assert (stats.scheduled, stats.rescheduled, stats.sent) == (2, 1, 1), stats.channel
    assert_every_nudge_ends_once(report)


def test_emptying_the_cart_cancels_without_a_purchase() -> None:
    log = Log()
    log.cart("v1", 0)
    log.add("remove_from_cart", "v1", 10 * MINUTE, item_id="i1")
    log.page("v9", 3 * HOUR)
    report = run([], log)
    stats = report.nudges["push"]
    assert (stats.cancelled_cart_emptied, stats.cancelled_by_purchase, stats.sent) == (1, 0, 0)


def test_quiet_hours_delay_off_site_nudges_to_their_end() -> None:
    log = Log()
    log.cart("v1", 8 * HOUR + 45 * MINUTE)  # 20:45: due 21:15 (push) and 22:15 (email)
    log.page("v9", 22 * HOUR)  # 10:00 next day
    settings = PLAIN.replace(nudge_quiet_hours="21-8")
    report = run([], log, settings)

    onsite, push, email = report.nudges["onsite"], report.nudges["push"], report.nudges["email"]
    assert (onsite.quiet_delayed, onsite.sent) == (0, 1)  # the visitor is on the site
    assert (push.quiet_delayed, push.sent) == (1, 1)
    assert (email.quiet_delayed, email.sent) == (1, 1)
    data = report.to_dict()["nudges"]
    assert data["onsite"]["reached_per_day"] == {"2026-03-10": 1}
    assert data["push"]["reached_per_day"] == {"2026-03-11": 1}  # sent at 08:00


def test_a_nudge_waiting_out_quiet_hours_is_still_cancelled_by_a_purchase() -> None:
    log = Log()
    log.cart("v1", 8 * HOUR + 45 * MINUTE)
    log.buy("v1", 19 * HOUR)  # 07:00 next day, before quiet hours end
    log.page("v9", 22 * HOUR)
    report = run([], log, PLAIN.replace(nudge_quiet_hours="21-8"))
    push = report.nudges["push"]
    assert (push.quiet_delayed, push.sent, push.cancelled_by_purchase) == (1, 0, 1)


def test_the_weekly_cap_counts_off_site_sends_of_all_channels() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v9", 3 * HOUR)
    report = run([], log, PLAIN.replace(nudge_cap_per_week=1))
    push, email, sms = report.nudges["push"], report.nudges["email"], report.nudges["sms"]
    assert (push.sent, email.capped, sms.capped) == (1, 1, 1)  # push is due first
    assert report.nudges["onsite"].sent == 1  # on-site nudges are not capped
    assert_every_nudge_ends_once(report)


def test_held_out_owners_give_the_natural_recovery_baseline() -> None:
    share = 0.5
    held = next(f"v{n}" for n in range(100) if in_holdout(f"v:v{n}", "email", share))
    log = Log()
    log.cart(held, 0)
    log.buy(held, 2 * HOUR)  # after email was due (90 min): a natural recovery
    report = run([], log, PLAIN.replace(nudge_holdout_share=share))
    email = report.nudges["email"]
    assert (email.due, email.held_out, email.sent, email.holdout_recovered) == (1, 1, 0, 1)
    assert email.recovered == 0 and not email.reached_owners
    assert report.to_dict()["nudges"]["email"]["holdout_recovery_rate"] == 1.0


def test_a_login_brings_pending_nudges_and_open_windows_to_the_customer() -> None:
    log = Log()
    log.cart("v1", 0)
    log.page("v1", 40 * MINUTE)  # push sent to the anonymous visitor at 30 min
    log.page("v1", 50 * MINUTE, user_id="u1")  # logs in: the cart moves to u1
    log.buy("v2", 2 * DAY, user_id="u1")  # u1 buys on another device
    report = run([], log)
    push, email = report.nudges["push"], report.nudges["email"]
    assert push.reached_owners == {"v:v1"} and push.recovered == 1
    assert email.reached_owners == {"u:u1"} and email.recovered == 1  # sent at 90 min
    assert_every_nudge_ends_once(report)


# --- report --------------------------------------------------------------------------------


def test_the_report_renders_as_json_markdown_and_a_table() -> None:
    log = Log()
    log.page("v1", 0)
    log.cart("v1", MINUTE)
    log.page("v9", 3 * HOUR)
    report = run([banner("b1"), banner("b2", "cart")], log).to_dict()
    json.dumps(report)  # plain data
    assert report["input"]["events"] == 3 and report["input"]["visitors"] == 2
    table = to_table(report)
    assert "b1" in table and "email" in table
    markdown = to_markdown(report)
    assert markdown.startswith("# Rule backtest") and "| b2 | cart |" in markdown


@pytest.mark.parametrize("simulate", [False, True])
def test_eligible_splits_into_chosen_and_losses(simulate: bool) -> None:
    log = Log()
    for n in range(12):
        log.page(f"v{n % 3}", n * HOUR)
        log.cart(f"v{n % 3}", n * HOUR + MINUTE, item=f"i{n % 3 + 1}")
    banners = [
        banner("top", priority=5, frequency_cap_per_day=1, rules={"has_cart": True}),
        banner("x-a", experiment={"id": "x", "variant": "a"}, frequency_cap_per_day=2),
        banner("x-b", experiment={"id": "x", "variant": "b"}),
        banner("low", priority=-5),
    ]
    report = run(banners, log, simulate_impressions=simulate)
    for stats in report.banners.values():
        losses = stats.lost_to_cap + stats.lost_to_other_variant + stats.lost_to_higher_rank
        assert stats.eligible == stats.chosen + losses, stats.banner_id
    assert sum(s.chosen for s in report.banners.values()) == report.placements["home"]["filled"]
