"""The backtest's nudges are the live service's: the same events ingested, then a sender
claims every due email at the log's end, and the carts it gets are the ones the backtest
says were sent; held out and cancelled carts agree too."""

from __future__ import annotations

from backtest_support import HOUR, MINUTE, T0, Log

from recsvc.marketing.backtest import Backtest
from recsvc.web.app import create_app

END = 6 * HOUR


def carts_log() -> Log:
    """40 carts: 10 bought before abandonment, 10 changed again, 5 emptied, 5 whose
    visitor logs in (the cart moves to the customer), 10 left alone."""
    log = Log()
    for k in range(40):
        log.cart(f"v{k}", at=k * MINUTE, item=f"i{k}")
    for k in range(10):
        log.buy(f"v{k}", at=k * MINUTE + 10 * MINUTE, item=f"i{k}")
    for k in range(10, 20):
        log.cart(f"v{k}", at=k * MINUTE + 40 * MINUTE, item="extra")
    for k in range(20, 25):
        log.add("remove_from_cart", f"v{k}", k * MINUTE + 20 * MINUTE, item_id=f"i{k}")
    for k in range(25, 30):
        log.page(f"v{k}", at=k * MINUTE + 50 * MINUTE, user_id=f"u{k}")
    log.page("clock", at=END)  # the backtest's time runs to the last event
    return log


def test_claims_and_holdout_agree_with_the_backtest(settings, clock):
    marketing = settings.replace(
        nudge_quiet_hours="", nudge_holdout_share=0.3, nudge_cap_per_week=10
    )
    log = carts_log()
    report = Backtest([], marketing).run(log.records)

    client = create_app(marketing, clock=clock).test_client()
    ordered = sorted(log.records, key=lambda r: (r["timestamp"], r["id"]))
    events = [{k: v for k, v in r.items() if k != "id"} for r in ordered]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    clock.value = T0.timestamp() + END
    claimed: set[str] = set()
    while batch := client.post("/v1/nudges/claim", json={"channel": "email"}).json["nudges"]:
        claimed |= {nudge["owner"] for nudge in batch}

    email = report.nudges["email"]
    assert claimed == email.reached_owners and len(claimed) >= 5
    never = {f"v:v{k}" for k in (*range(10), *range(20, 30))}  # bought, emptied, logged in
    assert claimed.isdisjoint(never)
    assert any(owner.startswith("u:") for owner in claimed)
    live = client.get("/v1/analytics/nudges", query_string={"channel": "email"}).json
    assert live["totals"]["held_out"] == email.held_out > 0
    assert email.cancelled_by_purchase == 10 and email.cancelled_cart_emptied == 5
