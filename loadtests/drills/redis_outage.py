"""Drill: Redis killed (SIGKILL) under load, restarted from its append-only file.

    python -m loadtests.drills.redis_outage [--duration 60] [--outage 10] [--at 20]
        [--users 20000] [--items 5000] [--sessions 20000] [--appendfsync always]

Starts its own Redis (loopback, free port, AOF) and the service on it (API keys on),
publishes a model, and runs traffic for ``--duration`` seconds: known and anonymous
visitors' recommendations, similar items, banners, nudges (``--rate`` reads a second in
all, at most), and event batches of 10 events (admin key; a tenth of ``--rate`` events a
second). At ``--at`` seconds Redis is SIGKILLed; ``--outage`` seconds later it is
started again on the same files and the drill notes when it answers (AOF loaded).

Verdict:
- reads: no 5xx, none unanswered, over the whole run; recommendations answered while
  Redis cannot answer come from memory with ``"fallback": "popular"``;
- events: every answer is 202 or 503 with ``Retry-After``; those sent during the outage are
  503; those sent from 1 s after Redis is back are 202;
- every event answered 202 is in the stream afterwards (read from the restarted Redis);
- normal answers (recommendations without a fallback) within 1 s of Redis answering again:
  no fallback answer to a request sent later than that.

``loadtests.drills.redis_pause`` is the same with SIGSTOP/SIGCONT instead.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import time
import uuid
from collections.abc import Callable

from loadtests.drills import support
from loadtests.server import running_service

READS = ("known", "anonymous", "similar", "banners", "nudges")
RECOVERY_LIMIT_S = 1.0
# Requests sent this close to either end of the outage may land on either side of it: a
# read's breaker trips within its 0.1 s timeout, an event's client retries a refused
# connection with backoff and waits up to its 1 s socket timeout for a paused Redis.
READ_EDGE_S = 0.5
EVENT_EDGE_S = 1.5


def add_arguments(parser: argparse.ArgumentParser, duration: float, outage: float, at: float):
    parser.add_argument("--duration", type=float, default=duration)
    parser.add_argument("--outage", type=float, default=outage)
    parser.add_argument("--at", type=float, default=at, help="seconds into the load")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--visitors", type=int, default=500, help="anonymous, with views")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=300, help="reads a second at most (events: a tenth)"
    )
    parser.add_argument("--appendfsync", default="always", choices=("always", "everysec"))


def is_normal(answer: support.Answer) -> bool:
    return answer.status == 200 and answer.body is not None and answer.body["fallback"] is None


def recovery(
    answers: list[support.Answer], back_at: float, window: float = 2.0
) -> dict[str, float | int | None]:
    """How recommendations came back after ``back_at``: ``normal_from_s``, the first moment
    (from ``back_at``) from which every request sent in the next ``window`` seconds got a
    normal answer (every worker had recovered: each answers many requests a second);
    ``first_normal_s``; and ``later_fallbacks``, fallback answers after that window (a
    Redis reply slower than the serving timeout trips a worker's breaker on a loaded
    machine: no outage of Redis)."""
    after = sorted((a for a in answers if a.started >= back_at), key=lambda a: a.started)
    abnormal = [a.started for a in after if not is_normal(a)]
    candidates = [back_at] + [
        later.started for earlier, later in itertools.pairwise(after) if not is_normal(earlier)
    ]
    normal_from = None
    for start in candidates:
        first_bad = bisect.bisect_left(abnormal, start)
        if first_bad == len(abnormal) or abnormal[first_bad] > start + window:
            normal_from = start
            break
    normal = [a.ended - back_at for a in after if is_normal(a)]
    settled = normal_from + window if normal_from is not None else float("inf")
    return {
        "normal_from_s": round(normal_from - back_at, 3) if normal_from is not None else None,
        "first_normal_s": round(min(normal), 3) if normal else None,
        "later_fallbacks": sum(1 for t in abnormal if t > settled),
    }


def run(
    args: argparse.Namespace,
    drill: str,
    break_redis: Callable[[support.OwnRedis], None],
    restore_redis: Callable[[support.OwnRedis], float],
) -> support.Verdict:
    """The drill: traffic, ``break_redis`` at ``--at``, ``restore_redis`` ``--outage``
    seconds later (returns when Redis answers again), traffic to ``--duration``."""
    verdict = support.Verdict(drill)
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    bound = args.duration + 180
    with (
        support.time_limit(bound, drill),
        support.own_redis(args.appendfsync) as redis_server,
    ):
        artifact, store = support.publish_drill_store(
            redis_server.url, namespace, args.users, args.items, args.sessions
        )
        with running_service(redis_server.url, namespace=namespace, workers=args.workers) as svc:
            store = support.seed_visitors(svc, artifact, store, args.visitors)
            seeded = support.stream_ids(redis_server.client(), support.KeySpace(namespace))
            workers_before = set(support.worker_pids(svc.master_pid))
            every = 6 / args.rate  # six read threads share the rate
            traffic = (
                support.Traffic(svc.port)
                .add("known", support.known_recommendations(store), 2, every)
                .add("anonymous", support.anonymous_recommendations(store), 1, every)
                .add("similar", support.similar_items(store), 1, every)
                .add("banners", support.banners(store), 1, every)
                .add("nudges", support.nudges(store), 1, every)
                .add("events", support.event_batches(store), 2, 20 / args.rate)
            )
            with traffic:
                time.sleep(args.at)
                broken_at = traffic.now()
                break_redis(redis_server)
                time.sleep(args.outage)
                restoring_at = traffic.now()
                restore_redis(redis_server)
                back_at = traffic.now()
                time.sleep(max(0.0, args.duration - back_at))
            workers_after = set(support.worker_pids(svc.master_pid))
            timeouts = svc.log_path.read_text(errors="replace").count("WORKER TIMEOUT")
        in_stream = support.stream_ids(redis_server.client(), support.KeySpace(namespace))
    judge(verdict, traffic, broken_at, restoring_at, back_at, in_stream - seeded)
    verdict.figures["workers replaced"] = len(workers_before - workers_after)
    verdict.figures["gunicorn worker timeouts in the log"] = timeouts
    verdict.figures["appendfsync"] = args.appendfsync
    return verdict


def judge(
    verdict: support.Verdict,
    traffic: support.Traffic,
    broken_at: float,
    restoring_at: float,
    back_at: float,
    in_stream,
) -> None:
    """The checks of the module docstring; the outage is [broken_at, restoring_at), Redis
    answers again from back_at; ``in_stream``: event ids the traffic's events added."""
    reads = [a for name in READS for a in traffic.of(name)]
    bad_reads = [a for a in reads if a.status == 0 or a.status >= 500]
    verdict.check(
        "reads: no 5xx, none unanswered",
        not bad_reads,
        f"{len(bad_reads)} of {len(reads)}" + (f", e.g. {bad_reads[0]}" if bad_reads else ""),
    )
    recs = traffic.of("known") + traffic.of("anonymous")
    # Answered while Redis could not answer: before its restart began. (A read queued
    # behind a request that waits out a socket timeout, a sync worker serving one at a
    # time, may be answered later; and between the restart and back_at, when the drill's
    # poll first sees Redis answer, a worker may already have read from it.)
    during = [a for a in recs if broken_at + READ_EDGE_S <= a.started and a.ended < restoring_at]
    fallback = [a for a in during if a.status == 200 and a.body and a.body["fallback"]]
    verdict.check(
        "recommendations during the outage answer from memory (fallback popular)",
        during and len(fallback) == len(during),
        f"{len(fallback)} of {len(during)}",
    )
    events = traffic.of("events")
    refused = [a for a in events if a.status != 202]
    retryable = [a for a in refused if a.status == 503 and a.retry_after]
    verdict.check(
        "events: 202, or 503 with Retry-After",
        len(retryable) == len(refused),
        f"{len(refused)} refused, {len(retryable)} of them 503 with Retry-After",
    )
    sent_during = [
        a for a in events if broken_at + EVENT_EDGE_S <= a.started < restoring_at - EVENT_EDGE_S
    ]
    verdict.check(
        "events sent during the outage: 503",
        sent_during and all(a.status == 503 for a in sent_during),
        f"{sum(a.status == 503 for a in sent_during)} of {len(sent_during)}",
    )
    after = [a for a in events if a.started >= back_at + RECOVERY_LIMIT_S]
    verdict.check(
        f"events sent from {RECOVERY_LIMIT_S:.0f} s after Redis is back: 202",
        after and all(a.status == 202 for a in after),
        f"{sum(a.status == 202 for a in after)} of {len(after)}",
    )
    accepted = support.accepted_ids(events)
    missing = [i for i in accepted if in_stream[i] != 1]
    verdict.check(
        "every event answered 202 is in the stream once",
        not missing,
        f"{len(accepted)} accepted, {len(missing)} missing or repeated; stream holds "
        f"{sum(in_stream.values())} (written but answered 503: "
        f"{sum(in_stream.values()) - len(accepted)})",
    )
    back = recovery(recs, back_at)
    verdict.check(
        f"normal recommendations within {RECOVERY_LIMIT_S:.0f} s of Redis answering again",
        back["normal_from_s"] is not None and back["normal_from_s"] <= RECOVERY_LIMIT_S,
        f"every answer normal from {back['normal_from_s']} s after (first normal answer "
        f"{back['first_normal_s']} s after)",
    )
    before = [a for a in recs if a.started < broken_at]
    verdict.figures["fallbacks before the outage (Redis slower than the serving timeout)"] = (
        f"{sum(not is_normal(a) for a in before)} of {len(before)}"
    )
    verdict.figures.update(
        {
            "broken at s": round(broken_at, 2),
            "back at s": round(back_at, 2),
            "requests": {name: len(traffic.of(name)) for name in (*READS, "events")},
            "reads before": support.latency_figures([a for a in reads if a.started < broken_at]),
            "reads during": support.latency_figures(
                [a for a in reads if broken_at <= a.started < restoring_at]
            ),
            "reads after": support.latency_figures([a for a in reads if a.started >= back_at]),
            "events latency": support.latency_figures(events),
            "slowest request s": round(max((a.latency for a in traffic.answers), default=0.0), 3),
            "recovery": back,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, duration=60, outage=10, at=20)
    args = parser.parse_args()

    def restart(server: support.OwnRedis) -> float:
        loading = server.start()
        print(f"Redis restarted from its append-only file, answering after {loading:.2f} s")
        return loading

    verdict = run(args, "redis_outage", lambda server: server.kill(), restart)
    raise SystemExit(verdict.report())


if __name__ == "__main__":
    main()
