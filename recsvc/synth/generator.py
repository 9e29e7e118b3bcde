"""Simulate the synthetic store over time and write its files.

``generate(config)`` draws a world (``recsvc.synth.world``), lets every visitor live through
the log period and a held-out period after it, and writes under ``config.out``::

    items.csv                                   item_id,category,price,in_stock
    events/date=YYYY-MM-DD/part-synthetic.jsonl one event record per line (or .jsonl.gz)
    ground_truth.jsonl                          what each visitor bought in the held-out days
    world.json                                  arguments, parameters and counts

Event files hold exactly the records the exporter writes (``recsvc.core.events``), sorted by
timestamp within each day; the held-out period is never in them. Everything is a function of
the arguments: the same arguments give the same bytes.

How ``--visitors`` maps to events: a visitor id makes about two visits over 30 days (many
bounce and never return, a few come back weekly) and about five events per visit, so roughly
``10 × visitors`` events for 30 days (7 for 7 days, 13 for 90); ``world.json`` has the exact
counts. For a million events over 30 days, ask for about 100,000 visitors.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import math
import random
import time
from array import array
from bisect import bisect
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from recsvc.core.events import CHANNELS, EVENT_TYPES, SOURCES, format_timestamp
from recsvc.settings import Settings
from recsvc.synth.world import HOURLY_TRAFFIC, World, WorldParams, build_world

PART_NAME = "synthetic"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Visits are separated by more than the service's own visit boundary (30 idle minutes).
VISIT_GAP_MS = Settings.visit_gap_seconds * 1000

# Compact JSON, like the stream entry the exporter copies into the log.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# Event type, source and channel codes, as stored in the event buffer.
_TYPE_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}
PAGE_VIEW = _TYPE_CODE["page_view"]
PRODUCT_VIEW = _TYPE_CODE["product_view"]
REVIEW_VIEW = _TYPE_CODE["review_view"]
SEARCH = _TYPE_CODE["search"]
ADD_TO_CART = _TYPE_CODE["add_to_cart"]
REMOVE_FROM_CART = _TYPE_CODE["remove_from_cart"]
CHECKOUT_START = _TYPE_CODE["checkout_start"]
PURCHASE = _TYPE_CODE["purchase"]
EMAIL_OPEN = _TYPE_CODE["email_open"]
SURVEY_RESPONSE = _TYPE_CODE["survey_response"]
BANNER_IMPRESSION = _TYPE_CODE["banner_impression"]
BANNER_CLICK = _TYPE_CODE["banner_click"]
SRC_EMAIL = SOURCES.index("email")
AD_SOURCES = frozenset({SOURCES.index("google_ads"), SOURCES.index("facebook_ads")})
CH_WEB, CH_APP, CH_EMAIL = (CHANNELS.index(name) for name in ("web", "app", "email"))
PAGES = ("home", "category", "product")
NPS_WEIGHTS = (1, 1, 1, 1, 2, 3, 4, 8, 12, 10, 9)  # scores 0–10, most customers are content


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate: ``visitors`` visitor ids, ``items`` items, ``days`` days of logs
    ending on ``end_date`` (a UTC date, inclusive), then ``holdout_days`` held out."""

    visitors: int
    items: int
    days: int
    seed: int
    out: Path
    end_date: date
    gzip: bool = False
    holdout_days: int = 7
    params: WorldParams = field(default_factory=WorldParams)

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    @property
    def log_start_ms(self) -> int:
        return _day_ms(self.start_date)

    @property
    def log_end_ms(self) -> int:
        """First millisecond after the log period: the start of the held-out period."""
        return _day_ms(self.end_date) + DAY_MS

    @property
    def horizon_ms(self) -> int:
        return self.log_end_ms + self.holdout_days * DAY_MS


