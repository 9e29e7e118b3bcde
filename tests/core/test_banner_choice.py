"""Choosing banners: placement, caps, experiments, priority, then affinity."""

from collections import Counter
from collections import Counter as Tally

from recsvc.core.banners import assigned_variant, choose, profile_affinity, promoted_sets
from recsvc.core.targeting import Visitor


def visitor(visitor_id="v1", **changes) -> Visitor:
    base = dict(
        visitor_id=visitor_id,
        stage="consideration",
        segments=frozenset({"new_visitor"}),
        source=None,
        visitor_type="new",
        cart_value=0.0,
        cart_items=0,
        categories=Counter({"shoes": 3, "bags": 1}),
        recent_items=("i1", "i2", "i3", "i4"),
        recent_categories=("shoes", "shoes", "shoes", "bags"),
    )
    return Visitor(**{**base, **changes})


def banner(banner_id, placement="home", priority=0, rules=None, **extra):
    return {
        "id": banner_id,
        "placement": placement,
        "priority": priority,
        "content": {"title": banner_id},
        "rules": rules or {},
        **extra,
    }


def no_impressions(_banner_id: str) -> int:
    return 0


def ids(decision):
    return [c.banner["id"] for c in decision.chosen]


def test_placement_and_rules_filter():
    banners = [
        banner("a", rules={"stages": ["decision"]}),
        banner("b", placement="cart"),
        banner("c"),
    ]
    decision = choose(banners, visitor(), "home", 5, no_impressions, lambda b: 0.0)
    assert ids(decision) == ["c"] and decision.eligible == ["c"]
    anywhere = choose(banners, visitor(), None, 5, no_impressions, lambda b: 0.0)
    assert ids(anywhere) == ["b", "c"]


def test_priority_first_then_affinity():
    banners = [
        banner("bags", promotes={"categories": ["bags"]}),
        banner("shoes", promotes={"categories": ["shoes"]}),
        banner("urgent", priority=5),
    ]
    me = visitor()
    decision = choose(banners, me, "home", 3, no_impressions, profile_affinity(me))
    assert ids(decision) == ["urgent", "shoes", "bags"]
    assert [c.affinity for c in decision.chosen] == [0.0, 0.75, 0.25]


def test_frequency_cap_holds_a_banner_back_at_the_cap():
    banners = [banner("capped", frequency_cap_per_day=2), banner("free")]
    seen = {"capped": 2}
    decision = choose(banners, visitor(), "home", 5, lambda b: seen.get(b, 0), lambda b: 0.0)
    assert ids(decision) == ["free"] and decision.capped == ["capped"]
    seen["capped"] = 1
    decision = choose(banners, visitor(), "home", 5, lambda b: seen.get(b, 0), lambda b: 0.0)
    assert ids(decision) == ["capped", "free"]


def test_experiment_shows_each_visitor_one_stable_variant():
    banners = [
        banner("copy-a", experiment={"id": "copy", "variant": "a"}),
        banner("copy-b", experiment={"id": "copy", "variant": "b"}),
    ]
    shown = Tally()
    for k in range(400):
        me = visitor(f"v{k}")
        decision = choose(banners, me, "home", 5, no_impressions, lambda b: 0.0)
        assert len(decision.chosen) == 1 and len(decision.other_variant) == 1
        assert decision.chosen[0].banner["experiment"]["variant"] == assigned_variant(
            "copy", ["b", "a"], f"v{k}"
        )
        shown[ids(decision)[0]] += 1
    assert 150 < shown["copy-a"] < 250  # about half each


def test_higher_ranked_banners_take_the_slots():
    banners = [banner("low"), banner("high", priority=1)]
    decision = choose(banners, visitor(), "home", 1, no_impressions, lambda b: 0.0)
    assert ids(decision) == ["high"] and decision.eligible == ["low", "high"]


def test_profile_affinity_counts_each_recent_item_once():
    me = visitor()
    both = banner("both", promotes={"items": ["i1"], "categories": ["shoes"]})
    assert profile_affinity(me)(both) == 0.75
    assert profile_affinity(visitor(recent_items=(), recent_categories=()))(both) == 0.0


def test_profile_affinity_from_promoted_sets_worked_out_beforehand():
    me = visitor()
    banners = [
        banner("both", promotes={"items": ["i1"], "categories": ["shoes"]}),
        banner("targeted", rules={"categories": ["bags"]}),
        banner("nothing"),
    ]
    held = {b["id"]: promoted_sets(b) for b in banners}
    assert (
        [profile_affinity(me, held)(b) for b in banners]
        == [profile_affinity(me)(b) for b in banners]
        == [0.75, 0.25, 0.0]
    )
