"""Export the event stream to the event log: exactly once, durably, then acknowledge.

The stream is sharded (``keys.events_stream(shard)``, shards ``0..stream_shards-1``, see
``docs/redis.md``). For each shard the exporter reads as consumer ``<consumer>`` of that
shard's consumer group ``EXPORTER_GROUP`` and writes each batch of entries to the log
layout of ``recsvc.eventlog`` (``DIR/date=YYYY-MM-DD/part-<name>.jsonl[.gz]``); one
thread per shard follows it. Everything below holds per shard. The exporter also runs the
ingestion relay's sweeper (``recsvc.store.outbox.Relay.sweep``): accepted events whose
writer died before relaying them reach the stream that way.

Contract: an entry is acknowledged (XACK) only after every file holding it is durable
(written to a temporary file, flushed, fsynced, renamed over its final name, directory
fsynced). Killed at any moment and restarted, the exporter neither loses nor duplicates
an event in the files, because:

- a batch's file names come from the batch's own stream id range
  (``part-<first id>-<last id>``), so writing the same entries again replaces the same
  files instead of adding new ones;
- the only unacknowledged entries a consumer holds are the one batch it was accumulating
  or writing when it died. On start it re-reads exactly those (XREADGROUP from id 0) and
  writes them as one batch before it reads anything new: same entries, same names.
- entries left pending by another consumer that has been idle for ``claim_idle`` seconds
  (a dead exporter) are claimed consumer by consumer, whole, and written the same way,
  so that a batch the dead consumer had already written also lands on its own files.

Trim policy: after acknowledging, the stream is trimmed (XTRIM MINID, exact) to the
oldest entry that some consumer group on the stream has not acknowledged: the oldest
pending entry of the group, or the entry just after the group's last-delivered id when
nothing is pending; the minimum over every group. Nothing unexported is ever removed,
and the ingestion's length guard (``stream_max_len``) stays meaningful: the stream holds
only what is not exported yet.

Uses only commands Redis 6.2 has (the embedded server is 6.2).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import random
import re
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from recsvc.core.events import event_day
from recsvc.keys import EXPORTER_GROUP, KeySpace
from recsvc.redis_client import UNAVAILABLE_ERRORS, connect
from recsvc.settings import Settings
from recsvc.store.outbox import Relay
from recsvc.store.stream import ENTRY_FIELD

log = logging.getLogger(__name__)

# One stream entry as redis-py returns it: (id, fields); fields is empty when the entry
# was deleted from the stream while it was still pending.
Entry = tuple[bytes, dict[bytes, bytes]]

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Entries that are not event records go here, never into a partition: nothing accepted is
# dropped silently, and readers (which glob ``part-*``) do not see them.
REJECTED_DIR = "_rejected"
# Pages for reading a pending list and listing a consumer's pending ids.
PAGE_SIZE = 1000
# gzip's own default level would be 9: several times slower for a few percent smaller.
GZIP_LEVEL = 6


@dataclass(frozen=True)
class ExportOptions:
    """How the exporter runs; the CLI's defaults are these."""

    out: Path
    compress: bool = False
    # 5,000 entries of ~300 bytes: about a second of peak ingestion, 1.5 MB per file.
    batch_size: int = 5000
    # A batch is written this long after its first entry arrived, even if not full, so a
    # quiet store's events still reach the log within seconds.
    max_wait: float = 2.0
    # Stable, so that a restarted exporter finds the entries it left pending. Two exporters
    # running at once must use two names.
    consumer: str = "exporter-1"
    # A consumer idle this long is taken for dead and its pending entries are claimed. Far
    # above any batch's write time, so a live (slow) exporter is never robbed.
    claim_idle: float = 300.0
    # The longest one blocking read waits: a stop request is noticed within this time.
    poll: float = 1.0
    # Seconds between progress lines in follow mode.
    log_every: float = 30.0
    # Consecutive Redis failures a ``--once`` run tolerates before giving up (follow mode
    # retries forever).
    once_max_failures: int = 5
    # Stream shards to read (``Settings.stream_shards``): 0..shards-1.
    shards: int = Settings.stream_shards
    # Seconds between sweeps of the ingestion relay (accepted events a dead writer left).
    sweep_every: float = 5.0