@dataclass(frozen=True)
class GenerateResult:
    """What ``generate`` wrote: the folder, the counts of ``world.json`` and the time."""

    out: Path
    counts: dict[str, Any]
    elapsed_s: float

    @property
    def events(self) -> int:
        return int(self.counts["events"])

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def generate(config: GenerateConfig, progress: bool = False) -> GenerateResult:
    """Simulate the store described by ``config`` and write its files under ``config.out``.

    Earlier ``part-synthetic`` files under ``out/events`` are replaced (no other file there
    is touched), so regenerating into a folder never mixes two runs. With ``progress``, tqdm
    bars go to stderr. Raises ValueError on non-positive sizes.
    """
    if min(config.visitors, config.items, config.days) < 1 or config.holdout_days < 1:
        raise ValueError("visitors, items, days and holdout_days must be positive")
    started = time.perf_counter()
    world_seed, sim_seed, id_seed = np.random.SeedSequence(config.seed).spawn(3)
    world_rng = np.random.default_rng(world_seed)
    world = build_world(config.visitors, config.items, world_rng, config.params)
    simulator = Simulator(world, config, sim_seed.generate_state(4).tolist())
    simulator.run(_arrivals(world, config, world_rng), progress=progress)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_items(out / "items.csv", world)
    event_counts = write_events(
        out / "events", simulator.buffer, world, config, np.random.default_rng(id_seed), progress
    )
    truth_visitors = write_ground_truth(out / "ground_truth.jsonl", simulator.truth, world)
    counts = _counts(world, simulator, event_counts, truth_visitors)
    write_world(out / "world.json", config, world, counts)
    return GenerateResult(out=out, counts=counts, elapsed_s=time.perf_counter() - started)


# --- the simulation --------------------------------------------------------------------


