from datetime import UTC, datetime

import pytest

from recsvc.core.events import format_timestamp
from recsvc.core.profile import (
    CartLimitExceeded,
    apply_event,
    banner_day,
    browser_profile,
    impressions_on,
    impressions_today,
    merge_shared,
    new_customer,
    new_visitor,
    shared_for,
    show_profile,
)
from recsvc.settings import Settings

S = Settings()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
MIN, DAY = 60.0, 86400.0


def rec(kind: str, at: float, **fields) -> dict:
    return {
        "id": f"{int(at)}{kind}",
        "type": kind,
        "visitor_id": "v1",
        "timestamp": format_timestamp(datetime.fromtimestamp(at, UTC)),
        **fields,
    }


class Journey:
    """Feeds events to one visitor and remembers each stage reached."""

    def __init__(self):
        self.visitor = new_visitor("v1", T0)
        self.shared = self.visitor["shared"]
        self.marks = []

    def send(self, kind, at, **fields):
        effect = apply_event(self.visitor, self.shared, rec(kind, at, **fields), S)
        self.marks.extend(effect.funnel_marks)
        return self.visitor["stage"]


def test_scripted_journey_moves_through_every_stage():
    j = Journey()
    assert j.send("page_view", T0, source="google_ads") == "awareness"
    assert j.send("product_view", T0 + MIN, item_id="a") == "awareness"
    assert j.send("product_view", T0 + 2 * MIN, item_id="b") == "consideration"
    assert j.send("add_to_cart", T0 + 3 * MIN, item_id="b", quantity=2, price=10.0) == "decision"
    assert j.send("purchase", T0 + 5 * MIN, item_id="b", quantity=2, price=10.0) == "retention"
    assert j.send("survey_response", T0 + 6 * MIN) == "retention"  # one order only
    assert j.send("purchase", T0 + 3 * DAY, item_id="c", price=5.0) == "advocacy"
    # 61 idle days later the customer comes back: at_risk is recorded at the lapse time,
    # then the new event makes them advocacy again.
    back = T0 + 64 * DAY
    assert j.send("page_view", back, source="email") == "advocacy"
    stages = [(h["stage"], h["from"]) for h in j.visitor["stage_history"]]
    assert stages == [
        ("awareness", None),
        ("consideration", "awareness"),
        ("decision", "consideration"),
        ("retention", "decision"),
        ("advocacy", "retention"),
        ("at_risk", "advocacy"),
        ("advocacy", "at_risk"),
    ]
    lapse = next(h for h in j.visitor["stage_history"] if h["stage"] == "at_risk")
    assert lapse["at"] == T0 + 3 * DAY + S.at_risk_days * DAY


def test_visits_touches_and_recent_items():
    j = Journey()
    j.send("page_view", T0, source="facebook_ads")
    j.send("product_view", T0 + 29 * MIN, item_id="a")  # same visit: gap under 30 min
    j.send("product_view", T0 + 60 * MIN, item_id="b")  # 31 min idle: a new visit
    j.send("page_view", T0 + 2 * DAY, source="email")
    j.send("product_view", T0 + 2 * DAY + MIN, item_id="a")
    v = j.visitor
    assert v["visits"] == 3
    assert v["first_touch"]["source"] == "facebook_ads"
    assert v["last_touch"]["source"] == "email"
    assert [entry[0] for entry in v["recent_items"]] == ["a", "b"]  # newest first, no repeats
    assert v["first_seen"] == T0 and v["last_seen"] == T0 + 2 * DAY + MIN


def test_out_of_order_event_does_not_start_a_visit_or_move_last_seen_back():
    j = Journey()
    j.send("page_view", T0 + DAY)
    j.send("product_view", T0, item_id="x")  # arrives late, happened earlier
    assert j.visitor["visits"] == 1
    assert j.visitor["first_seen"] == T0 and j.visitor["last_seen"] == T0 + DAY


def test_recent_items_are_capped():
    j = Journey()
    for n in range(S.recent_items_max + 10):
        j.send("product_view", T0 + n, item_id=f"i{n}")
    assert len(j.visitor["recent_items"]) == S.recent_items_max
    assert j.visitor["recent_items"][0][0] == f"i{S.recent_items_max + 9}"


