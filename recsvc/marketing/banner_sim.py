"""Banner opportunities in a replayed log, and what the service would have shown at each.

An *opportunity* is a page the storefront asks banners for, right after the event that
shows it: a ``page_view`` asks for the placement its ``properties.page`` names (when a
banner uses that placement, else ``home``), a product view for ``product``, and so on
(``PAGE_PLACEMENTS``). At each, ``recsvc.core.banners.choose`` decides with the visitor as
``recsvc.core.targeting.visitor_from_profile`` sees them, exactly as the endpoint does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from recsvc.core.banners import Decision, choose, experiment_variants, profile_affinity
from recsvc.core.profile import banner_day, impressions_today
from recsvc.core.targeting import CategoryOf, visitor_from_profile
from recsvc.marketing.replay import Applied
from recsvc.settings import Settings

# Event type -> the placement the page after it asks for. A page_view names its own page.
PAGE_PLACEMENTS: dict[str, str] = {
    "product_view": "product",
    "search": "search",
    "add_to_cart": "cart",
    "checkout_start": "checkout",
}
DEFAULT_PAGE_PLACEMENT = "home"


def placement_for(record: dict[str, Any], used: frozenset[str]) -> str | None:
    """The placement this event's page asks banners for, or None when no banner uses it
    (nothing to decide there)."""
    if record["type"] == "page_view":
        page = (record.get("properties") or {}).get("page")
        placement = page if page in used else DEFAULT_PAGE_PLACEMENT
    else:
        placement = PAGE_PLACEMENTS.get(record["type"])
    return placement if placement in used else None


@dataclass(frozen=True)
class Opportunity:
    """One decision, kept for comparing with the live endpoint."""

    event_id: str
    visitor_id: str
    placement: str
    timestamp: str  # the event's, as logged
    at: float
    chosen: tuple[str, ...]


@dataclass
class BannerStats:
    """What one banner would have done over the log.

    ``eligible`` splits into ``chosen`` and the three losses: capped (a frequency cap held
    it back), another experiment variant, a higher-ranked banner."""

    banner_id: str
    placement: str
    priority: int
    experiment: str | None  # "experiment/variant"
    opportunities: int = 0  # pages at its placement
    eligible: int = 0
    chosen: int = 0
    lost_to_cap: int = 0
    lost_to_other_variant: int = 0
    lost_to_higher_rank: int = 0
    eligible_visitors: set[str] = field(default_factory=set)
    reached_visitors: set[str] = field(default_factory=set)
    reached_by_day: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    reached_by_stage: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def banner_stats(banner: dict[str, Any]) -> BannerStats:
    experiment = banner.get("experiment")
    return BannerStats(
        banner_id=banner["id"],
        placement=banner["placement"],
        priority=banner.get("priority", 0),
        experiment=f"{experiment['id']}/{experiment['variant']}" if experiment else None,
    )


class BannerSimulation:
    """Decides every opportunity of a replay and counts the outcome per banner.

    Frequency caps read the impressions the log recorded (``banner_impression`` events in
    the visitor document: what the live service knows). With ``simulate_impressions`` every
    banner chosen here counts as shown too, on top of the logged ones: the what-if for
    banners the log never showed.
    """

    def __init__(
        self,
        banners: list[dict[str, Any]],
        settings: Settings,
        category_of: CategoryOf,
        simulate_impressions: bool = False,
        keep_decisions: bool = False,
    ) -> None:
        self.banners = banners
        self.settings = settings
        self.category_of = category_of
        self.simulate_impressions = simulate_impressions
        self.keep_decisions = keep_decisions
        # Over all banners, once: an assignment must not depend on which rules matched.
        self.variants = experiment_variants(banners)
        self.placements = frozenset(banner["placement"] for banner in banners)
        self.stats = {banner["id"]: banner_stats(banner) for banner in banners}
        self.by_placement: dict[str, list[BannerStats]] = defaultdict(list)
        for stats in self.stats.values():
            self.by_placement[stats.placement].append(stats)
        self.opportunities: Counter[str] = Counter()  # per placement
        self.filled: Counter[str] = Counter()  # per placement, a banner chosen
        self.simulated: Counter[tuple[str, str, str]] = Counter()  # visitor, banner, day
        self.decisions: list[Opportunity] = []

    def observe(self, applied: Applied) -> None:
        placement = placement_for(applied.record, self.placements)
        if placement is not None:
            self.decide(applied, placement)

    def decide(self, applied: Applied, placement: str) -> Decision:
        visitor_id = applied.record["visitor_id"]
        at = applied.at
        visitor = visitor_from_profile(
            applied.visitor, applied.shared, at, self.settings, self.category_of, visitor_id
        )
        day = banner_day(at, self.settings)

        def shown_today(banner_id: str) -> int:
            logged = impressions_today(applied.visitor, banner_id, at, self.settings)
            return logged + self.simulated[visitor_id, banner_id, day]

        decision = choose(
            self.banners,
            visitor,
            placement,
            n=1,
            impressions_today=shown_today,
            affinity=profile_affinity(visitor),
            variants=self.variants,
        )
        self._count(decision, placement, visitor_id, day, visitor.stage)
        if self.keep_decisions:
            chosen = tuple(c.banner["id"] for c in decision.chosen)
            record = applied.record
            self.decisions.append(
                Opportunity(record["id"], visitor_id, placement, record["timestamp"], at, chosen)
            )
        return decision

    def _count(
        self, decision: Decision, placement: str, visitor_id: str, day: str, stage: str
    ) -> None:
        self.opportunities[placement] += 1
        for stats in self.by_placement[placement]:
            stats.opportunities += 1
        for banner_id in decision.eligible:
            self.stats[banner_id].eligible += 1
            self.stats[banner_id].eligible_visitors.add(visitor_id)
        for banner_id in decision.capped:
            self.stats[banner_id].lost_to_cap += 1
        for banner_id in decision.other_variant:
            self.stats[banner_id].lost_to_other_variant += 1
        chosen = {c.banner["id"] for c in decision.chosen}
        held_back = chosen | set(decision.capped) | set(decision.other_variant)
        for banner_id in decision.eligible:
            if banner_id not in held_back:
                self.stats[banner_id].lost_to_higher_rank += 1
        if chosen:
            self.filled[placement] += 1
        for banner_id in chosen:
            stats = self.stats[banner_id]
            stats.chosen += 1
            stats.reached_visitors.add(visitor_id)
            stats.reached_by_day[day].add(visitor_id)
            stats.reached_by_stage[stage].add(visitor_id)
            if self.simulate_impressions:
                self.simulated[visitor_id, banner_id, day] += 1
