"""The rule backtest: replay a log through the service's own rules and count what they did.

    report = Backtest(banners, settings, category_of).run(records)
    report.banners["b-summer"].chosen, report.nudges["email"].sent, report.to_dict()

Events are applied in (time, id) order to profiles rebuilt in memory
(``recsvc.marketing.replay``), exactly as the event writer applies them. Around each event
the nudge simulation moves time forward and follows the owner's cart
(``recsvc.marketing.nudge_sim``), and the banner simulation decides the page the event
shows, if it asks for banners (``recsvc.marketing.banner_sim``). Every decision is made by
``recsvc.core`` (targeting, banners, nudges): nothing here re-implements a rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from recsvc.core.targeting import CategoryOf
from recsvc.eventlog.reader import ReadStats
from recsvc.marketing.banner_sim import BannerSimulation
from recsvc.marketing.nudge_sim import NudgeSimulation
from recsvc.marketing.replay import ProfileReplay, timeline
from recsvc.marketing.report import Report
from recsvc.settings import Settings


def no_categories(item_id: str) -> str | None:
    """The category lookup without a catalog: ``categories`` rules never match."""
    return None


class Backtest:
    """One backtest configuration; ``run`` may be called on several logs."""

    def __init__(
        self,
        banners: list[dict[str, Any]],
        settings: Settings,
        category_of: CategoryOf = no_categories,
        simulate_impressions: bool = False,
        keep_decisions: bool = False,
        catalog_items: int | None = None,
    ) -> None:
        """``banners`` as stored (``BannerSchema``-loaded, each with an id, rule times in
        epoch seconds). ``keep_decisions`` keeps every opportunity's decision in
        ``Report.decisions``; ``catalog_items`` is only reported."""
        self.banners = banners
        self.settings = settings
        self.category_of = category_of
        self.simulate_impressions = simulate_impressions
        self.keep_decisions = keep_decisions
        self.catalog_items = catalog_items

    def run(
        self,
        records: Iterable[dict[str, Any]],
        read_stats: ReadStats | None = None,
        progress: bool = False,
    ) -> Report:
        """Replay ``records`` (any order: they are sorted first). ``read_stats``, when the
        records came from ``iter_records``, goes into the report; ``progress`` shows a bar
        on a terminal."""
        ordered = timeline(records)
        replay = ProfileReplay(self.settings)
        banners = BannerSimulation(
            self.banners,
            self.settings,
            self.category_of,
            simulate_impressions=self.simulate_impressions,
            keep_decisions=self.keep_decisions,
        )
        nudges = NudgeSimulation(self.settings)
        events = ordered.events
        bar = tqdm(events, desc="backtest", unit="event", disable=None if progress else True)
        for at, record in bar:
            # Nudges due by this event's time fire first: a purchase at this moment does
            # not cancel a nudge that was already due.
            nudges.advance(at)
            applied = replay.apply(record)
            nudges.observe(applied)
            banners.observe(applied)
        last_at = events[-1][0] if events else None
        nudges.finish(last_at)
        return Report(
            settings=self.settings,
            simulate_impressions=self.simulate_impressions,
            events=len(events),
            unusable=ordered.unusable,
            first_at=events[0][0] if events else None,
            last_at=last_at,
            visitors=len(replay.visitors),
            customers=len(replay.customers),
            catalog_items=self.catalog_items,
            banners=banners.stats,
            placements={
                placement: {
                    "opportunities": banners.opportunities[placement],
                    "filled": banners.filled[placement],
                }
                for placement in sorted(banners.placements)
            },
            nudges=nudges.stats,
            decisions=banners.decisions,
            read=read_stats,
        )