@dataclass
class ExportStats:
    """What a run has done so far."""

    events: int = 0  # event records written to date partitions
    files: int = 0  # files written (a rewrite after a restart counts again)
    batches: int = 0
    rejected: int = 0  # entries that were not event records, kept under _rejected/
    deleted: int = 0  # pending entries already gone from the stream: nothing to write
    recovered: int = 0  # entries re-written from this consumer's own pending list
    claimed: int = 0  # entries claimed from dead consumers


# --- stream ids ------------------------------------------------------------------------


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def parse_stream_id(raw: bytes | str) -> tuple[int, int]:
    """``b"1700000000000-5"`` -> ``(1700000000000, 5)``."""
    millis, _, seq = _text(raw).partition("-")
    return int(millis), int(seq or 0)


def _format_id(parsed: tuple[int, int]) -> str:
    return f"{parsed[0]}-{parsed[1]}"


def _successor(raw: bytes | str) -> str:
    """The smallest stream id greater than ``raw``."""
    millis, seq = parse_stream_id(raw)
    if seq == 2**64 - 1:
        return _format_id((millis + 1, 0))
    return _format_id((millis, seq + 1))


def batch_file_name(
    first_id: bytes | str, last_id: bytes | str, compress: bool, shard: int = 0
) -> str:
    """``part-<first>-<last>[-s<shard>].jsonl[.gz]``, ids written ``<ms>_<seq>``: a function
    of the batch's shard and id range only, so rewriting a batch replaces its files.
    Zero-padded so that names sort in stream order (as long as fewer than a million
    entries share a millisecond), which is the order readers take the files of a
    partition in; shards interleave by time. Shard 0 has no suffix (the name one stream
    had)."""

    def clean(raw: bytes | str) -> str:
        millis, seq = parse_stream_id(raw)
        return f"{millis:013d}_{seq:06d}"

    suffix = ".jsonl.gz" if compress else ".jsonl"
    shard_mark = f"-s{shard}" if shard else ""
    return f"part-{clean(first_id)}-{clean(last_id)}{shard_mark}{suffix}"


# --- durable files ---------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents); a new directory's entry is fsynced into its parent,
    or a crash could forget a partition whose files were fsynced."""
    if path.is_dir():
        return
    _ensure_dir(path.parent)
    path.mkdir(exist_ok=True)
    _fsync_dir(path.parent)


def temp_path(path: Path) -> Path:
    """Where ``path`` is written before the rename: hidden, and not matched by readers."""
    return path.with_name(f".{path.name}.tmp")


def write_durably(path: Path, lines: Sequence[str], compress: bool) -> None:
    """Write ``lines`` to ``path`` atomically and durably: a reader sees the old file or
    the whole new one, and after return the content survives a power cut. Replaces an
    existing file. The temporary name is fixed, so a rewrite after a crash replaces the
    leftover too."""
    _ensure_dir(path.parent)
    data = "".join(lines).encode("utf-8")
    tmp = temp_path(path)
    with tmp.open("wb") as raw:
        if compress:
            # mtime=0 and no name in the header: the same lines give the same bytes.
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
            ) as packed:
                packed.write(data)
        else:
            raw.write(data)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# --- batches ---------------------------------------------------------------------------


@dataclass
class BatchContent:
    """A batch's entries sorted into date partitions (JSONL lines) and rejects."""

    partitions: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    deleted: int = 0

    @property
    def events(self) -> int:
        return sum(len(lines) for lines in self.partitions.values())