class EventBuffer:
    """Simulated events, column by column in typed arrays (30 bytes an event, plus a
    reference to a properties object that is shared where it can be), so runs of tens of
    millions of events fit in memory. ``-1`` (0 for ``quantity``) means the field is
    absent."""

    def __init__(self) -> None:
        self.ms = array("q")
        self.kind = array("b")
        self.visitor = array("i")
        self.item = array("i")
        self.quantity = array("h")
        self.session = array("i")
        self.source = array("b")
        self.channel = array("b")
        self.logged_in = array("b")
        self.props = array("i")
        self.properties: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.ms)

    COLUMNS = (
        "ms", "kind", "visitor", "item", "quantity", "session", "source", "channel",
        "logged_in", "props",
    )  # fmt: skip

    def columns(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays (copies, dtypes as the typed arrays)."""
        return {name: np.array(getattr(self, name)) for name in self.COLUMNS}


class _Visitor:
    """The visitor being simulated: their traits (from the population) and their state."""

    __slots__ = (
        "app",
        "bought",
        "cart",
        "cart_in_log",
        "first_source",
        "gap_days",
        "index",
        "logged_in",
        "propensity",
        "purchased",
        "recent",
        "registered",
        "return_prob",
        "taste_cats",
        "taste_cum",
        "taste_set",
        "tier",
    )

    def __init__(self, world: World, index: int) -> None:
        population = world.population
        weights = population.taste_weights[index]
        self.index = index
        self.taste_cats = population.taste_categories[index].tolist()
        self.taste_cum = np.cumsum(weights).tolist()
        self.taste_set = {c for c, w in zip(self.taste_cats, weights.tolist(), strict=True) if w}
        self.tier = int(population.tier[index])
        self.registered = population.user_ids[index] is not None
        self.app = bool(population.app[index])
        self.first_source = int(population.first_source[index])
        self.propensity = float(population.propensity[index])
        self.return_prob = float(population.return_prob[index])
        self.gap_days = float(population.gap_days[index])
        self.logged_in = False
        self.cart: dict[int, int] = {}  # item -> quantity, in the order added
        self.cart_in_log = False  # the current cart was started inside the log period
        self.recent: list[int] = []
        self.bought: list[int] = []
        self.purchased = False


class Simulator:
    """Lets each visitor of a world live from their first visit to the end of the held-out
    period, appending what they do to ``buffer`` (log period) or ``truth`` (purchases in the
    held-out period), and counting visits, carts and orders of the log period."""

    def __init__(self, world: World, config: GenerateConfig, seed: list[int]) -> None:
        self.world = world
        self.p = world.params
        self.catalog = world.catalog
        self.log_start_ms = config.log_start_ms
        self.log_end_ms = config.log_end_ms
        self.horizon_ms = config.horizon_ms
        # Scalar draws dominate the funnel: Python's Mersenne Twister is the fastest there
        # and its random() sequence is stable across Python versions.
        self.rand = random.Random(seed[0] << 96 | seed[1] << 64 | seed[2] << 32 | seed[3])
        self.buffer = EventBuffer()
        self.truth: dict[int, list[int]] = {}
        self.visits = self.carts = self.abandoned_carts = self.orders = 0
        self._sessions = 0
        self._in_stock = self.catalog.in_stock.tolist()
        self._item_category = self.catalog.item_category.tolist()
        self._price = self.catalog.price.tolist()
        self._category_cum = np.cumsum(self.catalog.category_share).tolist()
        self._hour_cum = np.cumsum(HOURLY_TRAFFIC).tolist()
        self._conversion = list(self.p.source_conversion)
        self._return_source_cum = np.cumsum(self.p.return_source_shares).tolist()
        self._banner_click = (self.p.banner_click_other, self.p.banner_click_liked)
        self._quantity_cum = np.cumsum(self.p.quantity_shares).tolist()
        self._nps_cum = np.cumsum(NPS_WEIGHTS).tolist()
        # Properties objects are shared by the events that carry the same ones (never
        # mutated): a million page views need three dicts, not a million.
        self._page_props = [{"page": page} for page in PAGES]
        self._query_props = [[{"query": q} for q in qs] for qs in self.catalog.queries]
        self._banner_props = [
            {"banner_id": b, "placement": "home"} for b in self.catalog.banner_ids
        ]
        self._newsletters: dict[int, dict[str, Any]] = {}
        # Current visit context, read by _emit.
        self._v: _Visitor
        self._session = self._source = self._channel = -1

    def run(self, arrivals: np.ndarray, progress: bool = False) -> None:
        """Simulate every visitor; ``arrivals[k]`` is visitor k's first visit (epoch ms)."""
        population = self.world.population
        for k in tqdm(
            range(population.n_visitors), desc="visitors", unit="visitor", disable=not progress
        ):
            self._v = _Visitor(self.world, k)
            self._live(int(arrivals[k]))
            if self._v.cart and self._v.cart_in_log:
                self.abandoned_carts += 1

    # --- a visitor's life ----------------------------------------------------------------

    def _live(self, start: int) -> None:
        """Visits from ``start`` until the visitor does not come back or time runs out."""
        rand, p, v = self.rand, self.p, self._v
        source, t = v.first_source, start
        while t < self.horizon_ms:
            if t < self.log_end_ms:
                self.visits += 1
            end = self._visit(t, source)
            stay = v.return_prob + (p.return_after_purchase_boost if v.purchased else 0.0)
            if rand.random() >= min(stay, 0.95):
                return
            t = self._next_visit(end, v.gap_days)
            source = self._return_source(end, t)

    def _next_visit(self, end: int, gap_days: float) -> int:
        rand = self.rand
        day = (end + int(rand.expovariate(1.0 / gap_days) * DAY_MS)) // DAY_MS
        hour = bisect(self._hour_cum, rand.random() * self._hour_cum[-1])
        t = day * DAY_MS + hour * HOUR_MS + rand.randrange(HOUR_MS)
        # Never closer than the visit boundary: the service would merge the two visits.
        return max(t, end + VISIT_GAP_MS + rand.randrange(60_000, 3 * HOUR_MS))

    def _return_source(self, end: int, t: int) -> int:
        """Where the visit at ``t`` after a visit that ended at ``end`` comes from; a
        newsletter click opens the email first."""
        rand, p, v = self.rand, self.p, self._v
        if v.registered:
            if rand.random() < p.email_visit_share:
                opened = t - rand.randrange(30_000, 300_000)
                self._emit_email(opened, EMAIL_OPEN, self._newsletter(opened))
                return SRC_EMAIL
            if rand.random() < p.newsletter_open_share:
                # Opened between the two visits without clicking through.
                opened = rand.randrange(end + 60_000, max(end + 60_001, t - 60_000))
                self._emit_email(opened, EMAIL_OPEN, self._newsletter(opened))
        if rand.random() < p.return_first_source_share:
            return v.first_source
        return bisect(self._return_source_cum, rand.random() * self._return_source_cum[-1])

    def _newsletter(self, t: int) -> dict[str, Any]:
        """The properties of the weekly newsletter sent before ``t``."""
        week = (t - self.log_start_ms) // (7 * DAY_MS)
        if week not in self._newsletters:
            self._newsletters[week] = {"campaign": f"newsletter-{week:03d}"}
        return self._newsletters[week]

    # --- one visit -----------------------------------------------------------------------

    def _visit(self, t: int, source: int) -> int:
        """Simulate one visit from ``t``; return the time of its last web event."""
        rand, p, v = self.rand, self.p, self._v
        self._session, self._source = self._sessions, source
        self._channel = CH_APP if v.app else CH_WEB
        self._sessions += 1
        v.logged_in = v.registered and (v.app or rand.random() < p.logged_in_share)
        shares = p.ad_landing_shares if source in AD_SOURCES else p.landing_shares
        u = rand.random()
        landing = 0 if u < shares[0] else 1 if u < shares[0] + shares[1] else 2
        self._emit(t, PAGE_VIEW, props=self._page_props[landing])
        focus = -1
        if landing == 0 and rand.random() < p.banner_impression_share:
            t, focus = self._banner(t)
        # A banner click or a cart waiting keeps the visitor on the site.
        if focus < 0 and not v.cart and rand.random() < p.bounce_share:
            if landing == 2:  # a product landing page is a product view
                t += 500
                self._emit(t, PRODUCT_VIEW, self._pick_item(-1)[0])
            return t
        conversion = self._conversion[source] * v.propensity
        if rand.random() < p.search_share:
            t += self._dwell(p.dwell_landing)
            focus = focus if focus >= 0 else self._taste_category()
            self._emit(t, SEARCH, props=rand.choice(self._query_props[focus]))
        t = self._browse(t, focus, conversion)
        if v.cart and rand.random() < p.remove_share:
            t += self._dwell(p.dwell_cart)
            self._remove_from_cart(t)
        if v.cart and rand.random() < min(0.95, p.checkout_share * conversion):
            t = self._checkout(t)
        return t

    def _banner(self, t: int) -> tuple[int, int]:
        """A banner on the home page, maybe clicked; returns the time and the category the
        click leads to (-1 without a click)."""
        rand, catalog = self.rand, self.catalog
        k = rand.randrange(len(catalog.banner_ids))
        t += rand.randrange(100, 1500)
        self._emit(t, BANNER_IMPRESSION, props=self._banner_props[k])
        category = catalog.banner_category[k]
        if rand.random() >= self._banner_click[category in self._v.taste_set]:
            return t, -1
        t += self._dwell(self.p.dwell_landing)
        self._emit(t, BANNER_CLICK, props=self._banner_props[k])
        return t, category

    def _browse(self, t: int, focus: int, conversion: float) -> int:
        """Product views (some with reviews, some put in the cart); returns the time."""
        rand, p, v = self.rand, self.p, self._v
        views = 1 + int(math.log(1.0 - rand.random()) / math.log(1.0 - 1.0 / p.views_mean))
        for n in range(min(views, 40)):
            t += self._dwell(p.dwell_product if n else p.dwell_landing)
            # What the visitor came for (search, banner) decides the first two views.
            item, liked = self._pick_item(focus if n < 2 else -1)
            self._emit(t, PRODUCT_VIEW, item)
            v.recent.append(item)
            if rand.random() < p.review_share:
                t += self._dwell(p.dwell_product)
                self._emit(t, REVIEW_VIEW, item)
            rate = p.cart_share * conversion * (1.0 if liked else p.explore_cart_factor)
            if self._in_stock[item] and rand.random() < rate:
                t += self._dwell(p.dwell_review)
                self._add_to_cart(t, item)
        del v.recent[:-20]
        return t

    def _pick_item(self, focus: int) -> tuple[int, bool]:
        """An item to view and whether it is in one of the visitor's categories: a repeat
        of something bought or seen, else by taste (or ``focus``), tier and popularity."""
        rand, p, v = self.rand, self.p, self._v
        u = rand.random()
        if v.bought and u < p.rebuy_view_share:
            return rand.choice(v.bought), True
        if v.recent and u < p.rebuy_view_share + p.review_recent_share:
            item = rand.choice(v.recent)
            return item, self._item_category[item] in v.taste_set
        category = focus if focus >= 0 else self._taste_category()
        cumweights = self.catalog.tier_cumweights[v.tier][category]
        index = bisect(cumweights, rand.random() * cumweights[-1])
        item = self.catalog.category_items[category][min(index, len(cumweights) - 1)]
        return item, category in v.taste_set

    def _taste_category(self) -> int:
        """A category by the visitor's taste, or by traffic share when exploring."""
        rand, v = self.rand, self._v
        if rand.random() < self.p.explore_share:
            return bisect(self._category_cum, rand.random() * self._category_cum[-1])
        slot = bisect(v.taste_cum, rand.random() * v.taste_cum[-1])
        return v.taste_cats[min(slot, 2)]

    # --- the cart ------------------------------------------------------------------------

    def _add_to_cart(self, t: int, item: int) -> None:
        v = self._v
        quantity = 1 + bisect(self._quantity_cum, self.rand.random())
        if not v.cart:
            v.cart_in_log = t < self.log_end_ms
            self.carts += v.cart_in_log
        v.cart[item] = v.cart.get(item, 0) + quantity
        self._emit(t, ADD_TO_CART, item, quantity)

    def _remove_from_cart(self, t: int) -> None:
        v = self._v
        item = self.rand.choice(list(v.cart))
        self._emit(t, REMOVE_FROM_CART, item, v.cart.pop(item))
        if not v.cart and v.cart_in_log:
            self.abandoned_carts += 1

    def _checkout(self, t: int) -> int:
        rand, p, v = self.rand, self.p, self._v
        t += self._dwell(p.dwell_cart)
        # Registered customers log in to check out; guests stay anonymous.
        v.logged_in = v.registered
        value = sum(self._price[item] * q for item, q in v.cart.items())
        self._emit(t, CHECKOUT_START, props={"items": len(v.cart), "value": round(value, 2)})
        if rand.random() >= p.purchase_share:
            return t
        t += self._dwell(p.dwell_checkout)
        in_log = t < self.log_end_ms
        order = {"order_id": f"o{self._session:08d}"}
        for item, quantity in v.cart.items():
            self._emit(t, PURCHASE, item, quantity, props=order)
            t += 1
            v.bought.append(item)
        if v.cart_in_log and not in_log:
            self.abandoned_carts += 1  # not bought within the log period
        self.orders += in_log
        v.cart = {}
        v.purchased = True
        self._after_purchase(t, order)
        return t

    def _after_purchase(self, t: int, order: dict[str, str]) -> None:
        rand, p = self.rand, self.p
        if rand.random() >= p.confirmation_open_share:
            return
        t += rand.randrange(60_000, 30 * 60_000)
        self._emit_email(t, EMAIL_OPEN, {"campaign": "order_confirmation", **order})
        if rand.random() < p.survey_share:
            t += rand.randrange(60_000, 10 * 60_000)
            score = bisect(self._nps_cum, rand.random() * self._nps_cum[-1])
            self._emit_email(t, SURVEY_RESPONSE, {"survey": "post_purchase", "score": score})

    # --- emitting ------------------------------------------------------------------------

    def _dwell(self, median_s: float) -> int:
        """Milliseconds on a page: lognormal around the median, capped well below the visit
        boundary, at least 1 so that a visitor's events keep their order."""
        seconds = median_s * self.rand.lognormvariate(0.0, 0.8)
        return 1 + int(min(seconds, self.p.dwell_cap) * 1000)

    def _emit_email(self, t: int, kind: int, props: dict[str, Any]) -> None:
        """An email event: no web session; the email knows the customer if registered."""
        context = self._session, self._source, self._channel, self._v.logged_in
        self._session, self._source, self._channel = -1, SRC_EMAIL, CH_EMAIL
        self._v.logged_in = self._v.registered
        self._emit(t, kind, props=props)
        self._session, self._source, self._channel, self._v.logged_in = context

    def _emit(
        self,
        t: int,
        kind: int,
        item: int = -1,
        quantity: int = 0,
        props: dict[str, Any] | None = None,
    ) -> None:
        if t >= self.log_end_ms:
            # The held-out period is not logged; its purchases are the ground truth.
            if kind == PURCHASE:
                self.truth.setdefault(self._v.index, []).append(item)
            return
        buffer = self.buffer
        buffer.ms.append(t)
        buffer.kind.append(kind)
        buffer.visitor.append(self._v.index)
        buffer.item.append(item)
        buffer.quantity.append(quantity)
        buffer.session.append(self._session)
        buffer.source.append(self._source)
        buffer.channel.append(self._channel)
        buffer.logged_in.append(self._v.logged_in)
        if props is None:
            buffer.props.append(-1)
        else:
            buffer.props.append(len(buffer.properties))
            buffer.properties.append(props)


def _arrivals(world: World, config: GenerateConfig, rng: np.random.Generator) -> np.ndarray:
    """First visit of each visitor (epoch ms): a day of the log period, an hour by the
    store's daily traffic curve. Nobody new arrives in the held-out period, so every
    visitor in the ground truth has a history to learn from."""
    n = world.population.n_visitors
    hourly = np.asarray(HOURLY_TRAFFIC) / sum(HOURLY_TRAFFIC)
    day = rng.integers(0, config.days, size=n)
    hour = rng.choice(24, size=n, p=hourly)
    return config.log_start_ms + day * DAY_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS, size=n)


