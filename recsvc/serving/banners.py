"""Banners for a visitor, as the storefront asks on each page.

One read of Redis per request in the usual case: the visitor's profile and model vector
together (``VisitorReader.read``, behind the same breaker as recommendations).
Banners and the catalog's item categories live in the worker's memory, reloaded when
their version counters move (checked at most every ``marketing_poll_seconds``). When Redis
cannot be read the visitor is targeted as a new one from the banners held in memory, and
the answer says ``"fallback": "unavailable"``.

Banners of equal priority are ranked by the visitor's affinity to what they promote: the
mean model score of the promoted items and category centroids (item factors averaged per
category) for a visitor the model knows; the share of their recent items that are
promoted otherwise.

What the answer says about the visitor follows the request's
:class:`~recsvc.serving.disclosure.Disclosure`: the journey stage, the segments and the
rules a banner matched with the visitor's values (their stage, cart value, sources,
browsed categories) are the store's labels, shown only to keys that read full profiles.
A public key gets the banners themselves (which banner is shown follows its rules, as
any targeted page does), the time rules they matched, and no labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import numpy as np

from recsvc.clock import Clock
from recsvc.core import banners as banner_rules
from recsvc.core.events import format_timestamp
from recsvc.core.journey import SEGMENTS
from recsvc.core.profile import banner_day, impressions_on
from recsvc.core.targeting import visitor_from_profile
from recsvc.redis_client import UNAVAILABLE_ERRORS
from recsvc.serving.disclosure import FULL, Disclosure
from recsvc.serving.holder import LoadedModel, ModelHolder
from recsvc.serving.visitors import VisitorReader
from recsvc.settings import Settings
from recsvc.store.banners import BannerStore
from recsvc.store.catalog import CatalogStore

T = TypeVar("T")


class VersionedCache(Generic[T]):
    """A value rebuilt when a version counter in Redis moves, checked at most every
    ``interval`` seconds; on Redis errors the value held is kept."""

    def __init__(
        self,
        version: Callable[[], int],
        load: Callable[[], tuple[int, T]],
        empty: T,
        interval: float,
    ) -> None:
        self._version, self._load = version, load
        self.value, self.held_version = empty, -1
        self.interval = interval
        self._checked_at = float("-inf")

    def get(self) -> T:
        now = time.monotonic()
        if now - self._checked_at >= self.interval:
            self._checked_at = now
            try:
                if self._version() != self.held_version:
                    self.held_version, self.value = self._load()
            except UNAVAILABLE_ERRORS:
                pass  # keep serving what is held; the next check tries again
        return self.value


@dataclass
class BannerSet:
    """The banners a worker holds, with what each request would otherwise work out again:
    experiment variants (over all banners), the banners of each placement, and what each
    banner promotes."""

    banners: list[dict[str, Any]] = field(default_factory=list)
    variants: dict[str, list[str]] = field(default_factory=dict)
    by_placement: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    promoted: dict[str, banner_rules.PromotedSets] = field(default_factory=dict)

    @classmethod
    def of(cls, banners: list[dict[str, Any]]) -> BannerSet:
        by_placement: dict[str, list[dict[str, Any]]] = {}
        for banner in banners:
            by_placement.setdefault(banner["placement"], []).append(banner)
        return cls(
            banners,
            banner_rules.experiment_variants(banners),
            by_placement,
            {banner["id"]: banner_rules.promoted_sets(banner) for banner in banners},
        )

    def at(self, placement: str | None) -> list[dict[str, Any]]:
        """The banners of ``placement`` (all of them for None), in the stored order."""
        return self.banners if placement is None else self.by_placement.get(placement, [])


class BannerService:
    def __init__(
        self,
        store: BannerStore,
        catalog: CatalogStore,
        reader: VisitorReader,
        holder: ModelHolder,
        settings: Settings,
        clock: Clock,
        catalog_scan: CatalogStore | None = None,
    ) -> None:
        """``catalog`` checks the catalog's version on the request path (the request
        path's short-timeout client); ``catalog_scan`` (default ``catalog``) reads the
        whole catalog when it moved: a client whose timeout a page of a 100k-item catalog
        fits, or a page times out, nothing is kept, and the next request scans again."""
        self.reader = reader
        self.holder = holder
        self.settings = settings
        self.clock = clock
        self.banners = VersionedCache(
            store.version,
            lambda: _banner_set(store.snapshot()),
            BannerSet(),
            settings.marketing_poll_seconds,
        )
        scan = catalog_scan or catalog
        self.categories = VersionedCache(
            catalog.version,
            lambda: _categories(scan.snapshot()),
            {},
            settings.marketing_poll_seconds,
        )
        # (banners, model, catalog) -> banner id rows and the banners' target vectors.
        self._targets: tuple[Any, Any] = (None, None)

    def preload(self) -> None:
        """Load the banners and the catalog's categories now: gunicorn's master can call it
        before each fork (as it preloads the model), so a new worker's first requests do
        not read the whole catalog."""
        self.banners.get()
        self.categories.get()

    def for_visitor(
        self, visitor_id: str, placement: str | None, n: int, disclosure: Disclosure = FULL
    ) -> dict[str, Any]:
        model = self.holder.current()
        banner_set, categories = self.banners.get(), self.categories.get()
        state = self.reader.read(visitor_id, model)
        now = self.clock.now()
        doc = state.visitor if state else None
        visitor = visitor_from_profile(
            doc, state.shared if state else None, now, self.settings, categories.get, visitor_id
        )
        if state is not None and state.vector is not None and model is not None:
            affinity = self._model_affinity(model, banner_set, state.vector)
        else:
            affinity = banner_rules.profile_affinity(visitor, banner_set.promoted)
        today = banner_day(now, self.settings)
        decision = banner_rules.choose(
            # Only this placement's banners: choose skips the others anyway.
            banner_set.at(placement),
            visitor,
            placement,
            n,
            lambda banner_id: impressions_on(doc, banner_id, today) if doc else 0,
            affinity,
            banner_set.variants,
        )
        labels = disclosure.labels
        return {
            "banners": [_shown(chosen, labels) for chosen in decision.chosen],
            "stage": visitor.stage if labels else None,
            "segments": [name for name in SEGMENTS if name in visitor.segments] if labels else [],
            "fallback": None if state is not None else "unavailable",
        }

    def _model_affinity(
        self, model: LoadedModel, banner_set: BannerSet, vector: np.ndarray
    ) -> banner_rules.Affinity:
        row_of, targets = self._targets_of(model, banner_set)
        scores = targets @ vector
        return lambda banner: float(scores[row_of[banner["id"]]])

    def _targets_of(
        self, model: LoadedModel, banner_set: BannerSet
    ) -> tuple[dict[str, int], np.ndarray]:
        """Per banner, the mean of the factors of what it promotes (items, and category
        centroids: item factors averaged per category), so that its affinity, the mean
        score of those targets, is one dot product with the visitor's vector. Built once
        per (banners, model, catalog); a banner promoting nothing the model knows scores 0."""
        key = (id(banner_set), id(model), model.catalog.version)
        if self._targets[0] != key:
            centroids = _centroids(model)
            row_of = {banner["id"]: row for row, banner in enumerate(banner_set.banners)}
            targets = np.zeros((len(banner_set.banners), model.factors), np.float32)
            for banner, row in zip(banner_set.banners, targets, strict=True):
                promotes = banner_rules.promoted(banner)
                vectors = [
                    model.item_factors[model.row_of[i]]
                    for i in promotes["items"]
                    if i in model.row_of
                ]
                vectors += [centroids[c] for c in promotes["categories"] if c in centroids]
                if vectors:
                    row[:] = np.mean(vectors, axis=0)
            self._targets = (key, (row_of, targets))
        return self._targets[1]


def _centroids(model: LoadedModel) -> dict[str, np.ndarray]:
    """Mean item factors per category of the catalog."""
    codes = model.catalog.categories
    return {
        name: model.item_factors[codes == code].mean(axis=0)
        for code, name in enumerate(model.catalog.category_names)
        if np.any(codes == code)
    }


def _banner_set(snapshot: tuple[int, list[dict[str, Any]]]) -> tuple[int, BannerSet]:
    version, banners = snapshot
    return version, BannerSet.of(banners)


def _categories(snapshot: tuple[int, list[dict[str, Any]]]) -> tuple[int, dict[str, str]]:
    version, items = snapshot
    return version, {item["item_id"]: item["category"] for item in items if item.get("category")}


# Rules that hold for everyone at a time: naming them says nothing about the visitor.
TIME_RULES = frozenset({"start", "end", "days", "hours"})


def _shown(chosen: banner_rules.Chosen, labels: bool = True) -> dict[str, Any]:
    banner = chosen.banner
    matched = chosen.matched
    if not labels:
        matched = {kind: value for kind, value in matched.items() if kind in TIME_RULES}
    return {
        "id": banner["id"],
        "placement": banner["placement"],
        "content": banner["content"],
        "priority": banner["priority"],
        "experiment": banner.get("experiment"),
        "matched": {kind: _plain(kind, value) for kind, value in matched.items()},
        "affinity": round(chosen.affinity, 6),
        "reason": reason(matched, targeted=len(matched) < len(chosen.matched)),
    }


def _plain(kind: str, value: Any) -> Any:
    """A matched value as the API shows it: times in ISO 8601 like everywhere else."""
    if kind in ("start", "end"):
        return format_timestamp(datetime.fromtimestamp(value, UTC))
    return value


RULE_PHRASES = {
    "stages": "in the {} stage",
    "segments": "in segment {}",
    "sources": "came from {}",
    "visitor_type": "a {} visitor",
    "has_cart": "cart: {}",
    "cart_value_min": "cart worth {}",
    "cart_value_max": "cart worth {}",
    "categories": "browsed {}",
    "days": "on {}",
    "hours": "at {}h",
}


def reason(matched: dict[str, Any], targeted: bool = False) -> str:
    """Why this banner, for a person: the ``matched`` rules shown, and "targeted to this
    visitor" for rules of the visitor's that are not shown (``targeted``); "shown to
    everyone" when none matched."""
    parts = ["targeted to this visitor"] if targeted else []
    for kind, value in matched.items():
        if kind in ("start", "end"):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if kind == "has_cart":
            shown = "has items" if value else "empty"
        parts.append(RULE_PHRASES[kind].format(shown))
    if not parts:
        return "shown to everyone"
    return "; ".join(parts)


def banner_for_display(banner: dict[str, Any]) -> dict[str, Any]:
    """A stored banner as the admin API returns it: rule times in ISO 8601."""
    rules = dict(banner["rules"])
    for kind in ("start", "end"):
        if kind in rules:
            rules[kind] = format_timestamp(datetime.fromtimestamp(rules[kind], UTC))
    return {**banner, "rules": rules}
