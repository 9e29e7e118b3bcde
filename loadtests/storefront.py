"""The storefront the locust load test plays, apart from locust: journey statistics read
from a generated store, ids from a published model, and each visit planned as the pages a
storefront shows.

``JourneyStats.from_store(folder)`` reads a store written by ``recsvc generate`` (its
``events/`` log) and measures how its visitors behave: where visits come from, how many
bounce, how many products a visit views, how often a view opens the reviews, how many
visits search, cart, start a checkout and buy, how many visits are a returning
visitor's, how often a banner shown is clicked. ``plan_visit`` draws one visit from those
figures; ``loadtests/locustfile.py`` sends what a storefront sends for each page.

``ModelIds.from_folder(models/<version>)`` reads the item and user ids of a model version
(only those two arrays): visitors view the model's items (weighted by how often the store
viewed them) and returning visitors are the model's users, so known-visitor
recommendations are asked for visitors the model knows.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsvc.core.events import SOURCES
from recsvc.eventlog.reader import iter_records
from recsvc.settings import Settings

VISIT_GAP_S = Settings.visit_gap_seconds


@dataclass(frozen=True)
class JourneyStats:
    """How a store's visits go, as shares and means (see ``from_records``)."""

    visits: int
    source_shares: dict[str, float]
    bounce_share: float  # visits with no product view, search or cart
    views_per_visit: float  # product views in a visit that does not bounce (mean, >= 1)
    review_per_view: float  # review views per product view
    search_share: float  # visits that do not bounce and search
    cart_share: float  # visits that do not bounce and add to the cart
    checkout_share: float  # carting visits that start a checkout
    purchase_share: float  # checkouts that end in a purchase
    returning_share: float  # visits by a visitor seen in an earlier visit
    banner_click_share: float  # banner impressions followed by a click
    item_views: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_store(cls, store: Path, max_records: int = 1_000_000) -> JourneyStats:
        """The statistics of the first ``max_records`` events of ``store/events``."""
        records = iter_records(Path(store) / "events")
        return cls.from_records(r for _, r in zip(range(max_records), records, strict=False))

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> JourneyStats:
        """Visits are a visitor's events with no gap over the service's visit gap (30 min)."""
        by_visitor: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        for record in records:
            when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            by_visitor[record["visitor_id"]].append((when.timestamp(), record))
        counts: Counter = Counter()
        sources: Counter = Counter()
        item_views: Counter = Counter()
        for events in by_visitor.values():
            events.sort(key=lambda pair: pair[0])
            for number, visit in enumerate(_visits(events)):
                counts["returning"] += number > 0
                _count_visit(visit, counts, sources, item_views)
        engaged = max(counts["visits"] - counts["bounced"], 1)
        return cls(
            visits=counts["visits"],
            source_shares={s: sources[s] / max(sum(sources.values()), 1) for s in SOURCES},
            bounce_share=counts["bounced"] / max(counts["visits"], 1),
            views_per_visit=max(1.0, counts["product_view"] / engaged),
            review_per_view=counts["review_view"] / max(counts["product_view"], 1),
            search_share=counts["searched"] / engaged,
            cart_share=counts["carted"] / engaged,
            checkout_share=counts["checked_out"] / max(counts["carted"], 1),
            purchase_share=counts["bought"] / max(counts["checked_out"], 1),
            returning_share=counts["returning"] / max(counts["visits"], 1),
            banner_click_share=counts["banner_click"] / max(counts["banner_impression"], 1),
            item_views=dict(item_views),
        )

    def summary(self) -> str:
        top = sorted(self.source_shares.items(), key=lambda kv: -kv[1])[:3]
        return (
            f"{self.visits:,} visits: bounce {self.bounce_share:.0%}, "
            f"{self.views_per_visit:.1f} product views, reviews {self.review_per_view:.0%} "
            f"of views, search {self.search_share:.0%}, cart {self.cart_share:.0%}, "
            f"checkout {self.checkout_share:.0%} of carts, purchase {self.purchase_share:.0%} "
            f"of checkouts, returning {self.returning_share:.0%}; sources "
            + ", ".join(f"{s} {share:.0%}" for s, share in top)
        )


