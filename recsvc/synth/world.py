"""The world model of the synthetic store: what it sells, who visits it and how they behave.

Everything here is drawn once from the seed, vectorised with numpy. The simulation of those
visitors over time (visits, the funnel, carts) is ``recsvc.synth.generator``; it reads the
tables built here and the behaviour constants in ``WorldParams``.

The planted structure a recommender can learn:

- every visitor likes 1–3 categories (a Dirichlet mix over them) and views and buys mostly
  there; items outside the mix are rarely put in the cart;
- every visitor has a price tier and prefers items of that tier within a category;
- within a category, item popularity is Zipf-like, so popularity is a real but weaker signal;
- users with two devices (two visitor ids, one ``user_id``) share one taste.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsvc.core.events import SOURCES

# Product nouns for search queries: category k is searched for as NOUNS[k % len(NOUNS)].
NOUNS: tuple[str, ...] = (
    "sneakers", "boots", "sandals", "jacket", "jeans", "dress", "t-shirt", "hoodie",
    "backpack", "wallet", "watch", "sunglasses", "headphones", "speaker", "phone case",
    "charger", "keyboard", "monitor", "lamp", "sofa", "rug", "pillow", "bedding", "mug",
    "blender", "coffee maker", "knife set", "pan", "yoga mat", "dumbbells", "tent",
    "water bottle", "shampoo", "face cream", "perfume", "toy car", "puzzle", "board game",
    "dog food", "plant pot",
)  # fmt: skip
ADJECTIVES: tuple[str, ...] = (
    "cheap", "red", "black", "wireless", "leather", "organic", "kids", "large", "vintage",
    "waterproof", "best", "small",
)  # fmt: skip

# A store in one time zone: few visits at night (UTC), peaks at lunch and in the evening.
HOURLY_TRAFFIC: tuple[float, ...] = (
    1.2, 0.8, 0.5, 0.4, 0.4, 0.6, 1.2, 2.5, 3.6, 4.2, 4.5, 4.8,
    5.4, 5.2, 4.6, 4.4, 4.6, 5.2, 6.2, 7.2, 7.6, 6.8, 4.6, 2.4,
)  # fmt: skip


@dataclass(frozen=True)
class WorldParams:
    """Every behaviour constant of the synthetic store, with the reason for its value.

    Probabilities are per opportunity (per visit, per product view, per cart) unless stated.
    The defaults give about 70% abandoned carts, orders in about 5% of visits and a strong
    taste signal; they are written to ``world.json`` with each generated data set.
    """

    # --- catalog -------------------------------------------------------------------------
    # Traffic share of the k-th biggest category ∝ k^-0.6: a few big departments, a tail.
    category_zipf: float = 0.6
    # Within a category the k-th most popular item gets ∝ k^-1 (Zipf): the head sells most.
    item_zipf: float = 1.0
    in_stock_share: float = 0.9
    # Median price of a category is log-uniform in this range (USD); items spread around it.
    category_price_range: tuple[float, float] = (8.0, 300.0)
    price_sigma: float = 0.45

    # --- tastes --------------------------------------------------------------------------
    # Share of visitors who like 1, 2 and 3 categories.
    taste_size_shares: tuple[float, ...] = (0.45, 0.35, 0.20)
    # Dirichlet concentration over the liked categories (1.0: any split equally likely).
    taste_alpha: float = 1.0
    # Share of product views outside a visitor's categories (browsing, gifts, curiosity).
    explore_share: float = 0.08
    # Such items go to the cart this many times less often than liked ones.
    explore_cart_factor: float = 0.2
    # Shares of the low, middle and high price tiers among visitors.
    tier_shares: tuple[float, ...] = (0.35, 0.45, 0.20)
    # Weight of an item 0, 1 and 2 tiers away from the visitor's own price tier.
    tier_affinity: tuple[float, ...] = (1.0, 0.3, 0.08)

    # --- population ----------------------------------------------------------------------
    # First-touch traffic sources (order of recsvc.core.events.SOURCES) and their shares.
    source_shares: tuple[float, ...] = (0.22, 0.12, 0.25, 0.06, 0.08, 0.19, 0.08)
    # Multiplier on the cart and checkout rates of a visit from each source: email and
    # direct visitors came for something, social and display-ad clicks mostly browse.
    source_conversion: tuple[float, ...] = (1.0, 0.55, 1.1, 1.7, 0.5, 1.4, 1.2)
    # Return visits: where they come from when not from a newsletter (direct dominates).
    return_source_shares: tuple[float, ...] = (0.10, 0.05, 0.25, 0.0, 0.08, 0.45, 0.07)
    # A return visit comes from the visitor's first-touch source this often (retargeting).
    return_first_source_share: float = 0.25
    app_share: float = 0.15
    # Visitors with an account (a user_id); the rest check out as guests.
    registered_share: float = 0.3
    # Extra visitor ids that are a registered user's second device (app), as a share of all.
    second_device_share: float = 0.03
    # Buying intent multiplier: lognormal(0, sigma).
    propensity_sigma: float = 0.6
    # Probability of coming back after a visit, Beta(a, b) per visitor (mean 0.44).
    return_beta: tuple[float, float] = (1.6, 2.0)
    # A purchase makes a customer this much likelier to come back (capped at 0.95).
    return_after_purchase_boost: float = 0.25
    # Days between visits: exponential around a per-visitor mean, lognormal(median, sigma).
    gap_days_median: float = 3.0
    gap_days_sigma: float = 0.8

    # --- a visit -------------------------------------------------------------------------
    # Visits that end on the landing page (a bounce).
    bounce_share: float = 0.38
    # Landing page shares (home, category, product); ad clicks land on products more.
    landing_shares: tuple[float, ...] = (0.5, 0.25, 0.25)
    ad_landing_shares: tuple[float, ...] = (0.2, 0.2, 0.6)
    # Home landings that show a banner; click rates on a banner for a liked category or not.
    banner_impression_share: float = 0.8
    banner_click_liked: float = 0.09
    banner_click_other: float = 0.01
    max_banners: int = 6
    search_share: float = 0.3
    # Mean product views in a visit that does not bounce (1 + geometric).
    views_mean: float = 3.5
    review_share: float = 0.2
    # A product view is of an item the visitor viewed before (comparing, coming back).
    review_recent_share: float = 0.15
    # A product view is of an item the visitor bought before (repeat purchase).
    rebuy_view_share: float = 0.06
    # Base add_to_cart rate per view of an in-stock liked item, times source and intent.
    cart_share: float = 0.1
    remove_share: float = 0.12
    # Share of quantities 1, 2, 3 on add_to_cart.
    quantity_shares: tuple[float, ...] = (0.85, 0.1, 0.05)
    # Per visit with a non-empty cart: checkout is started (times source and intent)...
    checkout_share: float = 0.16
    # ... and completed.
    purchase_share: float = 0.65
    confirmation_open_share: float = 0.55
    survey_share: float = 0.25
    # A registered web visitor is logged in from the start of a visit (apps always are);
    # everyone registered logs in at checkout.
    logged_in_share: float = 0.5
    # Registered visitors: a return visit comes from a newsletter click (email_open first).
    email_visit_share: float = 0.25
    # Registered visitors: a newsletter is opened between two visits without a visit.
    newsletter_open_share: float = 0.2

    # --- timing (seconds) --------------------------------------------------------------
    # Median dwell on a page before the next event; lognormal with sigma 0.8, capped so
    # that no gap inside a visit comes near the 30-minute visit boundary.
    dwell_landing: float = 15.0
    dwell_product: float = 40.0
    dwell_review: float = 60.0
    dwell_cart: float = 12.0
    dwell_checkout: float = 120.0
    dwell_cap: float = 600.0

    def __post_init__(self) -> None:
        per_source = (self.source_shares, self.source_conversion, self.return_source_shares)
        if any(len(values) != len(SOURCES) for values in per_source):
            raise ValueError("source shares and conversion need one value per source")


@dataclass(frozen=True)
class Catalog:
    """The items of the store and the tables the simulation samples them from.

    Attributes
    ----------
    item_ids : list of str, (M,)
        ``i000123``-style ids; index ``j`` in every array below is item ``item_ids[j]``.
    category_names : list of str, (C,)
        ``c07``-style ids.
    item_category : ndarray of int32, (M,)
    price : ndarray of float64, (M,)
        Unit price in USD, rounded to ``.99``.
    in_stock : ndarray of bool, (M,)
    category_share : ndarray of float64, (C,)
        Share of browsing traffic each category attracts; sums to 1.
    category_items : list of list of int
        Item indices of each category.
    tier_cumweights : list (3) of list (C) of list of float
        Cumulative sampling weights over ``category_items[c]`` for a visitor of price tier
        ``t``: Zipf popularity times the tier affinity. Python lists, for ``bisect``.
    queries : list of list of str
        Search queries that find each category.
    banner_category : list of int
        The category each banner promotes: the most visited ones.
    banner_ids : list of str
        ``b01``-style ids, one per entry of ``banner_category``.
    """

    item_ids: list[str]
    category_names: list[str]
    item_category: np.ndarray
    price: np.ndarray
    in_stock: np.ndarray
    category_share: np.ndarray
    category_items: list[list[int]]
    tier_cumweights: list[list[list[float]]]
    queries: list[list[str]]
    banner_category: list[int]
    banner_ids: list[str]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_categories(self) -> int:
        return len(self.category_names)


@dataclass(frozen=True)
class Population:
    """The visitors: one row per visitor id, ``N`` rows.

    Attributes
    ----------
    visitor_ids : list of str, (N,)
    user_ids : list of (str or None), (N,)
        The account of a registered visitor; a user with two devices appears twice.
    taste_categories : ndarray of int32, (N, 3)
        Liked categories; slots with zero weight are unused.
    taste_weights : ndarray of float64, (N, 3)
        Weights over ``taste_categories``; each row sums to 1.
    tier : ndarray of int8, (N,)
        Price tier 0 (low) to 2 (high).
    first_source : ndarray of int8, (N,)
        Index into ``SOURCES`` of the visitor's first touch.
    app : ndarray of bool, (N,)
        The visitor id is an app install (channel ``app``), else a web browser.
    propensity : ndarray of float64, (N,)
        Buying intent, a multiplier on cart and checkout rates (median 1).
    return_prob : ndarray of float64, (N,)
        Probability of coming back after a visit.
    gap_days : ndarray of float64, (N,)
        Mean days between two visits.
    device_of : ndarray of int32, (N,)
        For a second device, the index of the user's first visitor id; else -1.
    """

    visitor_ids: list[str]
    user_ids: list[str | None]
    taste_categories: np.ndarray
    taste_weights: np.ndarray
    tier: np.ndarray
    first_source: np.ndarray
    app: np.ndarray
    propensity: np.ndarray
    return_prob: np.ndarray
    gap_days: np.ndarray
    device_of: np.ndarray

    @property
    def n_visitors(self) -> int:
        return len(self.visitor_ids)


@dataclass(frozen=True)
class World:
    """A catalog, its visitors and the constants they behave by."""

    params: WorldParams
    catalog: Catalog
    population: Population


def n_categories_for(n_items: int) -> int:
    """Categories for a catalog of ``n_items``: about sqrt(M)/2, between 2 and 40, and
    never more than there are items."""
    return int(min(n_items, max(2, min(40, round(n_items**0.5 / 2)))))


def build_world(
    n_visitors: int, n_items: int, rng: np.random.Generator, params: WorldParams | None = None
) -> World:
    """Draw a catalog of ``n_items`` and a population of ``n_visitors`` visitor ids from
    ``rng``. The same generator state gives the same world."""
    if n_visitors < 1 or n_items < 1:
        raise ValueError("need at least one visitor and one item")
    params = params or WorldParams()
    catalog = build_catalog(n_items, rng, params)
    population = build_population(n_visitors, catalog, rng, params)
    return World(params=params, catalog=catalog, population=population)


def build_catalog(n_items: int, rng: np.random.Generator, params: WorldParams) -> Catalog:
    """Items with a category, a price and a stock flag, plus the sampling tables."""
    n_cat = n_categories_for(n_items)
    share = _zipf_weights(n_cat, params.category_zipf)[rng.permutation(n_cat)]
    # Bigger departments carry more items, but less than in proportion to their traffic.
    size_share = share**0.5 / (share**0.5).sum()
    item_category = np.concatenate(
        [np.arange(n_cat), rng.choice(n_cat, size=n_items - n_cat, p=size_share)]
    ).astype(np.int32)
    rng.shuffle(item_category)
    price = _prices(item_category, n_cat, rng, params)
    in_stock = rng.random(n_items) < params.in_stock_share
    category_items, tier_cumweights = _sampling_tables(item_category, price, n_cat, rng, params)
    width = max(6, len(str(n_items - 1)))
    banner_category = [int(c) for c in np.argsort(-share, kind="stable")[: params.max_banners]]
    return Catalog(
        item_ids=[f"i{j:0{width}d}" for j in range(n_items)],
        category_names=[f"c{c:0{max(2, len(str(n_cat - 1)))}d}" for c in range(n_cat)],
        item_category=item_category,
        price=price,
        in_stock=in_stock,
        category_share=share,
        category_items=category_items,
        tier_cumweights=tier_cumweights,
        queries=_queries(n_cat, rng),
        banner_category=banner_category,
        banner_ids=[f"b{k + 1:02d}" for k in range(len(banner_category))],
    )


def build_population(
    n_visitors: int, catalog: Catalog, rng: np.random.Generator, params: WorldParams
) -> Population:
    """Visitors with tastes, a price tier, a first-touch source, a device and habits.

    The last ``second_device_share`` of the ids are second devices of registered users:
    they copy that user's tastes, tier and intent, so stitching them is worth it.
    """
    n = n_visitors
    cats, weights = _tastes(n, catalog.category_share, rng, params)
    tier = rng.choice(3, size=n, p=_normalised(params.tier_shares)).astype(np.int8)
    first_source = rng.choice(len(SOURCES), size=n, p=_normalised(params.source_shares))
    app = rng.random(n) < params.app_share
    registered = rng.random(n) < params.registered_share
    propensity = rng.lognormal(0.0, params.propensity_sigma, size=n)
    return_prob = rng.beta(*params.return_beta, size=n)
    gap_days = rng.lognormal(np.log(params.gap_days_median), params.gap_days_sigma, size=n)
    device_of = _second_devices(n, registered, rng, params)
    second = device_of >= 0
    primary = device_of[second]
    for column in (cats, weights, tier, propensity, return_prob, gap_days, registered):
        column[second] = column[primary]
    app[second] = True
    # An app opened from the home screen has no referrer.
    first_source[second] = SOURCES.index("direct")
    return Population(
        visitor_ids=_ids("v", n),
        user_ids=_user_ids(registered, device_of),
        taste_categories=cats,
        taste_weights=weights,
        tier=tier,
        first_source=first_source.astype(np.int8),
        app=app,
        propensity=propensity,
        return_prob=return_prob,
        gap_days=gap_days,
        device_of=device_of,
    )


def _zipf_weights(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def _normalised(shares: tuple[float, ...]) -> np.ndarray:
    array = np.asarray(shares, dtype=np.float64)
    return array / array.sum()


def _prices(
    item_category: np.ndarray, n_cat: int, rng: np.random.Generator, params: WorldParams
) -> np.ndarray:
    low, high = np.log(params.category_price_range[0]), np.log(params.category_price_range[1])
    median = np.exp(rng.uniform(low, high, size=n_cat))
    raw = median[item_category] * rng.lognormal(0.0, params.price_sigma, size=len(item_category))
    # Shop prices end in .99.
    return np.maximum(np.round(raw), 1.0) - 0.01


def _sampling_tables(
    item_category: np.ndarray,
    price: np.ndarray,
    n_cat: int,
    rng: np.random.Generator,
    params: WorldParams,
) -> tuple[list[list[int]], list[list[list[float]]]]:
    order = np.argsort(item_category, kind="stable")
    bounds = np.searchsorted(item_category[order], np.arange(n_cat + 1))
    affinity = np.asarray(params.tier_affinity)
    category_items: list[list[int]] = []
    tier_cumweights: list[list[list[float]]] = [[], [], []]
    for c in range(n_cat):
        items = order[bounds[c] : bounds[c + 1]]
        size = len(items)
        popularity = _zipf_weights(size, params.item_zipf)[rng.permutation(size)]
        # Price tier of an item: the tercile of its price within its category.
        price_rank = np.argsort(np.argsort(price[items], kind="stable"), kind="stable")
        item_tier = (3 * price_rank) // size
        category_items.append(items.tolist())
        for tier in range(3):
            weights = popularity * affinity[np.abs(item_tier - tier)]
            tier_cumweights[tier].append(np.cumsum(weights).tolist())
    return category_items, tier_cumweights


def _queries(n_cat: int, rng: np.random.Generator) -> list[list[str]]:
    queries = []
    for c in range(n_cat):
        noun = NOUNS[c % len(NOUNS)]
        adjectives = rng.choice(len(ADJECTIVES), size=3, replace=False)
        queries.append([noun, *(f"{ADJECTIVES[a]} {noun}" for a in adjectives)])
    return queries


def _tastes(
    n: int, category_share: np.ndarray, rng: np.random.Generator, params: WorldParams
) -> tuple[np.ndarray, np.ndarray]:
    # Liked categories follow category popularity; a repeated draw merges into one slot's
    # weight in effect, which only makes a few visitors more focused.
    cumulative = np.cumsum(category_share)
    cats = np.searchsorted(cumulative, rng.random((n, 3)) * cumulative[-1], side="right")
    cats = np.minimum(cats, len(category_share) - 1).astype(np.int32)
    size = 1 + rng.choice(3, size=n, p=_normalised(params.taste_size_shares))
    used = np.arange(3)[None, :] < size[:, None]
    weights = rng.gamma(params.taste_alpha, size=(n, 3)) * used
    weights /= weights.sum(axis=1, keepdims=True)
    return cats, weights


def _second_devices(
    n: int, registered: np.ndarray, rng: np.random.Generator, params: WorldParams
) -> np.ndarray:
    device_of = np.full(n, -1, dtype=np.int32)
    n_second = round(n * params.second_device_share)
    candidates = np.flatnonzero(registered[: n - n_second])
    if n_second == 0 or len(candidates) == 0:
        return device_of
    take = min(n_second, len(candidates))
    device_of[n - take :] = rng.choice(candidates, size=take, replace=False)
    return device_of


def _ids(prefix: str, n: int) -> list[str]:
    width = max(6, len(str(n - 1)))
    return [f"{prefix}{k:0{width}d}" for k in range(n)]


def _user_ids(registered: np.ndarray, device_of: np.ndarray) -> list[str | None]:
    primary = registered & (device_of < 0)
    number = np.cumsum(primary) - 1
    width = max(6, len(str(int(primary.sum()))))
    user_ids: list[str | None] = [
        f"u{number[k]:0{width}d}" if primary[k] else None for k in range(len(registered))
    ]
    for k in np.flatnonzero(device_of >= 0):
        user_ids[k] = user_ids[device_of[k]]
    return user_ids
