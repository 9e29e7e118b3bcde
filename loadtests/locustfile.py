"""Storefront traffic for SREs: ``locust -f loadtests/locustfile.py --host http://127.0.0.1:8000``.

Each simulated visitor lands from a traffic source, browses products, sometimes searches,
carts and checks out, and the storefront reads the visitor's profile; now and then an
analyst loads the funnel. At the end the run fails (exit code 1) when an SLO is missed:

- ``RECSVC_SLO_P99_MS`` (default 50): 99th percentile latency over all requests;
- ``RECSVC_SLO_FAILURE_RATIO`` (default 0.001): share of failed requests.

With API keys on, ``RECSVC_API_KEY`` is the public key, ``RECSVC_ANALYST_KEY`` the key the
funnel is read with, and ``RECSVC_IDENTITY_SECRETS`` the service's: each visitor gets an
identity token for its own visitor id, as the store's backend would put it in the page, to
read its profile with (README, "API keys, roles and identity").

Headless and bounded, e.g.::

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 50 -r 10 -t 1m --only-summary
"""

from __future__ import annotations

import logging
import os
import random
import uuid

from locust import FastHttpUser, between, events, task

from recsvc.identity.tokens import mint_token

API_KEY = os.environ.get("RECSVC_API_KEY", "")
ANALYST_KEY = os.environ.get("RECSVC_ANALYST_KEY", API_KEY)
IDENTITY_SECRET = os.environ.get("RECSVC_IDENTITY_SECRETS", "").split(",")[0]
SOURCES = ["google_ads", "facebook_ads", "organic_search", "email", "social", "direct", "referral"]
ITEMS = [f"i{n:05d}" for n in range(5000)]
SLO_P99_MS = float(os.environ.get("RECSVC_SLO_P99_MS", 50))
SLO_FAILURE_RATIO = float(os.environ.get("RECSVC_SLO_FAILURE_RATIO", 0.001))


class StorefrontVisitor(FastHttpUser):
    wait_time = between(0.05, 0.5)

    def on_start(self) -> None:
        self.visitor_id = f"lt-{uuid.uuid4().hex[:12]}"
        self.headers = {"X-API-Key": API_KEY} if API_KEY else {}
        self.proof = dict(self.headers)
        if IDENTITY_SECRET:
            token = mint_token(IDENTITY_SECRET, visitor_id=self.visitor_id, ttl_seconds=3600)
            self.proof["X-Identity-Token"] = token
        self.send([{"type": "page_view", "source": random.choice(SOURCES)}], "land")

    def send(self, events_: list[dict], name: str) -> None:
        for event in events_:
            event["visitor_id"] = self.visitor_id
        self.client.post(
            "/v1/events",
            json={"events": events_},
            headers=self.headers,
            name=f"POST /v1/events ({name})",
        )

    @task(10)
    def browse(self) -> None:
        items = random.sample(ITEMS, 3)
        self.send([{"type": "product_view", "item_id": item} for item in items], "browse")

    @task(3)
    def search(self) -> None:
        self.send([{"type": "search", "properties": {"query": "shoes"}}], "search")

    @task(2)
    def cart(self) -> None:
        item = random.choice(ITEMS)
        self.send([{"type": "add_to_cart", "item_id": item, "quantity": 1, "price": 19.9}], "cart")
        if random.random() < 0.3:
            self.send(
                [
                    {"type": "checkout_start"},
                    {"type": "purchase", "item_id": item, "quantity": 1, "price": 19.9},
                ],
                "purchase",
            )

    @task(5)
    def profile(self) -> None:
        self.client.get(
            f"/v1/visitors/{self.visitor_id}/profile",
            headers=self.proof,
            name="GET /v1/visitors/[id]/profile",
        )

    @task(1)
    def funnel(self) -> None:
        analyst = {"X-API-Key": ANALYST_KEY} if ANALYST_KEY else {}
        self.client.get("/v1/analytics/funnel", headers=analyst, name="GET funnel")


@events.quitting.add_listener
def check_slos(environment, **_kwargs) -> None:
    total = environment.stats.total
    p99 = total.get_response_time_percentile(0.99) or 0.0
    failed = []
    if total.fail_ratio > SLO_FAILURE_RATIO:
        failed.append(f"failure ratio {total.fail_ratio:.4f} > {SLO_FAILURE_RATIO}")
    if p99 > SLO_P99_MS:
        failed.append(f"p99 {p99:.0f} ms > {SLO_P99_MS:.0f} ms")
    if failed:
        logging.error("SLO missed: %s", "; ".join(failed))
        environment.process_exit_code = 1
    else:
        logging.info("SLOs met: p99 %.0f ms, failure ratio %.4f", p99, total.fail_ratio)
