"""Choosing banners for a visitor: eligibility, frequency caps, experiments, ranking.

A banner (as stored, see ``recsvc.schemas.banners``)::

    {"id": "b-summer", "placement": "home", "priority": 10,
     "content": {"title": ..., "body": ..., "image_url": ..., "link": ..., "cta": ...},
     "rules": {"stages": ["consideration"], "hours": [18, 19, 20]},
     "promotes": {"categories": ["shoes"], "items": ["sku-1"]},
     "frequency_cap_per_day": 3,
     "experiment": {"id": "summer-copy", "variant": "b"}}

``choose`` is the one decision both the endpoint and the backtest make: the banners of a
placement whose rules match (``recsvc.core.targeting``), less those the visitor has
already seen ``frequency_cap_per_day`` times today, less the variants of an experiment the
visitor is not assigned to; ranked by priority, then by the visitor's affinity to what the
banner promotes (the caller supplies the affinity: model vectors or the profile).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recsvc.core.targeting import Visitor, match

Affinity = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class Chosen:
    banner: dict[str, Any]
    matched: dict[str, Any]
    affinity: float


@dataclass
class Decision:
    """What ``choose`` decided, with what the backtest counts: every banner whose rules
    matched (``eligible``), those a frequency cap held back, those another experiment
    variant took the place of."""

    chosen: list[Chosen] = field(default_factory=list)
    eligible: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    other_variant: list[str] = field(default_factory=list)


def assigned_variant(experiment_id: str, variants: Iterable[str], visitor_id: str) -> str:
    """The variant of ``experiment_id`` a visitor sees: a stable hash of the pair picks one
    of the experiment's variants (sorted, so every worker agrees)."""
    ordered = sorted(set(variants))
    digest = hashlib.sha256(f"experiment|{experiment_id}|{visitor_id}".encode()).digest()
    return ordered[int.from_bytes(digest[:8], "big") % len(ordered)]


def experiment_variants(banners: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Experiment id -> the variants its banners name, over all banners (not only the
    eligible ones), so a visitor's assignment does not depend on which rules matched."""
    variants: dict[str, list[str]] = {}
    for banner in banners:
        experiment = banner.get("experiment")
        if experiment:
            variants.setdefault(experiment["id"], []).append(experiment["variant"])
    return variants


def choose(
    banners: list[dict[str, Any]],
    visitor: Visitor,
    placement: str | None,
    n: int,
    impressions_today: Callable[[str], int],
    affinity: Affinity,
    variants: dict[str, list[str]] | None = None,
) -> Decision:
    """The ``n`` banners to show ``visitor`` at ``placement`` (any placement when None)."""
    variants = experiment_variants(banners) if variants is None else variants
    decision = Decision()
    candidates: list[Chosen] = []
    for banner in banners:
        if placement is not None and banner["placement"] != placement:
            continue
        matched = match(banner["rules"], visitor)
        if matched is None:
            continue
        decision.eligible.append(banner["id"])
        cap = banner.get("frequency_cap_per_day")
        if cap and impressions_today(banner["id"]) >= cap:
            decision.capped.append(banner["id"])
            continue
        experiment = banner.get("experiment")
        if experiment and experiment["variant"] != assigned_variant(
            experiment["id"], variants[experiment["id"]], visitor.visitor_id
        ):
            decision.other_variant.append(banner["id"])
            continue
        candidates.append(Chosen(banner, matched, affinity(banner)))
    candidates.sort(key=lambda c: (-c.banner["priority"], -c.affinity, c.banner["id"]))
    decision.chosen = candidates[:n]
    return decision


# A banner's promoted items and categories, as sets (``promoted_sets``).
PromotedSets = tuple[frozenset[str], frozenset[str]]


def profile_affinity(
    visitor: Visitor, promoted_of: Mapping[str, PromotedSets] | None = None
) -> Affinity:
    """Affinity from the profile alone: the share (0 to 1) of the visitor's recent items
    that are promoted, or in a promoted category. ``promoted_of`` (banner id ->
    ``promoted_sets``) spares a caller holding the banners working them out per visitor."""
    recent = list(zip(visitor.recent_items, visitor.recent_categories, strict=False))

    def score(banner: dict[str, Any]) -> float:
        if not recent:
            return 0.0
        if promoted_of is None:
            items, categories = promoted_sets(banner)
        else:
            items, categories = promoted_of[banner["id"]]
        hits = sum(1 for item, category in recent if item in items or category in categories)
        return hits / len(recent)

    return score


def promoted(banner: dict[str, Any]) -> dict[str, list[str]]:
    """What the banner promotes; without ``promotes``, the categories it targets."""
    promotes = banner.get("promotes") or {}
    return {
        "items": list(promotes.get("items") or []),
        "categories": list(promotes.get("categories") or banner["rules"].get("categories") or []),
    }


def promoted_sets(banner: dict[str, Any]) -> PromotedSets:
    """``promoted`` as sets of items and categories."""
    promotes = promoted(banner)
    return frozenset(promotes["items"]), frozenset(promotes["categories"])
