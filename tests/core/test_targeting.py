"""The banner rule matrix: each targeting kind matching and not matching."""

from collections import Counter
from datetime import UTC, datetime

import pytest

from recsvc.core.profile import apply_event, new_visitor
from recsvc.core.targeting import RULE_KINDS, Visitor, match, visitor_from_profile
from recsvc.settings import Settings

NOW = datetime(2026, 3, 10, 19, 30, tzinfo=UTC).timestamp()  # a Tuesday, 19:30 UTC


def visitor(**changes) -> Visitor:
    base = dict(
        visitor_id="v1",
        stage="decision",
        segments=frozenset({"returning_visitor", "has_cart"}),
        source="google_ads",
        visitor_type="returning",
        cart_value=80.0,
        cart_items=2,
        categories=Counter({"shoes": 3, "bags": 1}),
        recent_items=("i1", "i2", "i3", "i4"),
        day="tue",
        hour=19,
        now=NOW,
    )
    return Visitor(**{**base, **changes})


# (rule kind, value that matches the visitor above, value that does not, visitor's value)
MATRIX = [
    ("stages", ["consideration", "decision"], ["awareness"], "decision"),
    ("segments", ["has_cart", "loyal"], ["loyal"], ["has_cart"]),
    ("sources", ["google_ads"], ["email", "social"], "google_ads"),
    ("visitor_type", "returning", "new", "returning"),
    ("has_cart", True, False, True),
    ("cart_value_min", 80.0, 80.01, 80.0),
    ("cart_value_max", 80.0, 79.99, 80.0),
    ("categories", ["bags", "hats"], ["hats"], ["bags"]),
    ("days", ["mon", "tue"], ["sat", "sun"], "tue"),
    ("hours", [19, 20], [9, 10], 19),
    ("start", NOW, NOW + 1, NOW),
    ("end", NOW + 1, NOW, NOW),
]


def test_matrix_covers_every_rule_kind():
    assert sorted(kind for kind, *_ in MATRIX) == sorted(RULE_KINDS)


@pytest.mark.parametrize(("kind", "hit", "miss", "shown"), MATRIX, ids=[m[0] for m in MATRIX])
def test_each_rule_kind_matches_and_misses(kind, hit, miss, shown):
    assert match({kind: hit}, visitor()) == {kind: shown}
    assert match({kind: miss}, visitor()) is None


def test_falsy_values_still_match():
    empty = visitor(cart_items=0, cart_value=0.0, hour=0)
    assert match({"has_cart": False, "hours": [0]}, empty) == {"has_cart": False, "hours": 0}


def test_all_rules_must_match():
    assert match({"stages": ["decision"], "sources": ["email"]}, visitor()) is None
    assert match({}, visitor()) == {}


def test_first_touch_source_is_what_sources_target():
    assert match({"sources": ["google_ads"]}, visitor(source=None)) is None


def test_visitor_from_profile_reads_the_documents():
    settings = Settings(marketing_timezone="Europe/Berlin")
    doc = new_visitor("v9", NOW - 60)
    categories = {"i1": "shoes", "i2": "shoes"}
    for item in ("i1", "i2"):
        record = {
            "type": "add_to_cart",
            "visitor_id": "v9",
            "item_id": item,
            "price": 10.0,
            "quantity": 2,
            "source": "email",
            "timestamp": "2026-03-10T19:29:00Z",
        }
        apply_event(doc, doc["shared"], record, settings)
    seen = visitor_from_profile(doc, None, NOW, settings, categories.get, "v9")
    assert seen.stage == "decision" and "has_cart" in seen.segments
    assert seen.cart_value == 40.0 and seen.cart_items == 2
    assert seen.source == "email" and seen.visitor_type == "new"
    assert seen.categories == Counter({"shoes": 2})
    assert (seen.day, seen.hour) == ("tue", 20)  # store-local: Berlin is UTC+1 in March


def test_a_visitor_never_seen_is_new_in_awareness():
    seen = visitor_from_profile(None, None, NOW, Settings(), {}.get, "ghost")
    assert seen.stage == "awareness" and seen.segments == {"new_visitor"}
    assert match({"visitor_type": "new", "has_cart": False}, seen) is not None


def test_a_logged_in_visitor_whose_customer_document_expired_has_an_empty_cart():
    doc = new_visitor("v9", NOW - 60)
    doc["user_id"] = "u9"
    del doc["shared"]  # moved to the customer document at login, which is gone
    seen = visitor_from_profile(doc, None, NOW, Settings(), {}.get, "v9")
    assert seen.cart_items == 0 and seen.cart_value == 0.0