def _record_of(fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The event record in an entry, or None when the entry is not one we can file."""
    try:
        record = json.loads(fields[ENTRY_FIELD])
    except (KeyError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("id"), str) or not isinstance(record.get("timestamp"), str):
        return None
    # The day becomes a directory name: it must be a date, never a path.
    return record if DAY_PATTERN.match(event_day(record)) else None


def _rejected_line(entry_id: bytes, fields: dict[bytes, bytes]) -> str:
    raw = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    return json.dumps({"stream_id": entry_id.decode(), "fields": raw}, ensure_ascii=False) + "\n"


def sort_batch(entries: Sequence[Entry]) -> BatchContent:
    """Sort entries into partitions by ``event_day`` (the event's UTC date), keeping
    stream order within each; entries that are not event records become rejects."""
    content = BatchContent()
    for entry_id, fields in entries:
        if not fields:
            log.error("pending entry no longer in the stream", extra={"id": entry_id.decode()})
            content.deleted += 1
            continue
        record = _record_of(fields)
        if record is None:
            content.rejected.append(_rejected_line(entry_id, fields))
            continue
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        content.partitions.setdefault(event_day(record), []).append(line)
    return content


def write_batch(
    out: Path, entries: Sequence[Entry], compress: bool, shard: int = 0
) -> tuple[BatchContent, list[Path]]:
    """Durably write one batch (entries in stream order) under ``out``: one file per date
    partition, all named from the batch's first and last stream ids. Returns what was
    written and the paths."""
    if not entries:
        return BatchContent(), []
    content = sort_batch(entries)
    name = batch_file_name(entries[0][0], entries[-1][0], compress, shard)
    paths = []
    for day, lines in sorted(content.partitions.items()):
        path = Path(out) / f"date={day}" / name
        write_durably(path, lines, compress)
        paths.append(path)
    if content.rejected:
        path = Path(out) / REJECTED_DIR / name.replace("part-", "rejected-", 1)
        write_durably(path, content.rejected, compress)
        paths.append(path)
        log.error("entries that are not event records", extra={"count": len(content.rejected)})
    return content, paths


# --- the consumer group and trimming ---------------------------------------------------


def stream_vanished(exc: redis.ResponseError) -> bool:
    """Whether a command failed because the stream or the group no longer exists (a
    blocked XREADGROUP learns it from an UNBLOCKED error on Redis 7.x)."""
    message = str(exc)
    return any(mark in message for mark in ("NOGROUP", "no such key", "UNBLOCKED"))


def ensure_group(client: redis.Redis, keys: KeySpace, shard: int = 0) -> None:
    """Create the exporter's consumer group on a shard at id 0 (creating the stream when
    missing), so that entries added before the first export are exported too. Idempotent."""
    try:
        client.xgroup_create(keys.events_stream(shard), EXPORTER_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def safe_trim_id(client: redis.Redis, keys: KeySpace, shard: int = 0) -> str | None:
    """The oldest stream id some consumer group still needs (see the module's trim
    policy), or None when the stream must not be trimmed now (no group, or the groups
    changed while looking). Read in one MULTI so the groups' pending lists and delivery
    positions are one consistent snapshot."""
    stream = keys.events_stream(shard)
    try:
        names = [group["name"] for group in client.xinfo_groups(stream)]
    except redis.ResponseError:  # no stream: nothing to trim
        return None
    if not names:
        return None
    pipe = client.pipeline(transaction=True)
    pipe.xinfo_groups(stream)
    for name in names:
        pipe.xpending(stream, name)
    try:
        groups, *pendings = pipe.execute()
    except redis.ResponseError:  # a group was destroyed meanwhile: try next time
        return None
    # A cluster transaction hands back replies less parsed (bytes keys, XPENDING as a list).
    groups = [{_text(k): v for k, v in g.items()} for g in groups]
    pendings = [_pending_summary(p) for p in pendings]
    if sorted(g["name"] for g in groups) != sorted(names):
        return None  # a group was created meanwhile: it may need everything
    delivered = {g["name"]: g["last-delivered-id"] for g in groups}
    bounds = [
        parse_stream_id(p["min"]) if p["pending"] else parse_stream_id(_successor(delivered[n]))
        for n, p in zip(names, pendings, strict=True)
    ]
    return _format_id(min(bounds))


def _pending_summary(reply: Any) -> dict[str, Any]:
    """XPENDING's summary as a dict with ``pending`` and ``min``, however it was parsed."""
    if isinstance(reply, dict):
        return reply
    return {"pending": int(reply[0]), "min": reply[1]}


def trim_exported(client: redis.Redis, keys: KeySpace, shard: int = 0) -> int:
    """Remove the entries every consumer group has acknowledged; returns how many."""
    bound = safe_trim_id(client, keys, shard)
    if bound is None:
        return 0
    # Exact, not "~": the approximate form may keep a few exported entries, never fewer,
    # but exact keeps XLEN equal to the unexported backlog, which the lag figure reports.
    return int(client.xtrim(keys.events_stream(shard), minid=bound, approximate=False))


def exporter_lag(client: redis.Redis, keys: KeySpace, shards: int | None = None) -> dict[str, Any]:
    """How far the exporter is behind over all shards, for /metrics: the shards' figures
    (``shard_lag``) summed (``stream_length``, ``pending``), the most ``consumers``, the
    oldest unexported entry, and ``shards``, the per-shard figures. ``shards`` defaults to
    ``RECSVC_STREAM_SHARDS``."""
    shards = shards or Settings.from_env().stream_shards
    each = [shard_lag(client, keys, shard) for shard in range(shards)]
    oldest = [s for s in each if s["oldest_unexported_id"]]
    first = max(oldest, key=lambda s: s["oldest_unexported_age_seconds"], default=None)
    return {
        "stream_length": sum(s["stream_length"] for s in each),
        "pending": sum(s["pending"] for s in each),
        "last_delivered_id": each[0]["last_delivered_id"],
        "consumers": max(s["consumers"] for s in each),
        "oldest_unexported_id": first["oldest_unexported_id"] if first else None,
        "oldest_unexported_age_seconds": first["oldest_unexported_age_seconds"] if first else 0.0,
        "shards": each,
    }


def shard_lag(client: redis.Redis, keys: KeySpace, shard: int = 0) -> dict[str, Any]:
    """How far the exporter is behind on one shard.

    Returns ``stream_length`` (entries in the stream: unexported ones, as exported ones are
    trimmed), ``pending`` (delivered to an exporter, not yet acknowledged),
    ``last_delivered_id`` (str, None before the group exists), ``consumers``,
    ``oldest_unexported_id`` (str or None) and ``oldest_unexported_age_seconds`` (by the
    entry id's Redis-clock milliseconds; 0.0 when everything is exported). Raises the
    errors in ``UNAVAILABLE_ERRORS`` when Redis is unreachable.
    """
    stream = keys.events_stream(shard)
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no stream yet: nothing accepted, nothing to export
        groups = []
    group = next((g for g in groups if _text(g["name"]) == EXPORTER_GROUP), None)
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    if group is None:
        pipe.xrange(stream, "-", "+", count=1)
        length, first = pipe.execute()
        pending: dict[str, Any] = {"pending": 0, "min": None}
    else:
        pipe.xpending(stream, EXPORTER_GROUP)
        pipe.xrange(stream, "(" + _text(group["last-delivered-id"]), "+", count=1)
        length, pending, first = pipe.execute()
    candidates = [parse_stream_id(first[0][0])] if first else []
    if pending["pending"]:
        candidates.append(parse_stream_id(pending["min"]))
    oldest = min(candidates) if candidates else None
    age = max(0.0, time.time() - oldest[0] / 1000) if oldest else 0.0
    return {
        "stream_length": int(length),
        "pending": int(pending["pending"]),
        "last_delivered_id": _text(group["last-delivered-id"]) if group else None,
        "consumers": int(group["consumers"]) if group else 0,
        "oldest_unexported_id": _format_id(oldest) if oldest else None,
        "oldest_unexported_age_seconds": round(age, 3),
    }


# --- the exporter ----------------------------------------------------------------------


def exporter_client(
    settings: Settings, options: ExportOptions, url: str | None = None
) -> redis.Redis:
    """A client fit for the exporter: a socket timeout longer than a blocking read, and no
    silent command retries. A retried XREADGROUP whose first reply was lost would leave
    entries pending behind the exporter's back; surfaced errors make it re-read its own
    pending list instead."""
    return connect(
        url or settings.redis_url,
        settings,
        socket_timeout=settings.redis_socket_timeout + options.poll,
        retry=Retry(NoBackoff(), 0),
        # Named, so that CLIENT LIST shows which connection is the exporter (a client name
        # may not contain spaces).
        client_name=re.sub(r"\s", "_", f"{settings.namespace}:exporter:{options.consumer}"),
    )


class ShardExporter:
    """Moves one shard's stream entries to the event log (see the module docstring for the
    contract).

    ``client`` should come from ``exporter_client``. ``run_once`` drains and returns;
    ``run_forever`` follows until ``request_stop``. Redis outages are retried with backoff;
    file system errors (disk full, permissions) propagate: nothing is acknowledged before
    it is written, so a restart resumes where this run stopped.
    """

    def __init__(
        self, client: redis.Redis, keys: KeySpace, options: ExportOptions, shard: int = 0
    ) -> None:
        self.client = client
        self.keys = keys
        self.options = options
        self.shard = shard
        self.stream = keys.events_stream(shard)
        self.stats = ExportStats()
        self._stop_requested = False
        self._next_housekeeping = 0.0
        self._next_log = time.monotonic() + options.log_every
        self._progress: Any = None  # a tqdm bar during run_once(progress=True)

    # --- public ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the batch in hand is written and acknowledged (signal-safe)."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def run_once(self, progress: bool = False) -> ExportStats:
        """Export this consumer's pending entries, dead consumers' pending entries, and
        every entry in the stream up to the newest one present at the start; then return.
        With ``progress``, draw a tqdm bar (on a terminal)."""
        if not progress:
            return self._run(once=True)
        from tqdm import tqdm  # deferred: only interactive runs draw a bar

        with tqdm(total=self._backlog(), unit="event", disable=None) as bar:
            self._progress = bar
            try:
                return self._run(once=True)
            finally:
                self._progress = None

    def run_forever(self) -> ExportStats:
        """Follow the stream, writing a batch every ``batch_size`` entries or ``max_wait``
        seconds, until ``request_stop``."""
        return self._run(once=False)

    # --- the loop --------------------------------------------------------------------

    def _run(self, once: bool) -> ExportStats:
        """Both modes' loop: (re)start, then one batch per step. After any Redis error it
        goes back through ``_start``, which writes what was read but not acknowledged."""
        failures, started = 0, False
        newest: tuple[int, int] | None = None
        while not self._stop_requested:
            try:
                if not started:
                    newest, started = self._start(), True
                if self._step_once(newest) if once else self._step_follow():
                    break
                failures = 0
            except UNAVAILABLE_ERRORS as exc:
                failures += 1
                if once and failures > self.options.once_max_failures:
                    raise
                started = False
                self._back_off(failures, exc)
            except redis.ResponseError as exc:
                if not stream_vanished(exc):
                    raise
                # Deleted under us (FLUSHALL, an operator): recreate the group, go on.
                log.warning("events stream or group missing (%s); recreating it", exc)
                started = False
        self._log_progress(final=True)
        return self.stats

    def _start(self) -> tuple[int, int] | None:
        """Create the group, finish this consumer's and dead consumers' pending batches;
        returns the newest id in the stream now (what a --once run drains up to)."""
        _ensure_dir(Path(self.options.out))
        ensure_group(self.client, self.keys, self.shard)
        self._housekeeping()
        newest = self.client.xrevrange(self.stream, "+", "-", count=1)
        return parse_stream_id(newest[0][0]) if newest else None

    def _step_once(self, newest: tuple[int, int] | None) -> bool:
        """Export one batch of what is there now; True when the drain is complete."""
        if newest is None:
            return True
        batch = self._read_new(self.options.batch_size, block=None)
        if batch:
            self._export(batch)
        return len(batch) < self.options.batch_size or parse_stream_id(batch[-1][0]) >= newest

    def _step_follow(self) -> bool:
        """Export one batch (or wait ``poll`` seconds for one); run the periodic chores."""
        batch = self._accumulate()
        if batch:
            self._export(batch)
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._housekeeping()
        if now >= self._next_log:
            self._log_progress()
        return False

    def _accumulate(self) -> list[Entry]:
        """Read new entries until the batch is full or ``max_wait`` has passed since its
        first entry arrived; an empty list after ``poll`` seconds of silence."""
        batch: list[Entry] = []
        first_at: float | None = None
        while len(batch) < self.options.batch_size and not self._stop_requested:
            if first_at is None:
                wait = self.options.poll
            else:
                wait = min(self.options.max_wait - (time.monotonic() - first_at), self.options.poll)
                if wait <= 0:
                    break
            page = self._read_new(self.options.batch_size - len(batch), block=wait)
            if page:
                first_at = first_at if first_at is not None else time.monotonic()
                batch.extend(page)
            elif first_at is None:
                break
        return batch

    # --- reading ---------------------------------------------------------------------

    def _read(self, start: bytes | str, count: int, block: float | None) -> list[Entry]:
        # BLOCK 0 would mean "forever": a positive wait is at least one millisecond.
        block_ms = None if block is None else max(1, int(block * 1000))
        reply = self.client.xreadgroup(
            EXPORTER_GROUP, self.options.consumer, {self.stream: start}, count=count, block=block_ms
        )
        return list(reply[0][1]) if reply else []

    def _read_new(self, count: int, block: float | None) -> list[Entry]:
        return self._read(">", count, block)

    def _read_own_pending(self) -> list[Entry]:
        """Every entry delivered to this consumer and not acknowledged, oldest first."""
        entries: list[Entry] = []
        cursor: bytes | str = "0"
        while page := self._read(cursor, PAGE_SIZE, block=None):
            entries.extend(page)
            cursor = page[-1][0]
        return entries

    # --- recovery --------------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Finish this consumer's own pending batch (left by a crash or a lost reply),
        then take over dead consumers' batches, one consumer at a time."""
        self._export_own_pending()
        for name in self._dead_consumers():
            if self._claim_all(name):
                self._export_own_pending()
        self._next_housekeeping = time.monotonic() + self.options.claim_idle

    def _export_own_pending(self) -> int:
        # Exactly the batch in flight when this consumer stopped: the same ids give the
        # same file names, so files it had already written are replaced, not duplicated.
        pending = self._read_own_pending()
        if pending:
            log.info("re-exporting %d pending entries", len(pending), extra={"count": len(pending)})
            self._export(pending)
            self.stats.recovered += len(pending)
        return len(pending)

    def _dead_consumers(self) -> list[str]:
        idle_ms = int(self.options.claim_idle * 1000)
        return [
            _text(info["name"])
            for info in self.client.xinfo_consumers(self.stream, EXPORTER_GROUP)
            if _text(info["name"]) != self.options.consumer
            and info["pending"]
            and info["idle"] >= idle_ms
        ]

    def _claim_all(self, consumer: str) -> int:
        """Move all of ``consumer``'s pending entries idle for ``claim_idle`` to this
        consumer in one XCLAIM, so its batch stays whole."""
        idle_ms = int(self.options.claim_idle * 1000)
        ids: list[bytes] = []
        start: bytes | str = "-"
        while page := self.client.xpending_range(
            self.stream, EXPORTER_GROUP, start, "+", PAGE_SIZE, consumername=consumer, idle=idle_ms
        ):
            ids.extend(item["message_id"] for item in page)
            start = b"(" + page[-1]["message_id"]
        if not ids:
            return 0
        claimed = self.client.xclaim(
            self.stream, EXPORTER_GROUP, self.options.consumer, idle_ms, ids, justid=True
        )
        log.warning(
            "claimed %d pending entries from idle consumer %s",
            len(claimed),
            consumer,
            extra={"consumer": consumer, "count": len(claimed)},
        )
        self.stats.claimed += len(claimed)
        return len(claimed)

    # --- writing ---------------------------------------------------------------------

    def _export(self, batch: Sequence[Entry]) -> None:
        """Write, then acknowledge (one XACK: all of the batch or none), then trim."""
        content, paths = write_batch(self.options.out, batch, self.options.compress, self.shard)
        self.client.xack(self.stream, EXPORTER_GROUP, *(entry_id for entry_id, _ in batch))
        trim_exported(self.client, self.keys, self.shard)
        self._count(content, paths, len(batch))

    def _count(self, content: BatchContent, paths: list[Path], entries: int) -> None:
        self.stats.batches += 1
        self.stats.events += content.events
        self.stats.files += len(paths)
        self.stats.rejected += len(content.rejected)
        self.stats.deleted += content.deleted
        if self._progress is not None:
            self._progress.update(entries)
        log.debug("batch exported", extra={"entries": entries, "files": len(paths)})

    # --- progress and backoff --------------------------------------------------------

    def _backlog(self) -> int:
        try:
            return int(self.client.xlen(self.stream))
        except UNAVAILABLE_ERRORS:
            return 0

    def _log_progress(self, final: bool = False) -> None:
        self._next_log = time.monotonic() + self.options.log_every
        try:
            lag = shard_lag(self.client, self.keys, self.shard)
        except redis.RedisError:  # a progress line never stops the export
            lag = {"stream_length": None, "pending": None}
        s = self.stats
        log.info(
            "%s: %d events exported in %d files (%d batches); stream length %s, pending %s",
            "export finished" if final else "export progress",
            s.events,
            s.files,
            s.batches,
            lag["stream_length"],
            lag["pending"],
            extra={"events": s.events, "files": s.files, "batches": s.batches, **lag},
        )

    def _back_off(self, failures: int, exc: Exception) -> None:
        """Sleep 0.5 s, 1 s, 2 s ... up to 30 s (with jitter), waking early on a stop."""
        delay = min(30.0, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
        log.warning(
            "redis unavailable (%s); retrying in %.1f s",
            exc,
            delay,
            extra={"failures": failures},
        )
        deadline = time.monotonic() + delay
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))


