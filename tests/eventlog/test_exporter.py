"""The stream-to-log exporter against a real Redis: partitions, durability order, trimming,
recovery after crashes (simulated, and real SIGKILLs of the real command)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from eventlog_support import (
    DAYS,
    Producer,
    make_records,
    produce,
    raw_records,
    temp_files,
)

from recsvc.cli import main
from recsvc.core.events import event_day
from recsvc.eventlog.exporter import (
    Exporter,
    ExportOptions,
    batch_file_name,
    exporter_client,
    exporter_lag,
    temp_path,
    write_batch,
)
from recsvc.eventlog.reader import ReadStats, iter_records, log_files
from recsvc.keys import EXPORTER_GROUP, KeySpace
from recsvc.settings import Settings

CONSUMER = "exporter-1"


def run_once(settings: Settings, keys: KeySpace, out: Path, **options: Any) -> Exporter:
    opts = ExportOptions(out=out, **options)
    exporter = Exporter(exporter_client(settings, opts), keys, opts)
    exporter.run_once()
    return exporter


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records}


def pending(client: redis.Redis, keys: KeySpace) -> int:
    """Entries delivered and not acknowledged on shard 0 (0 before the exporter made the
    group: a kill can land before that on a loaded machine)."""
    try:
        return int(client.xpending(keys.events_stream(), EXPORTER_GROUP)["pending"])
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        return 0


def assert_exactly_once(out: Path, expected_ids: list[str]) -> None:
    counts = Counter(r["id"] for r in raw_records(out))
    assert [i for i, n in counts.items() if n > 1] == []
    assert set(counts) == set(expected_ids)
    assert temp_files(out) == []


def exporter_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "RECSVC_NAMESPACE": settings.namespace,
    }


# --- files -----------------------------------------------------------------------------


def test_exports_each_event_into_its_days_partition(settings, keys, redis_conn, tmp_path):
    records = make_records(30)
    produce(redis_conn, keys, records)

    exporter = run_once(settings, keys, tmp_path, batch_size=7)

    assert sorted(p.name for p in tmp_path.iterdir()) == [f"date={d}" for d in DAYS]
    for path in log_files(tmp_path):
        day = path.parent.name.removeprefix("date=")
        assert {event_day(r) for r in raw_records(path)} == {day}
    stats = ReadStats()
    assert list(iter_records(tmp_path, stats)) == sorted(records, key=event_day)
    assert stats.duplicates == stats.malformed == 0
    assert (exporter.stats.events, exporter.stats.batches) == (30, 5)


def test_gzip_files_are_readable(settings, keys, redis_conn, tmp_path):
    records = make_records(12)
    produce(redis_conn, keys, records)

    run_once(settings, keys, tmp_path, compress=True)

    files = log_files(tmp_path)
    assert files and all(p.name.endswith(".jsonl.gz") for p in files)
    with gzip.open(files[0], "rt", encoding="utf-8") as handle:
        assert json.loads(handle.readline())["id"] in by_id(records)
    assert by_id(iter_records(tmp_path)) == by_id(records)


def test_entries_that_are_not_events_are_kept_aside_and_acknowledged(
    settings, keys, redis_conn, tmp_path
):
    good = make_records(3)
    produce(redis_conn, keys, good)
    redis_conn.xadd(keys.events_stream(), {"junk": "x"})
    bad = {**good[0], "id": "other", "timestamp": "../../etc/passwd"}
    redis_conn.xadd(keys.events_stream(), {"e": json.dumps(bad)})

    run_once(settings, keys, tmp_path)

    assert by_id(iter_records(tmp_path)) == by_id(good)
    rejected = [json.loads(line) for p in (tmp_path / "_rejected").iterdir() for line in p.open()]
    assert [r["fields"] for r in rejected] == [{"junk": "x"}, {"e": json.dumps(bad)}]
    assert pending(redis_conn, keys) == 0


# --- acknowledgement and trimming ------------------------------------------------------


def test_acknowledges_and_trims_only_what_was_written(settings, keys, redis_conn, tmp_path):
    produce(redis_conn, keys, make_records(20))
    run_once(settings, keys, tmp_path)
    assert pending(redis_conn, keys) == 0
    assert redis_conn.xlen(keys.events_stream()) == 0

    later = produce(redis_conn, keys, make_records(3, seed=8))
    # Nothing else trims: the new entries wait for the next export.
    assert [e[0] for e in redis_conn.xrange(keys.events_stream())] == later
    run_once(settings, keys, tmp_path)
    assert redis_conn.xlen(keys.events_stream()) == 0
    assert len(list(iter_records(tmp_path))) == 23


def test_nothing_is_acknowledged_when_a_write_fails(settings, keys, redis_conn, tmp_path):
    records = make_records(10)
    produce(redis_conn, keys, records)
    blocker = tmp_path / f"date={DAYS[1]}"
    blocker.write_text("a file where a partition folder should be")

    with pytest.raises(OSError):
        run_once(settings, keys, tmp_path)

    # The other day's file was written, but no entry is acknowledged or trimmed.
    assert pending(redis_conn, keys) == 10
    assert redis_conn.xlen(keys.events_stream()) == 10
    blocker.unlink()
    run_once(settings, keys, tmp_path)
    assert_exactly_once(tmp_path, [r["id"] for r in records])
    assert pending(redis_conn, keys) == 0


def test_trim_keeps_entries_another_consumer_holds(settings, keys, redis_conn, tmp_path):
    produce(redis_conn, keys, make_records(5))
    run_once(settings, keys, tmp_path)
    held = produce(redis_conn, keys, make_records(5, seed=8))
    redis_conn.xreadgroup(EXPORTER_GROUP, "exporter-2", {keys.events_stream(): ">"}, count=5)
    after = produce(redis_conn, keys, make_records(10, seed=9))

    run_once(settings, keys, tmp_path)  # exporter-2 is alive (not idle): not claimed

    stream = [entry_id for entry_id, _ in redis_conn.xrange(keys.events_stream())]
    assert stream == held + after  # trimmed up to the oldest unacknowledged entry only
    assert len(list(iter_records(tmp_path))) == 15
    assert redis_conn.xpending(keys.events_stream(), EXPORTER_GROUP)["consumers"] == [
        {"name": b"exporter-2", "pending": 5}
    ]


def test_trim_waits_for_every_consumer_group(settings, keys, redis_conn, tmp_path):
    produce(redis_conn, keys, make_records(10))
    redis_conn.xgroup_create(keys.events_stream(), "analytics", id="0")

    run_once(settings, keys, tmp_path)

    assert pending(redis_conn, keys) == 0
    assert redis_conn.xlen(keys.events_stream()) == 10


def test_exporter_lag(settings, keys, redis_conn, tmp_path):
    assert exporter_lag(redis_conn, keys)["stream_length"] == 0
    ids = produce(redis_conn, keys, make_records(4))

    lag = exporter_lag(redis_conn, keys)
    assert lag["stream_length"] == 4 and lag["pending"] == 0
    assert lag["last_delivered_id"] is None
    assert lag["oldest_unexported_id"] == ids[0].decode()
    assert 0 <= lag["oldest_unexported_age_seconds"] < 60

    run_once(settings, keys, tmp_path)
    lag = exporter_lag(redis_conn, keys)
    assert lag["stream_length"] == lag["pending"] == 0
    assert lag["last_delivered_id"] == ids[-1].decode()
    assert lag["oldest_unexported_id"] is None
    assert lag["consumers"] == 1


# --- recovery --------------------------------------------------------------------------


def read_as(client: redis.Redis, keys: KeySpace, consumer: str, count: int) -> list:
    reply = client.xreadgroup(EXPORTER_GROUP, consumer, {keys.events_stream(): ">"}, count=count)
    return reply[0][1]


def test_restart_after_write_before_ack_rewrites_the_same_files(
    settings, keys, redis_conn, tmp_path
):
    records = make_records(12)
    produce(redis_conn, keys, records)
    run_once(settings, keys, tmp_path, batch_size=4)  # nothing in flight yet: creates the group
    more = make_records(6, seed=8)
    produce(redis_conn, keys, more)
    # What a killed exporter leaves: a batch delivered, its files written (one only half,
    # still under its temporary name), no XACK.
    batch = read_as(redis_conn, keys, CONSUMER, 6)
    _, paths = write_batch(tmp_path, batch, compress=False)
    temp_path(paths[0]).write_text(paths[0].read_text()[:50])
    paths[0].unlink()

    exporter = run_once(settings, keys, tmp_path)

    assert exporter.stats.recovered == 6
    assert_exactly_once(tmp_path, [r["id"] for r in records + more])
    assert redis_conn.xlen(keys.events_stream()) == 0


def test_claims_a_dead_consumers_batch_whole(settings, keys, redis_conn, tmp_path):
    records = make_records(9)
    produce(redis_conn, keys, records)
    run_once(settings, keys, tmp_path, batch_size=3, consumer="exporter-2")
    more = make_records(8, seed=8)
    produce(redis_conn, keys, more)
    batch = read_as(redis_conn, keys, "exporter-2", 8)
    write_batch(tmp_path, batch, compress=False)  # then exporter-2 died
    time.sleep(0.2)

    exporter = run_once(settings, keys, tmp_path, claim_idle=0.1)

    assert exporter.stats.claimed == 8
    assert_exactly_once(tmp_path, [r["id"] for r in records + more])
    assert pending(redis_conn, keys) == 0
    assert redis_conn.xlen(keys.events_stream()) == 0


def kill_connections(client: redis.Redis, name: str) -> int:
    ids = [c["id"] for c in client.client_list() if c.get("name") == name]
    for connection_id in ids:
        client.client_kill_filter(_id=connection_id)
    return len(ids)


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@contextlib.contextmanager
def following(settings: Settings, keys: KeySpace, out: Path) -> Iterator[Exporter]:
    """An exporter following the stream in a thread, stopped (and checked) on exit."""
    opts = ExportOptions(out=out, max_wait=0.02, poll=0.2, batch_size=20)
    exporter = Exporter(exporter_client(settings, opts), keys, opts)
    follower = threading.Thread(target=exporter.run_forever, daemon=True)
    follower.start()
    try:
        yield exporter
    finally:
        exporter.request_stop()
        follower.join(5)
    assert not follower.is_alive()


def has_lines(out: Path, count: int) -> bool:
    return len(raw_records(out)) >= count


def test_follows_through_connection_losses(settings, keys, redis_conn, tmp_path, caplog):
    name = f"{settings.namespace}:exporter:{CONSUMER}"
    ids, killed = [], 0
    with following(settings, keys, tmp_path):
        for seed in range(4):
            records = make_records(30, seed=seed)
            produce(redis_conn, keys, records)
            ids += [r["id"] for r in records]
            time.sleep(0.01)
            killed += kill_connections(redis_conn, name)  # busy: maybe mid-batch
            wait_until(functools.partial(has_lines, tmp_path, len(ids)))
            killed += kill_connections(redis_conn, name)  # idle: inside a blocking read
        wait_until(lambda: pending(redis_conn, keys) == 0 and "redis unavailable" in caplog.text)

    assert killed >= 4
    assert_exactly_once(tmp_path, ids)


def test_follows_a_stream_deleted_and_recreated(settings, keys, redis_conn, tmp_path):
    first, second = make_records(10), make_records(10, seed=8)
    with following(settings, keys, tmp_path):
        produce(redis_conn, keys, first)
        wait_until(functools.partial(has_lines, tmp_path, 10))
        redis_conn.delete(keys.events_stream())  # FLUSHALL, or an operator
        produce(redis_conn, keys, second)
        wait_until(functools.partial(has_lines, tmp_path, 20))

    assert_exactly_once(tmp_path, [r["id"] for r in first + second])


# --- the command -----------------------------------------------------------------------


def test_command_once(settings, keys, redis_conn, tmp_path):
    records = make_records(10)
    produce(redis_conn, keys, records)

    result = CliRunner().invoke(
        main,
        ["export-events", "--out", str(tmp_path), "--once", "--gzip", "--batch-size", "4"],
        env={"REDIS_URL": settings.redis_url, "RECSVC_NAMESPACE": settings.namespace},
    )

    assert result.exit_code == 0, result.output
    assert "exported 10 events" in result.output
    assert by_id(iter_records(tmp_path)) == by_id(records)


def exporter_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "recsvc.cli", "export-events", "--out", str(out), *extra]


@contextlib.contextmanager
def spawned(command: list[str], settings: Settings, **popen: Any) -> Iterator[subprocess.Popen]:
    """The exporter command as a child process, killed on exit if still running."""
    proc = subprocess.Popen(command, env=exporter_env(settings), **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_stops_cleanly_on_sigterm(settings, keys, redis_conn, tmp_path):
    out = tmp_path / "log"
    command = exporter_command(out, "--max-wait", "0.05", "--batch-size", "50")
    records = make_records(120)
    with spawned(command, settings, stderr=subprocess.PIPE) as proc:
        produce(redis_conn, keys, records[:100])
        wait_until(functools.partial(has_lines, out, 100))
        produce(redis_conn, keys, records[100:])

        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)

    assert proc.returncode == 0, stderr.decode()
    assert pending(redis_conn, keys) == 0  # the batch in hand was finished
    run_once(settings, keys, out)
    assert_exactly_once(out, [r["id"] for r in records])


def exporter_started(client: redis.Redis, keys: KeySpace) -> bool:
    """Whether an exporter has delivered entries of shard 0 (it is reading)."""
    try:
        groups = client.xinfo_groups(keys.events_stream())
    except redis.ResponseError:
        return False
    return any(group["last-delivered-id"] not in (b"0-0", "0-0") for group in groups)


def kill_during_a_write(proc: subprocess.Popen, out: Path, timeout: float) -> None:
    """SIGKILL ``proc`` while it writes a batch's last partition (or after ``timeout``):
    its other partition's file is then on disk and nothing is acknowledged."""
    last_partition = out / f"date={DAYS[-1]}"  # partitions are written in day order
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if any(e.name.endswith(".tmp") for e in os.scandir(last_partition)):
                break
    proc.kill()


