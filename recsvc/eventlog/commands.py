"""``recsvc export-events``: the stream-to-log exporter as a command (see ``exporter``)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from recsvc.eventlog.exporter import Exporter, ExportOptions, exporter_client, stop_on_signals
from recsvc.keys import KeySpace
from recsvc.redis_client import command_line_url
from recsvc.settings import Settings

DEFAULTS = ExportOptions(out=Path("."))


@click.command("export-events")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Log folder: files go to OUT/date=YYYY-MM-DD/part-<ids>.jsonl[.gz].",
)
@click.option("--gzip", "compress", is_flag=True, help="Write .jsonl.gz files.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.batch_size,
    show_default=True,
    help="Most entries per batch (one file per day per batch).",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=DEFAULTS.max_wait,
    show_default=True,
    help="Seconds a partial batch waits for more entries before it is written.",
)
@click.option("--once", is_flag=True, help="Drain what the stream holds now, then exit.")
@click.option(
    "--consumer",
    default=DEFAULTS.consumer,
    show_default=True,
    help="Consumer name; keep it stable across restarts, unique per running exporter.",
)
@click.option(
    "--claim-idle",
    type=click.FloatRange(min=0),
    default=DEFAULTS.claim_idle,
    show_default=True,
    help="Seconds after which another consumer's pending entries are taken over.",
)
def export_events(
    out: Path,
    compress: bool,
    batch_size: int,
    max_wait: float,
    once: bool,
    consumer: str,
    claim_idle: float,
) -> None:
    """Export accepted events from the Redis stream to date-partitioned JSONL files.

    Each entry is acknowledged only once the file holding it is fsynced; killed and
    restarted, the exporter neither loses nor duplicates an event. Without --once it
    follows the stream until SIGTERM or SIGINT, finishing the batch in hand.
    """
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = ExportOptions(
        out=out,
        compress=compress,
        batch_size=batch_size,
        max_wait=max_wait,
        consumer=consumer,
        claim_idle=claim_idle,
        shards=settings.stream_shards,
    )
    # Without REDIS_URL, join the embedded server `recsvc serve` runs in the same data
    # folder. Never start one here: the service would lose Redis when the exporter exits.
    try:
        url = command_line_url(settings)
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    client = exporter_client(settings, options, url=url)
    exporter = Exporter(client, KeySpace(settings.namespace), options, settings)
    try:
        with stop_on_signals(exporter):
            stats = exporter.run_once(progress=True) if once else exporter.run_forever()
    finally:
        client.close()
    click.echo(
        f"exported {stats.events} events in {stats.files} files ({stats.batches} batches)",
        err=True,
    )
