"""``recsvc backtest-rules``: parse the options, load the inputs, run the backtest, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from recsvc.core.targeting import CategoryOf
from recsvc.eventlog.reader import ReadStats, iter_records
from recsvc.keys import KeySpace
from recsvc.marketing.backtest import Backtest, no_categories
from recsvc.marketing.inputs import InputError, load_banners_file, load_catalog, normalise_stored
from recsvc.marketing.report import to_table, write_report
from recsvc.redis_client import UNAVAILABLE_ERRORS, command_line_url, connect
from recsvc.settings import Settings
from recsvc.store.banners import BannerStore


@click.command("backtest-rules")
@click.option(
    "--events",
    "events_path",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="An exported log folder (date=YYYY-MM-DD/part-*.jsonl[.gz]), a generate --out "
    "folder, or one log file.",
)
@click.option(
    "--banners",
    "banners_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='JSON: a list of banners or {"banners": [...]}, as POST /v1/admin/banners takes '
    "them, each with an id  [default: the banners stored in the service's Redis]",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Item categories for category rules and affinity: items.csv (item_id,category) or "
    "JSON lines of catalog items. Without it category rules never match.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("backtest"),
    show_default=True,
    help="Folder for backtest.json and backtest.md.",
)
@click.option(
    "--simulate-impressions",
    is_flag=True,
    help="Count every banner the backtest chooses as shown, on top of the logged "
    "impressions, for frequency caps: the what-if for banners the log never showed.",
)
def backtest_rules(
    events_path: Path,
    banners_file: Path | None,
    catalog: Path | None,
    out: Path,
    simulate_impressions: bool,
) -> None:
    """Replay an event log through the live banner and nudge rules and report whom each
    would have reached: per day, per journey stage, overlaps, frequency-cap losses and
    nudges cancelled by a purchase."""
    started = time.perf_counter()
    settings = Settings.from_env()
    banners = _file_banners(banners_file) if banners_file else _stored_banners(settings)
    category_of, catalog_items = _categories(catalog)
    stats = ReadStats()
    backtest = Backtest(
        banners,
        settings,
        category_of,
        simulate_impressions=simulate_impressions,
        keep_decisions=False,
        catalog_items=catalog_items,
    )
    report = backtest.run(iter_records(events_path, stats), read_stats=stats, progress=True)
    if not report.events:
        raise click.ClickException(f"no event records in {events_path}")
    data = report.to_dict()
    json_path, md_path = write_report(data, out)
    click.echo(_read_line(stats, report.unusable))
    click.echo(to_table(data))
    click.echo(f"wrote {json_path} and {md_path} in {time.perf_counter() - started:.1f} s")


def _file_banners(path: Path) -> list[dict[str, Any]]:
    try:
        return load_banners_file(path)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="--banners") from error


def _stored_banners(settings: Settings) -> list[dict[str, Any]]:
    """The banners the service serves now, read the way the other tools reach its Redis."""
    try:
        url = command_line_url(settings)
    except LookupError as error:
        raise click.ClickException(f"{error} Or pass --banners FILE.") from error
    try:
        stored = BannerStore(
            connect(url, settings, socket_timeout=30), KeySpace(settings.namespace)
        )
        banners = [normalise_stored(banner) for banner in stored.all()]
    except UNAVAILABLE_ERRORS as error:
        raise click.ClickException(f"Redis at {url} is not reachable ({error})") from error
    if not banners:
        click.echo("no banners stored in the service: reporting nudges only", err=True)
    return banners


def _categories(path: Path | None) -> tuple[CategoryOf, int | None]:
    if path is None:
        click.echo("no --catalog: category rules never match", err=True)
        return no_categories, None
    try:
        categories = load_catalog(path)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="--catalog") from error
    return categories.get, len(categories)


def _read_line(stats: ReadStats, unusable: int) -> str:
    """What the read kept and dropped: dropped lines are never silent."""
    line = f"read {stats.records:,} records from {stats.files} files ({stats.lines:,} lines)"
    dropped = []
    if stats.duplicates:
        dropped.append(f"{stats.duplicates:,} duplicates")
    if stats.malformed:
        examples = ", ".join(stats.malformed_examples)
        dropped.append(f"{stats.malformed:,} malformed lines (e.g. {examples})")
    if unusable:
        dropped.append(f"{unusable:,} records without a type, visitor or valid timestamp")
    return line + ("; dropped " + ", ".join(dropped) if dropped else "; none dropped")
