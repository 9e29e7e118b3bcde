"""The storefront under load, with pass/fail SLOs: ``locust -f loadtests/locustfile.py``.

Each simulated shopper plays visits one after the other (``loadtests.storefront``): it
arrives from a traffic source, lands, maybe searches, views products (the product, its
similar items, sometimes its reviews), maybe carts (cart add-ons), checks out and buys;
on every page the storefront asks for recommendations, the page's banners and the
visitor's nudges, and sends the page's events. How often each happens is measured from a
generated store (``--store``, the folder ``recsvc generate`` or ``recsvc demo`` wrote);
items and returning visitors are the ids of a published model (``--model``, its
``models/<version>`` folder), so returning visitors get known-visitor recommendations
and new ones the session strategy. A visitor who leaves a cart comes back in a later
visit and sees the nudge when the service finds the cart abandoned
(``RECSVC_CART_ABANDON_SECONDS``); one ``NudgeSender`` claims push nudges, as an off-site
sender would. Events are sent with ``--api-key`` (a server or admin key: public-key
limits do not apply to a store's own backend).

At the end, every endpoint's p95, p99 and error rate are checked against ``--slo``
(``loadtests/slo.toml``); a breach, or an endpoint the run never asked, sets the exit
code to 1. Run it with ``--reset-stats``: locust starts each second's users in the same
instant, and without it the SLOs also judge that ramp, whose first pages arrive together
and queue (loadtests/README.md has the command and the figures).
"""

from __future__ import annotations

import logging
import random
import tomllib
import uuid
from collections import Counter
from pathlib import Path

from locust import FastHttpUser, between, events, task
from locust.runners import WorkerRunner

from loadtests.storefront import (
    JourneyStats,
    ModelIds,
    Step,
    draw_source,
    item_weights,
    plan_visit,
    slo_breaches,
)

log = logging.getLogger("storefront")
PAGE_PLACEMENT = {
    "landing": "home",
    "search": "home",
    "product": "product",
    "cart": "cart",
    "checkout": "checkout",
    "purchase": "checkout",
}
# Visitors who left a cart, to come back in a later visit, and what their carts hold
# (shared by the process's shoppers; the service holds the carts themselves).
ABANDONED: list[str] = []
ABANDONED_KEPT = 10_000
CARTS: dict[str, list[str]] = {}
# What the run's shoppers did and were shown, printed when locust quits.
JOURNEY: Counter = Counter()


class Shop:
    """What every shopper of this locust process reads once: statistics, ids, weights."""

    stats: JourneyStats
    ids: ModelIds
    weights: list[float]
    slo: dict

    @classmethod
    def load(cls, options) -> None:
        cls.stats = JourneyStats.from_store(Path(options.store))
        cls.ids = ModelIds.from_folder(Path(options.model))
        cls.weights = item_weights(cls.ids, cls.stats)
        cls.slo = tomllib.loads(Path(options.slo).read_text())
        log.info("store %s", cls.stats.summary())
        log.info(
            "model %s: %d items, %d users", cls.ids.version, len(cls.ids.items), len(cls.ids.users)
        )


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--store", required=True, help="generated store folder (its events/)")
    parser.add_argument("--model", required=True, help="published model folder (models/<v>)")
    parser.add_argument("--slo", default="loadtests/slo.toml", help="SLO limits (TOML)")
    parser.add_argument("--api-key", default="", env_var="RECSVC_API_KEY", help="X-API-Key")


@events.init.add_listener
def _load(environment, **_kwargs) -> None:
    if environment.parsed_options is not None:
        Shop.load(environment.parsed_options)