def test_cart_add_remove_and_purchase():
    j = Journey()
    j.send("add_to_cart", T0, item_id="a", quantity=2, price=3.5)
    j.send("add_to_cart", T0 + 1, item_id="a")  # no quantity: one more
    j.send("add_to_cart", T0 + 2, item_id="b", price=10.0)
    j.send("remove_from_cart", T0 + 3, item_id="a", quantity=1)
    cart = j.shared["cart"]
    assert cart["items"] == {
        "a": {"quantity": 2, "price": 3.5},
        "b": {"quantity": 1, "price": 10.0},
    }
    j.send("remove_from_cart", T0 + 4, item_id="b")  # no quantity: the whole line
    assert set(cart["items"]) == {"a"}
    j.send("remove_from_cart", T0 + 5, item_id="zzz")  # not in cart: harmless
    assert cart["updated_at"] == T0 + 4  # and no change: the abandonment clock runs on
    j.send("purchase", T0 + 6, item_id="a", quantity=2, price=3.5)
    assert cart["items"] == {} and cart["updated_at"] == T0 + 6
    p = j.shared["purchases"]
    assert p["orders"] == 1 and p["value"] == 7.0 and p["items"][0][:3] == ["a", 2, 3.5]


def test_orders_group_lines_by_order_id_or_visit_gap():
    j = Journey()
    j.send("purchase", T0, item_id="a", price=1.0)
    j.send("purchase", T0 + 10, item_id="b", price=1.0)  # same order (same visit)
    assert j.shared["purchases"]["orders"] == 1
    j.send("purchase", T0 + 20, item_id="c", properties={"order_id": "o-2"})
    j.send("purchase", T0 + 30, item_id="d", properties={"order_id": "o-2"})
    assert j.shared["purchases"]["orders"] == 2
    j.send("purchase", T0 + DAY, item_id="e")
    assert j.shared["purchases"]["orders"] == 3


def test_funnel_marks_imply_earlier_steps_and_count_once():
    j = Journey()
    j.send("page_view", T0, source="email")
    j.send("add_to_cart", T0 + MIN, item_id="a")
    j.send("add_to_cart", T0 + 2 * MIN, item_id="b")
    steps = [(m.step, m.source, m.visitor_type) for m in j.marks]
    assert steps == [
        ("landing", "email", "new"),
        ("product_view", "email", "new"),
        ("review_view", "email", "new"),
        ("add_to_cart", "email", "new"),
    ]


def test_merge_shared_on_login():
    mine = new_visitor("a", T0)["shared"]
    theirs = new_visitor("b", T0)["shared"]
    mine["cart"]["items"] = {"x": {"quantity": 1, "price": 2.0}}
    theirs["cart"]["items"] = {
        "x": {"quantity": 2, "price": 2.0},
        "y": {"quantity": 1, "price": 1.0},
    }
    theirs["purchases"].update(
        orders=1, value=5.0, items=[["z", 1, 5.0, T0]], last_at=T0, last_order="o-1"
    )
    merge_shared(mine, theirs, limit=10)
    assert mine["cart"]["items"]["x"]["quantity"] == 3 and "y" in mine["cart"]["items"]
    assert mine["purchases"]["orders"] == 1 and mine["purchases"]["value"] == 5.0
    # The anonymous order's id comes along: its next line after login is the same order.
    assert mine["purchases"]["last_order"] == "o-1"


def test_show_profile_reads_at_risk_at_read_time_without_an_event():
    j = Journey()
    j.send("purchase", T0, item_id="a", price=20.0)
    shown = show_profile(j.visitor, j.shared, T0 + 100 * DAY, S)
    assert shown["stage"] == "at_risk"
    assert shown["stage_history"][-1]["stage"] == "at_risk"
    assert shown["purchases"]["count"] == 1 and shown["purchases"]["value"] == 20.0
    fresh = show_profile(j.visitor, j.shared, T0 + DAY, S)
    assert fresh["stage"] == "retention"
    assert fresh["first_seen"].endswith("Z")


def test_timed_segments_enter_when_time_made_them_and_leave_on_the_next_change():
    j = Journey()
    j.send("add_to_cart", T0, item_id="a", price=5.0)
    j.send("product_view", T0 + 60 * MIN, item_id="b")  # still abandoned: still a member
    j.send("add_to_cart", T0 + 70 * MIN, item_id="b")  # the cart changed: it left
    j.send("purchase", T0 + 71 * MIN, item_id="b", price=5.0)
    j.send("page_view", T0 + 41 * DAY)  # idle for 41 days: churn risk since day 30
    history = [
        (e["segment"], e["action"], e["at"])
        for e in j.visitor["segment_history"]
        if e["segment"] in ("cart_abandoner", "churn_risk")
    ]
    assert history == [
        ("cart_abandoner", "enter", T0 + 30 * MIN),
        ("cart_abandoner", "leave", T0 + 70 * MIN),
        ("churn_risk", "enter", T0 + 71 * MIN + 30 * DAY),
        ("churn_risk", "leave", T0 + 41 * DAY),
    ]