def written_before_ack(client: redis.Redis, keys: KeySpace, out: Path) -> bool:
    """Whether the batch a killed exporter left pending already has a file on disk."""
    if not pending(client, keys):
        return False
    held = client.xpending_range(keys.events_stream(), EXPORTER_GROUP, "-", "+", 10_000)
    if not held:
        return False
    name = batch_file_name(held[0]["message_id"], held[-1]["message_id"], compress=False)
    return any((out / f"date={day}" / name).exists() for day in DAYS)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    settings, keys, redis_conn, tmp_path
):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    out = tmp_path / "log"
    producer = Producer(redis_conn, keys, seed)
    command = exporter_command(out, "--batch-size", "40", "--max-wait", "0.02")
    held_at_kill, rewrites = [], 0
    producer.start()
    try:
        for round_ in range(8):
            log = tmp_path / f"exporter-{round_}.log"
            with log.open("wb") as stderr, spawned(command, settings, stderr=stderr) as proc:
                # Kill at a random moment after the exporter is up (its start, seconds on a
                # loaded machine, is not what this test is about).
                wait_until(functools.partial(exporter_started, redis_conn, keys), 30)
                time.sleep(rng.uniform(0.05, 0.6))
                if round_ % 2:
                    kill_during_a_write(proc, out, timeout=1.0)
                else:
                    proc.kill()
                proc.wait()
            held_at_kill.append(pending(redis_conn, keys))
            rewrites += written_before_ack(redis_conn, keys, out)
    finally:
        producer.stop()

    drain = subprocess.run(
        [*command, "--once"], env=exporter_env(settings), capture_output=True, timeout=60
    )

    print(f"seed {seed}: pending at kills {held_at_kill}, written before ack {rewrites}")
    assert drain.returncode == 0, drain.stderr.decode()
    assert len(producer.ids) > 1000, "the producer barely ran"
    assert any(held_at_kill), f"no kill landed mid-batch (seed {seed})"
    assert rewrites, f"no kill landed between a batch's files and its XACK (seed {seed})"
    assert_exactly_once(out, producer.ids)
    assert pending(redis_conn, keys) == 0
    assert redis_conn.xlen(keys.events_stream()) == 0