# --- writing ---------------------------------------------------------------------------


def write_items(path: Path, world: World) -> None:
    """``item_id,category,price,in_stock`` with prices to the cent and ``true``/``false``."""
    catalog = world.catalog
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("item_id", "category", "price", "in_stock"))
        for item_id, category, price, in_stock in zip(
            catalog.item_ids,
            catalog.item_category.tolist(),
            catalog.price.tolist(),
            catalog.in_stock.tolist(),
            strict=True,
        ):
            stock = "true" if in_stock else "false"
            writer.writerow((item_id, catalog.category_names[category], f"{price:.2f}", stock))


def write_events(
    folder: Path,
    buffer: EventBuffer,
    world: World,
    config: GenerateConfig,
    rng: np.random.Generator,
    progress: bool = False,
) -> dict[str, int]:
    """Write the buffered events as one ``part-synthetic`` file per day, sorted by time
    (ties broken by id), replacing earlier synthetic parts. Returns events per day."""
    for old in folder.glob(f"date=*/part-{PART_NAME}.jsonl*"):
        old.unlink()
        with contextlib.suppress(OSError):  # a partition other writers also use stays
            old.parent.rmdir()
    columns = buffer.columns()
    ids_high, ids_low = _random_id_bits(len(buffer), rng)
    order = np.lexsort((ids_low, ids_high, columns["ms"]))
    columns = {name: column[order] for name, column in columns.items()}
    columns["id_high"], columns["id_low"] = ids_high[order], ids_low[order]
    _make_ids_unique(columns)
    days = (columns["ms"] - config.log_start_ms) // DAY_MS
    bounds = np.searchsorted(days, np.arange(config.days + 1))
    per_day: dict[str, int] = {}
    with tqdm(total=len(buffer), desc="writing", unit="event", disable=not progress) as bar:
        for d in range(config.days):
            lo, hi = int(bounds[d]), int(bounds[d + 1])
            if lo == hi:
                continue
            day = (config.start_date + timedelta(days=d)).isoformat()
            part = {name: column[lo:hi] for name, column in columns.items()}
            with _open_part(folder / f"date={day}", config.gzip) as handle:
                for chunk in _lines(part, buffer.properties, world):
                    handle.write(chunk)
            per_day[day] = hi - lo
            bar.update(hi - lo)
    return per_day