def test_banner_impressions_count_on_the_store_local_day():
    visitor = new_visitor("v1", T0)
    for at in (T0, T0 + MIN):
        impression = rec("banner_impression", at, properties={"banner_id": "b1"})
        apply_event(visitor, visitor["shared"], impression, S)
    today = banner_day(T0, S)
    assert impressions_on(visitor, "b1", today) == impressions_today(visitor, "b1", T0, S) == 2
    assert impressions_on(visitor, "b2", today) == 0
    assert impressions_today(visitor, "b1", T0 + DAY, S) == 0  # the next day starts afresh


# --- bounded documents ---------------------------------------------------------------------

CAPPED = Settings(cart_max_lines=3, cart_max_quantity=5, banner_impressions_max=2)


def test_a_cart_line_past_the_line_cap_is_refused_before_anything_changes():
    visitor = new_visitor("v1", T0)
    for n in range(3):
        apply_event(visitor, visitor["shared"], rec("add_to_cart", T0 + n, item_id=f"i{n}"), CAPPED)
    before = repr(visitor)
    fourth = rec("add_to_cart", T0 + 10, item_id="i3")
    with pytest.raises(CartLimitExceeded) as refused:
        apply_event(visitor, visitor["shared"], fourth, CAPPED)
    assert (refused.value.event_id, refused.value.field) == (fourth["id"], "item_id")
    assert repr(visitor) == before  # counts, visits, recent items: nothing moved
    # More of a line already there is not a new line.
    apply_event(visitor, visitor["shared"], rec("add_to_cart", T0 + 11, item_id="i0"), CAPPED)


def test_a_cart_line_past_the_quantity_cap_is_refused():
    visitor = new_visitor("v1", T0)
    add = rec("add_to_cart", T0, item_id="a", quantity=4)
    apply_event(visitor, visitor["shared"], add, CAPPED)
    with pytest.raises(CartLimitExceeded) as refused:
        apply_event(
            visitor, visitor["shared"], rec("add_to_cart", T0 + 1, item_id="a", quantity=2), CAPPED
        )
    assert refused.value.field == "quantity"
    apply_event(visitor, visitor["shared"], rec("add_to_cart", T0 + 2, item_id="a"), CAPPED)
    assert visitor["shared"]["cart"]["items"]["a"]["quantity"] == 5


def test_a_merged_cart_keeps_the_caps():
    mine = new_visitor("a", T0)["shared"]
    theirs = new_visitor("b", T0)["shared"]
    mine["cart"]["items"] = {"x": {"quantity": 4, "price": 1.0}, "y": {"quantity": 1, "price": 1.0}}
    theirs["cart"]["items"] = {
        "x": {"quantity": 4, "price": 1.0},
        "z": {"quantity": 1, "price": 1.0},
        "w": {"quantity": 1, "price": 1.0},
    }
    merge_shared(mine, theirs, 10, cart_max_lines=3, cart_max_quantity=5)
    assert {k: v["quantity"] for k, v in mine["cart"]["items"].items()} == {"x": 5, "y": 1, "z": 1}


def test_impressions_count_for_known_banners_only_and_at_most_the_cap():
    visitor = new_visitor("v1", T0)

    def impression(banner_id, at):
        event = rec("banner_impression", at, properties={"banner_id": banner_id})
        apply_event(visitor, visitor["shared"], event, CAPPED, known_banners={"b1", "b2", "b3"})

    impression("made-up", T0)
    assert "made-up" not in visitor.get("banner_impressions", {})
    impression("b1", T0)
    impression("b2", T0 + DAY)
    impression("b3", T0 + 2 * DAY)
    # Two at most: the banner seen longest ago (b1) is forgotten.
    assert set(visitor["banner_impressions"]) == {"b2", "b3"}


def test_a_customer_remembers_its_latest_devices_only():
    settings = Settings(customer_visitor_ids_max=3)
    customers = {"u1": new_customer("u1")}
    for n in range(5):
        visitor = new_visitor(f"v{n}", T0)
        shared = shared_for(visitor, "u1", customers, 10)
        apply_event(visitor, shared, rec("page_view", T0 + n, visitor_id=f"v{n}"), settings)
    assert customers["u1"]["visitor_ids"] == ["v2", "v3", "v4"]


def test_the_browser_view_drops_the_stores_labels():
    visitor = new_visitor("v1", T0)
    apply_event(visitor, visitor["shared"], rec("add_to_cart", T0, item_id="a"), S)
    full = show_profile(visitor, visitor["shared"], T0 + MIN, S)
    view = browser_profile(full, user_proven=False)
    assert view["cart"] == full["cart"] and view["view"] == "browser"
    assert not {"stage", "segments", "sources", "first_touch", "event_counts"} & set(view)