class Shopper(FastHttpUser):
    """One shopper after another: each visit a new or a returning visitor."""

    weight = 50
    wait_time = between(0.5, 2.0)  # between pages: a hurried shopper

    def on_start(self) -> None:
        key = self.environment.parsed_options.api_key
        self.headers = {"X-API-Key": key} if key else {}
        self.rng = random.Random()

    @task
    def visit(self) -> None:
        visitor, returning = self._visitor()
        JOURNEY["visits"] += 1
        JOURNEY["returning visits"] += returning
        JOURNEY["visits back to a left cart"] += visitor in ABANDONED
        cart = CARTS.setdefault(visitor, [])
        source = draw_source(Shop.stats, self.rng)
        steps = plan_visit(Shop.stats, Shop.ids.items, Shop.weights, self.rng)
        JOURNEY["bounces"] += len(steps) == 1
        for number, step in enumerate(steps):
            if number:
                self.wait()
            JOURNEY[f"{step.page} pages"] += 1
            self._page(visitor, step, source if number == 0 else None, cart)
        if not cart:
            CARTS.pop(visitor, None)
            if visitor in ABANDONED:
                ABANDONED.remove(visitor)
        elif visitor not in ABANDONED and len(ABANDONED) < ABANDONED_KEPT:
            ABANDONED.append(visitor)  # left with a cart: back in a later visit

    def _visitor(self) -> tuple[str, bool]:
        """A visitor who left a cart, a returning visitor the model knows, or a new one."""
        if ABANDONED and self.rng.random() < 0.3:
            return self.rng.choice(ABANDONED), True
        if self.rng.random() < Shop.stats.returning_share:
            return self.rng.choice(Shop.ids.users), True
        return f"lt-{uuid.uuid4().hex[:16]}", False

    # --- one page ---------------------------------------------------------------------
    def _page(self, visitor: str, step: Step, source: str | None, cart: list[str]) -> None:
        page_events = self._events(visitor, step, source, cart)
        self._send(page_events, step.page)
        placement = PAGE_PLACEMENT[step.page]
        self._get(f"/v1/visitors/{visitor}/recommendations?n=10", "recommendations")
        banners = self._get(f"/v1/visitors/{visitor}/banners?placement={placement}", "banners")
        nudges = self._get(f"/v1/visitors/{visitor}/nudges", "nudges")
        if step.page == "product":
            self._get(f"/v1/items/{step.item}", "item")
            self._get(f"/v1/items/{step.item}/similar?n=10", "similar items")
        if step.page == "cart":
            self.client.post(
                "/v1/recommendations/cart",
                json={"items": cart[-10:], "visitor_id": visitor, "n": 6},
                headers=self.headers,
                name="POST cart add-ons",
            )
        self._seen(visitor, banners, nudges)

    def _events(self, visitor: str, step: Step, source: str | None, cart: list[str]):
        out: list[dict] = []
        if step.page == "landing":
            out.append({"type": "page_view", "source": source})
        elif step.page == "search":
            out.append({"type": "search", "properties": {"query": "shoes"}})
        elif step.page == "product":
            out.append({"type": "product_view", "item_id": step.item})
            if step.reviews:
                out.append({"type": "review_view", "item_id": step.item})
        elif step.page == "cart":
            cart.append(step.item)
            out.append({"type": "add_to_cart", "item_id": step.item, "quantity": 1, "price": 20})
        elif step.page == "checkout":
            out.append({"type": "checkout_start"})
        elif step.page == "purchase":
            order = uuid.uuid4().hex[:12]
            out += [
                {
                    "type": "purchase",
                    "item_id": item,
                    "quantity": 1,
                    "price": 20,
                    "properties": {"order_id": order},
                }
                for item in dict.fromkeys(cart)
            ]
            cart.clear()
        for event in out:
            event["visitor_id"] = visitor
        return out

    def _seen(self, visitor: str, banners: dict | None, nudges: dict | None) -> None:
        """Impressions (and now and then a click) of what the page showed."""
        shown = []
        JOURNEY["pages with a banner"] += bool((banners or {}).get("banners"))
        JOURNEY["pages with a nudge"] += bool((nudges or {}).get("nudges"))
        for banner in (banners or {}).get("banners", [])[:1]:
            shown.append({"type": "banner_impression", "properties": {"banner_id": banner["id"]}})
            if self.rng.random() < Shop.stats.banner_click_share:
                shown.append({"type": "banner_click", "properties": {"banner_id": banner["id"]}})
        for _nudge in (nudges or {}).get("nudges", [])[:1]:
            shown.append({"type": "nudge_impression"})
        for event in shown:
            event["visitor_id"] = visitor
        if shown:
            self._send(shown, "impressions")

    # --- requests ---------------------------------------------------------------------
    def _send(self, batch: list[dict], page: str) -> None:
        if batch:
            self.client.post(
                "/v1/events", json={"events": batch}, headers=self.headers, name="POST events"
            )

    def _get(self, path: str, name: str) -> dict | None:
        with self.client.get(
            path, headers=self.headers, name=f"GET {name}", catch_response=True
        ) as response:
            if response.status_code == 404 and name == "item":
                response.success()  # a model item the catalog does not list
                return None
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return None
            try:
                return response.json()
            except ValueError:
                response.failure("not JSON")
                return None


class NudgeSender(FastHttpUser):
    """The off-site sender (push): claims due nudges every few seconds (sender key)."""

    fixed_count = 1
    wait_time = between(2, 4)

    @task
    def claim(self) -> None:
        key = self.environment.parsed_options.api_key
        response = self.client.post(
            "/v1/nudges/claim",
            json={"channel": "push", "limit": 50},
            headers={"X-API-Key": key} if key else {},
            name="POST nudge claims",
        )
        if response.status_code == 200:
            JOURNEY["nudges claimed by the sender"] += len(response.json().get("nudges", []))


# --- SLOs ---------------------------------------------------------------------------------
@events.quitting.add_listener
def _check_slos(environment, **_kwargs) -> None:
    # With --processes N the master holds everyone's figures; a worker holds none of them.
    if isinstance(environment.runner, WorkerRunner):
        return
    if environment.parsed_options is None or not hasattr(Shop, "slo"):
        return
    if not getattr(environment.parsed_options, "reset_stats", False):
        log.warning("without --reset-stats the figures include the ramp's bursts")
    breaches = slo_breaches(environment.stats.entries.values(), Shop.slo)
    log.info("journeys: %s", ", ".join(f"{k} {v}" for k, v in sorted(JOURNEY.items())))
    for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name):
        log.info(
            "%-28s %7d requests  p95 %5.0f ms  p99 %5.0f ms  errors %.4f",
            entry.name,
            entry.num_requests,
            entry.get_response_time_percentile(0.95),
            entry.get_response_time_percentile(0.99),
            entry.num_failures / max(entry.num_requests, 1),
        )
    if breaches:
        log.error("SLOs missed: %s", "; ".join(breaches))
        environment.process_exit_code = 1
    else:
        log.info("SLOs met (%s)", environment.parsed_options.slo)