def _random_id_bits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The 80 random bits of each event id, as a 16-bit and a 64-bit half."""
    high = rng.integers(0, 1 << 16, size=n, dtype=np.uint64)
    low = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    return high, low


def _make_ids_unique(columns: dict[str, np.ndarray]) -> None:
    """Two events in one millisecond with the same 80 random bits are astronomically rare
    (n² / 2^81), but ids must be unique: bump the later one, which keeps the sort order."""
    ms, high, low = columns["ms"], columns["id_high"], columns["id_low"]
    while True:
        same = np.flatnonzero((ms[1:] == ms[:-1]) & (high[1:] == high[:-1]) & (low[1:] == low[:-1]))
        if len(same) == 0:
            return
        low[same + 1] += np.uint64(1)


def _open_part(folder: Path, compress: bool) -> IO[str]:
    folder.mkdir(parents=True, exist_ok=True)
    if not compress:
        return (folder / f"part-{PART_NAME}.jsonl").open("w", encoding="utf-8", newline="\n")
    raw = (folder / f"part-{PART_NAME}.jsonl.gz").open("wb")
    # No file name and a zero mtime in the gzip header: the same events, the same bytes.
    zipped = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    return _ClosingText(zipped, raw)


class _ClosingText:
    """A text writer over a gzip stream that also closes the underlying file."""

    def __init__(self, zipped: gzip.GzipFile, raw: IO[bytes]) -> None:
        self._zipped, self._raw = zipped, raw

    def write(self, text: str) -> int:
        return self._zipped.write(text.encode("utf-8"))

    def __enter__(self) -> _ClosingText:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._zipped.close()
        self._raw.close()


def _lines(
    part: dict[str, np.ndarray], properties: list[dict[str, Any]], world: World
) -> Iterator[str]:
    """The JSONL text of one day's sorted events, in chunks of up to 10,000 lines."""
    visitor_ids, user_ids = world.population.visitor_ids, world.population.user_ids
    item_ids, prices = world.catalog.item_ids, world.catalog.price.tolist()
    names = ("ms", "id_high", "id_low", "kind", "visitor", "item", "quantity", "session")
    names += ("source", "channel", "logged_in", "props")
    rows = zip(*(part[name].tolist() for name in names), strict=True)
    lines: list[str] = []
    for (
        ms,
        high,
        low,
        kind,
        visitor,
        item,
        quantity,
        session,
        source,
        channel,
        logged,
        props,
    ) in rows:
        timestamp = format_timestamp(EPOCH + timedelta(milliseconds=ms))
        # Keys in the order the service's to_records gives them (received_at last), so the
        # lines look like the exporter's; absent fields are left out, never null.
        record: dict[str, Any] = {
            "id": f"{ms:012x}{high:04x}{low:016x}",
            "type": EVENT_TYPES[kind],
            "visitor_id": visitor_ids[visitor],
        }
        if logged and user_ids[visitor] is not None:
            record["user_id"] = user_ids[visitor]
        if item >= 0:
            record["item_id"] = item_ids[item]
        if quantity:
            record["quantity"] = quantity
            record["price"] = prices[item]
        if source >= 0:
            record["source"] = SOURCES[source]
        record["channel"] = CHANNELS[channel]
        if session >= 0:
            record["session_id"] = f"s{session:08d}"
        record["timestamp"] = timestamp
        if props >= 0:
            record["properties"] = properties[props]
        record["received_at"] = timestamp
        lines.append(_encode(record))
        if len(lines) == 10_000:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def write_ground_truth(path: Path, truth: dict[int, list[int]], world: World) -> int:
    """One line per visitor who bought in the held-out period, in visitor order:
    ``{"visitor_id", "user_id" (registered only), "items"}`` with the distinct items in the
    order first bought. Returns the number of lines."""
    visitor_ids, user_ids = world.population.visitor_ids, world.population.user_ids
    item_ids = world.catalog.item_ids
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for visitor in sorted(truth):
            line: dict[str, Any] = {"visitor_id": visitor_ids[visitor]}
            if user_ids[visitor] is not None:
                line["user_id"] = user_ids[visitor]
            line["items"] = [item_ids[item] for item in dict.fromkeys(truth[visitor])]
            handle.write(_encode(line) + "\n")
    return len(truth)


