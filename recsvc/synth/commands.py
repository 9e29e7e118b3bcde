"""``recsvc generate`` and ``recsvc replay``: parse the options, call the modules, report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from recsvc.synth import generator
from recsvc.synth import replay as replayer


@click.command()
@click.option(
    "--visitors",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Visitor ids to simulate; about 10 events each over 30 days "
    "(100,000 visitors give about a million events).",
)
@click.option("--items", type=click.IntRange(min=1), default=1_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for items.csv, events/, ground_truth.jsonl and world.json.",
)
@click.option(
    "--end-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last logged day (UTC)  [default: today]",
)
@click.option(
    "--holdout-days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Days after the log whose purchases make the ground truth.",
)
@click.option("--gzip", "compress", is_flag=True, help="Write .jsonl.gz event files.")
def generate(
    visitors: int,
    items: int,
    days: int,
    seed: int,
    out: Path,
    end_date: datetime | None,
    holdout_days: int,
    compress: bool,
) -> None:
    """Write a synthetic storefront: catalog, event logs, ground truth.

    The same arguments give the same files, byte for byte (mind --end-date, which
    defaults to today).
    """
    config = generator.GenerateConfig(
        visitors=visitors,
        items=items,
        days=days,
        seed=seed,
        out=out,
        end_date=(end_date or datetime.now(UTC)).date(),
        gzip=compress,
        holdout_days=holdout_days,
    )
    result = generator.generate(config, progress=True)
    counts = result.counts
    click.echo(
        f"{counts['events']:,} events from {counts['visitors']:,} visitors, "
        f"{counts['items']:,} items, {config.start_date} to {config.end_date}: "
        f"{counts['orders']:,} orders, {counts['abandoned_carts']:,} of "
        f"{counts['carts']:,} carts abandoned, {counts['ground_truth_visitors']:,} "
        f"visitors in the ground truth"
    )
    click.echo(f"wrote {out} in {result.elapsed_s:.1f} s ({result.events_per_s:,.0f} events/s)")


@click.command()
@click.option("--url", required=True, help="Base URL of the service, e.g. http://127.0.0.1:8000")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="A log folder (date=YYYY-MM-DD/part-*.jsonl[.gz]), a generate --out folder, "
    "or one log file.",
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--api-key", default=None, help="Sent as X-API-Key.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Send at most N events.")
def replay(url: str, source: Path, batch_size: int, api_key: str | None, limit: int | None) -> None:
    """Post an event log to a running service, batch by batch, timestamps unchanged."""
    try:
        result = replayer.replay(url, source, batch_size, api_key, limit, progress=True)
    except replayer.ReplayError as error:
        click.echo(f"sent {error.sent:,} events before stopping", err=True)
        raise click.ClickException(str(error)) from error
    click.echo(
        f"sent {result.sent:,} events in {result.batches:,} batches "
        f"({result.retries} retries) in {result.elapsed_s:.1f} s "
        f"({result.events_per_s:,.0f} events/s)"
    )