class Exporter:
    """Exports every shard of the stream (one ``ShardExporter`` each) and sweeps the
    ingestion relay. ``run_once`` drains the shards one after the other; ``run_forever``
    follows each in a thread of its own until ``request_stop``; ``stats`` adds up the
    shards'. A file system error in one shard stops them all and is raised."""

    def __init__(
        self,
        client: redis.Redis,
        keys: KeySpace,
        options: ExportOptions,
        settings: Settings | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.shards = [ShardExporter(client, keys, options, n) for n in range(options.shards)]
        settings = settings or Settings(stream_shards=options.shards)
        self.relay = Relay(client, keys, settings.replace(stream_shards=options.shards))
        self._stop_requested = False

    @property
    def stats(self) -> ExportStats:
        total = ExportStats()
        for shard in self.shards:
            for name, value in vars(shard.stats).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def request_stop(self) -> None:
        """Stop after the batches in hand are written and acknowledged (signal-safe)."""
        self._stop_requested = True
        for shard in self.shards:
            shard.request_stop()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def sweep(self) -> int:
        """Relay what dead ingestion writers left (never fatal: logged and tried later)."""
        try:
            return self.relay.sweep()
        except redis.RedisError as exc:
            log.warning("relay sweep failed (%s); trying again later", exc)
            return 0

    def run_once(self, progress: bool = False) -> ExportStats:
        """Sweep, then drain every shard (see ``ShardExporter.run_once``)."""
        self.sweep()
        if not progress:
            for shard in self.shards:
                shard.run_once()
            return self.stats
        from tqdm import tqdm  # deferred: only interactive runs draw a bar

        backlog = sum(shard._backlog() for shard in self.shards)
        with tqdm(total=backlog, unit="event", disable=None) as bar:
            for shard in self.shards:
                shard._progress = bar
                try:
                    shard._run(once=True)
                finally:
                    shard._progress = None
        return self.stats

    def run_forever(self) -> ExportStats:
        """Follow every shard (a thread each) and sweep every ``sweep_every`` seconds until
        ``request_stop``."""
        import threading

        failures: list[BaseException] = []

        def follow(shard: ShardExporter) -> None:
            try:
                shard.run_forever()
            except BaseException as exc:  # surfaced by the main thread below
                failures.append(exc)
                self.request_stop()

        threads = [
            threading.Thread(target=follow, args=(s,), name=f"export-{s.shard}", daemon=True)
            for s in self.shards
        ]
        for thread in threads:
            thread.start()
        next_sweep = 0.0
        while not self._stop_requested and any(t.is_alive() for t in threads):
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + self.options.sweep_every
            time.sleep(0.05)
        self.request_stop()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return self.stats


@contextlib.contextmanager
def stop_on_signals(exporter: Exporter) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT ask ``exporter`` to stop after its current batch;
    a second signal interrupts at once (safe too: nothing unwritten is acknowledged)."""

    def handle(signum: int, _frame: Any) -> None:
        if exporter.stop_requested:
            raise KeyboardInterrupt
        log.info("stopping after the current batch", extra={"signal": signum})
        exporter.request_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