def write_world(path: Path, config: GenerateConfig, world: World, counts: dict[str, Any]) -> None:
    """The arguments, the period, every world parameter and the counts, as JSON. Nothing
    that varies between runs (no wall time), so the file is as deterministic as the data."""
    document = {
        "generator": "recsvc.synth",
        "arguments": {
            "visitors": config.visitors,
            "items": config.items,
            "days": config.days,
            "seed": config.seed,
            "end_date": config.end_date.isoformat(),
            "gzip": config.gzip,
            "holdout_days": config.holdout_days,
        },
        "period": {
            "start": config.start_date.isoformat(),
            "end": config.end_date.isoformat(),
            "holdout_start": (config.end_date + timedelta(days=1)).isoformat(),
            "holdout_end": (config.end_date + timedelta(days=config.holdout_days)).isoformat(),
        },
        "categories": world.catalog.category_names,
        "params": asdict(world.params),
        "counts": counts,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _counts(
    world: World, simulator: Simulator, per_day: dict[str, int], truth_visitors: int
) -> dict[str, Any]:
    buffer = simulator.buffer
    kinds = np.bincount(np.array(buffer.kind, dtype=np.int64), minlength=len(EVENT_TYPES))
    active = np.unique(np.array(buffer.visitor))
    population = world.population
    users = {u for u in population.user_ids if u is not None}
    return {
        "events": len(buffer),
        "events_by_type": {name: int(n) for name, n in zip(EVENT_TYPES, kinds, strict=True)},
        "events_by_day": per_day,
        "visitors": population.n_visitors,
        "visitors_with_events": len(active),
        "users": len(users),
        "users_with_two_devices": int((population.device_of >= 0).sum()),
        "items": world.catalog.n_items,
        "items_in_stock": int(world.catalog.in_stock.sum()),
        "categories": world.catalog.n_categories,
        "visits": simulator.visits,
        "purchases": int(kinds[PURCHASE]),
        "orders": simulator.orders,
        "carts": simulator.carts,
        "abandoned_carts": simulator.abandoned_carts,
        "ground_truth_visitors": truth_visitors,
        "held_out_purchases": sum(len(items) for items in simulator.truth.values()),
    }


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
