"""A backtest's report: the counts, as a JSON-ready dict, a Markdown page and a terminal table.

``Report`` holds what the simulations counted (visitor and owner sets included, so overlaps
can be taken); ``Report.to_dict`` turns it into plain numbers, and the renderers below work
from that dict only, so what the JSON says and what the pages show cannot disagree.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsvc.core.events import format_timestamp
from recsvc.core.journey import STAGES
from recsvc.eventlog.reader import ReadStats
from recsvc.marketing.banner_sim import BannerStats, Opportunity
from recsvc.marketing.nudge_sim import COUNTERS, ChannelStats
from recsvc.settings import Settings

BANNER_COUNTERS: tuple[str, ...] = (
    "opportunities",
    "eligible",
    "chosen",
    "lost_to_cap",
    "lost_to_other_variant",
    "lost_to_higher_rank",
)


@dataclass
class Report:
    settings: Settings
    simulate_impressions: bool
    events: int
    unusable: int  # records without a required field or a valid timestamp: left out
    first_at: float | None
    last_at: float | None
    visitors: int
    customers: int
    catalog_items: int | None
    banners: dict[str, BannerStats]
    placements: dict[str, dict[str, int]]  # placement -> opportunities, filled
    nudges: dict[str, ChannelStats]
    decisions: list[Opportunity] = field(default_factory=list)
    read: ReadStats | None = None

    def banner_overlaps(self) -> list[dict[str, Any]]:
        """Every pair of banners: visitors reached by both, and eligible for both."""
        return [
            {
                "banners": [a.banner_id, b.banner_id],
                "reached_both": len(a.reached_visitors & b.reached_visitors),
                "eligible_both": len(a.eligible_visitors & b.eligible_visitors),
            }
            for a, b in itertools.combinations(self.banners.values(), 2)
        ]

    def nudge_overlaps(self) -> list[dict[str, Any]]:
        """Every pair of channels: cart owners reached by both."""
        return [
            {
                "channels": [a.channel, b.channel],
                "reached_both": len(a.reached_owners & b.reached_owners),
            }
            for a, b in itertools.combinations(self.nudges.values(), 2)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self._input(),
            "options": self._options(),
            "placements": self.placements,
            "banners": {b.banner_id: _banner_dict(b) for b in self.banners.values()},
            "banner_overlaps": self.banner_overlaps(),
            "nudges": {c.channel: _channel_dict(c) for c in self.nudges.values()},
            "nudge_overlaps": self.nudge_overlaps(),
        }

    def _input(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "unusable": self.unusable,
            "read": None if self.read is None else dataclasses.asdict(self.read),
            "first_event": _iso(self.first_at),
            "last_event": _iso(self.last_at),
            "visitors": self.visitors,
            "customers": self.customers,
            "catalog_items": self.catalog_items,
            "banners": len(self.banners),
        }

    def _options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "simulate_impressions": self.simulate_impressions,
            "marketing_timezone": s.marketing_timezone,
            "cart_abandon_seconds": s.cart_abandon_seconds,
            "nudge_delay_seconds": {
                "push": s.nudge_delay_push_seconds,
                "email": s.nudge_delay_email_seconds,
                "sms": s.nudge_delay_sms_seconds,
            },
            "nudge_holdout_share": s.nudge_holdout_share,
            "nudge_cap_per_week": s.nudge_cap_per_week,
            "nudge_quiet_hours": s.nudge_quiet_hours,
            "nudge_attribution_days": s.nudge_attribution_days,
        }


def _iso(at: float | None) -> str | None:
    return None if at is None else format_timestamp(datetime.fromtimestamp(at, UTC))


def _per_day(sets: dict[str, set[str]]) -> dict[str, int]:
    return {day: len(sets[day]) for day in sorted(sets)}


def _per_stage(sets: dict[str, set[str]]) -> dict[str, int]:
    known = [stage for stage in STAGES if stage in sets]
    return {stage: len(sets[stage]) for stage in [*known, *sorted(set(sets) - set(known))]}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _banner_dict(stats: BannerStats) -> dict[str, Any]:
    return {
        "placement": stats.placement,
        "priority": stats.priority,
        "experiment": stats.experiment,
        **{name: getattr(stats, name) for name in BANNER_COUNTERS},
        "visitors_eligible": len(stats.eligible_visitors),
        "visitors_reached": len(stats.reached_visitors),
        "reached_per_day": _per_day(stats.reached_by_day),
        "reached_per_stage": _per_stage(stats.reached_by_stage),
    }


def _channel_dict(stats: ChannelStats) -> dict[str, Any]:
    return {
        **stats.counts(),
        "recovery_rate": _rate(stats.recovered, stats.sent),
        "holdout_recovery_rate": _rate(stats.holdout_recovered, stats.held_out),
        "owners_reached": len(stats.reached_owners),
        "reached_per_day": _per_day(stats.reached_by_day),
        "reached_per_stage": _per_stage(stats.reached_by_stage),
    }


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``backtest.json`` and ``backtest.md`` under ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "backtest.json", out / "backtest.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(to_markdown(report))
    return json_path, md_path


# --- rendering --------------------------------------------------------------------------

BANNER_COLUMNS = (
    ("banner", "id"),
    ("placement", "placement"),
    ("prio", "priority"),
    ("pages", "opportunities"),
    ("eligible", "eligible"),
    ("chosen", "chosen"),
    ("capped", "lost_to_cap"),
    ("variant", "lost_to_other_variant"),
    ("outranked", "lost_to_higher_rank"),
    ("reached", "visitors_reached"),
)
NUDGE_COLUMNS = (
    ("channel", "channel"),
    ("due", "due"),
    ("sent", "sent"),
    ("held_out", "held_out"),
    ("capped", "capped"),
    ("quiet", "quiet_delayed"),
    ("bought", "cancelled_by_purchase"),
    ("emptied", "cancelled_cart_emptied"),
    ("resched", "rescheduled"),
    ("reached", "owners_reached"),
    ("recovered", "recovered"),
    ("hold_rec", "holdout_recovered"),
)


def _banner_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": banner_id, **row} for banner_id, row in report["banners"].items()]


def _nudge_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"channel": channel, **row} for channel, row in report["nudges"].items()]


def _cells(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> list[list[str]]:
    return [["" if row[key] is None else str(row[key]) for _, key in columns] for row in rows]


def to_table(report: dict[str, Any]) -> str:
    """The compact summary printed to the terminal."""
    info = report["input"]
    lines = [
        f"{info['events']:,} events, {info['visitors']:,} visitors, "
        f"{info['first_event']} to {info['last_event']}"
        + ("  (impressions simulated)" if report["options"]["simulate_impressions"] else ""),
        "",
        _aligned([h for h, _ in BANNER_COLUMNS], _cells(_banner_rows(report), BANNER_COLUMNS)),
        "",
        _aligned([h for h, _ in NUDGE_COLUMNS], _cells(_nudge_rows(report), NUDGE_COLUMNS)),
    ]
    return "\n".join(lines)


def _aligned(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Iterable[str]) -> str:
        # First column (a name) to the left, numbers to the right.
        parts = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _reach_table(rows: dict[str, dict[str, Any]], key: str, order: list[str]) -> str:
    """Rows: days or stages; columns: banners or channels."""
    names = list(rows)
    return _md_table(
        [key.split("_")[-1], *names],
        ([label, *(rows[name][key].get(label, 0) for name in names)] for label in order),
    )


def _labels(rows: dict[str, dict[str, Any]], key: str, stages: bool) -> list[str]:
    found = {label for row in rows.values() for label in row[key]}
    if stages:
        return [s for s in STAGES if s in found] + sorted(found - set(STAGES))
    return sorted(found)


def to_markdown(report: dict[str, Any]) -> str:
    info, options = report["input"], report["options"]
    read = info["read"]
    dropped = (
        ""
        if read is None
        else f" read from {read['lines']:,} lines in {read['files']} files (dropped: "
        f"{read['duplicates']:,} duplicates, {read['malformed']:,} malformed lines, "
        f"{info['unusable']:,} records without a type, visitor or valid timestamp)"
    )
    parts = [
        "# Rule backtest",
        "",
        f"{info['events']:,} events{dropped}, {info['first_event']} to {info['last_event']}; "
        f"{info['visitors']:,} visitors, {info['customers']:,} customers; "
        f"{info['banners']} banners; catalog: "
        + (
            "none (category rules never match)"
            if info["catalog_items"] is None
            else f"{info['catalog_items']:,} items"
        )
        + ".",
        "",
        "Frequency caps count "
        + (
            "logged impressions plus every banner this backtest chose (what-if)."
            if options["simulate_impressions"]
            else "the impressions the log recorded."
        )
        + f" Days are store-local ({options['marketing_timezone']}).",
        "",
        *_banner_section(report),
        *_nudge_section(report),
    ]
    return "\n".join(parts) + "\n"


def _banner_section(report: dict[str, Any]) -> list[str]:
    banners = report["banners"]
    if not banners:
        return ["## Banners", "", "No banners.", ""]
    placements = _md_table(
        ["placement", "pages", "filled"],
        ([p, row["opportunities"], row["filled"]] for p, row in report["placements"].items()),
    )
    overlaps = [o for o in report["banner_overlaps"] if o["eligible_both"]]
    overlap_table = _md_table(
        ["banner", "banner", "eligible for both", "reached by both"],
        ([*o["banners"], o["eligible_both"], o["reached_both"]] for o in overlaps),
    )
    return [
        "## Banners",
        "",
        "Eligible = chosen + capped + lost to another variant + outranked. Reached: unique"
        " visitors the banner was chosen for.",
        "",
        _md_table([h for h, _ in BANNER_COLUMNS], _cells(_banner_rows(report), BANNER_COLUMNS)),
        "",
        "### Pages asking for banners",
        "",
        placements,
        "",
        "### Visitors reached per day",
        "",
        _reach_table(banners, "reached_per_day", _labels(banners, "reached_per_day", False)),
        "",
        "### Visitors reached per journey stage (stage at the time)",
        "",
        _reach_table(banners, "reached_per_stage", _labels(banners, "reached_per_stage", True)),
        "",
        "### Overlaps (pairs with a visitor eligible for both)",
        "",
        overlap_table if overlaps else "None.",
        "",
    ]


def _nudge_section(report: dict[str, Any]) -> list[str]:
    nudges = report["nudges"]
    overlaps = _md_table(
        ["channel", "channel", "owners reached by both"],
        ([*o["channels"], o["reached_both"]] for o in report["nudge_overlaps"]),
    )
    rates = _md_table(
        ["channel", "sent", "recovered", "rate", "held out", "recovered anyway", "rate"],
        (
            [
                c,
                r["sent"],
                r["recovered"],
                r["recovery_rate"],
                r["held_out"],
                r["holdout_recovered"],
                r["holdout_recovery_rate"],
            ]
            for c, r in nudges.items()
        ),
    )
    return [
        "## Abandoned-cart nudges",
        "",
        "Per channel, each cart change schedules a nudge; it ends sent, held out, capped,"
        " cancelled (purchase, or cart emptied), rescheduled (the cart changed again) or"
        " pending when the log ends. Quiet: delayed to the end of quiet hours. Reached:"
        " unique cart owners sent a nudge.",
        "",
        _md_table(
            ["channel", *COUNTERS, "owners reached"],
            ([c, *(r[name] for name in COUNTERS), r["owners_reached"]] for c, r in nudges.items()),
        ),
        "",
        "### Recovery (a purchase within the attribution window)",
        "",
        "The held-out rate is natural recovery: the baseline a channel's rate is compared with.",
        "",
        rates,
        "",
        "### Owners reached per day",
        "",
        _reach_table(nudges, "reached_per_day", _labels(nudges, "reached_per_day", False)),
        "",
        "### Owners reached per journey stage",
        "",
        _reach_table(nudges, "reached_per_stage", _labels(nudges, "reached_per_stage", True)),
        "",
        "### Overlaps",
        "",
        overlaps,
        "",
    ]