def _visits(events: list[tuple[float, dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    visit: list[dict[str, Any]] = []
    last = None
    for when, record in events:
        if last is not None and when - last > VISIT_GAP_S:
            yield visit
            visit = []
        visit.append(record)
        last = when
    if visit:
        yield visit


def _count_visit(visit, counts: Counter, sources: Counter, item_views: Counter) -> None:
    types = Counter(r["type"] for r in visit)
    counts["visits"] += 1
    source = next((r["source"] for r in visit if r.get("source")), "direct")
    sources[source] += 1
    if not (types["product_view"] or types["search"] or types["add_to_cart"]):
        counts["bounced"] += 1
        return
    for name in ("product_view", "review_view", "banner_impression", "banner_click"):
        counts[name] += types[name]
    counts["searched"] += types["search"] > 0
    counts["carted"] += types["add_to_cart"] > 0
    counts["checked_out"] += types["add_to_cart"] > 0 and types["checkout_start"] > 0
    counts["bought"] += types["add_to_cart"] > 0 and types["purchase"] > 0
    item_views.update(r["item_id"] for r in visit if r["type"] == "product_view")


@dataclass(frozen=True)
class ModelIds:
    """A model version's item ids and user ids (``models/<version>/*.npy``)."""

    version: str
    items: list[str]
    users: list[str]

    @classmethod
    def from_folder(cls, folder: Path) -> ModelIds:
        folder = Path(folder)
        arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in ("item_ids", "user_ids")
        }
        return cls(
            version=folder.name,
            items=[str(i) for i in arrays["item_ids"]],
            users=[str(u) for u in arrays["user_ids"]],
        )


@dataclass(frozen=True)
class Step:
    """One page of a visit: ``page`` is ``landing``, ``search``, ``product``, ``cart``,
    ``checkout`` or ``purchase``; ``item`` the product it is about."""

    page: str
    item: str | None = None
    reviews: bool = False  # on a product page: the visitor opens the reviews


def plan_visit(stats: JourneyStats, items: list[str], weights: list[float], rng) -> list[Step]:
    """One visit drawn from ``stats``: the landing page, then (unless it bounces) maybe a
    search, product pages (1 + geometric, mean ``views_per_visit``), maybe a cart, a
    checkout and a purchase. Items are drawn from ``items`` by ``weights``."""
    steps = [Step("landing")]
    if rng.random() < stats.bounce_share:
        return steps
    if rng.random() < stats.search_share:
        steps.append(Step("search"))
    views = 1
    more = 1 - 1 / stats.views_per_visit  # geometric: mean views_per_visit
    while rng.random() < more and views < 30:
        views += 1
    viewed = rng.choices(items, weights=weights, k=views)
    for item in viewed:
        steps.append(Step("product", item, reviews=rng.random() < stats.review_per_view))
    if rng.random() < stats.cart_share:
        steps.append(Step("cart", rng.choice(viewed)))
        if rng.random() < stats.checkout_share:
            steps.append(Step("checkout"))
            if rng.random() < stats.purchase_share:
                steps.append(Step("purchase"))
    return steps


def item_weights(ids: ModelIds, stats: JourneyStats) -> list[float]:
    """Each model item's weight: how often the store viewed it (1 for items it never did,
    so every item can be seen)."""
    return [float(stats.item_views.get(item, 0) + 1) for item in ids.items]


def draw_source(stats: JourneyStats, rng: random.Random) -> str:
    return rng.choices(list(stats.source_shares), weights=list(stats.source_shares.values()))[0]


def slo_breaches(entries: Iterable[Any], slo: dict[str, Any]) -> list[str]:
    """Every limit of ``slo`` the ``entries`` miss (locust's per-endpoint stats: ``name``,
    ``num_requests``, ``num_failures``, ``get_response_time_percentile(q)``). ``slo`` is
    ``loadtests/slo.toml`` read: ``[endpoint."<name>"]`` tables of ``p95_ms``, ``p99_ms``
    and ``error_rate``, each defaulting to ``[default]``'s. An endpoint with no request is
    a breach too: the run did not test it."""
    default = slo.get("default", {})
    by_name = {entry.name: entry for entry in entries}
    breaches = []
    for name, own in slo.get("endpoint", {}).items():
        limits = {**default, **own}
        entry = by_name.get(name)
        if entry is None or entry.num_requests == 0:
            breaches.append(f"{name}: no request")
            continue
        for quantile in (95, 99):
            limit = limits.get(f"p{quantile}_ms")
            value = entry.get_response_time_percentile(quantile / 100)
            if limit is not None and value > limit:
                breaches.append(f"{name}: p{quantile} {value:.0f} ms > {limit} ms")
        rate = entry.num_failures / entry.num_requests
        if "error_rate" in limits and rate > limits["error_rate"]:
            breaches.append(f"{name}: error rate {rate:.4f} > {limits['error_rate']}")
    return breaches
