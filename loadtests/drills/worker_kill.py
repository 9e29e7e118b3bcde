"""Drill: a gunicorn worker SIGKILLed under load, ``--kills`` times.

    python -m loadtests.drills.worker_kill [--duration 30] [--kills 3] [--every 6]
        [--users 20000] [--items 5000] [--rate 300]

Starts its own Redis and the service on it, runs traffic (known visitors'
recommendations, similar items, cart add-ons, event batches), and from ``--every``
seconds in SIGKILLs one worker (picked at random) every ``--every`` seconds; gunicorn's
master forks a replacement, which starts with the model the master holds.

Verdict: no failure beyond the requests in flight at a kill: every request that failed
(no answer, or a 5xx) was sent before a kill and answered after it; the traffic client
does what a browser does with a kept-alive connection the server closed before answering
(sends the request once more on a new connection) and counts those. Figures: failures
per kill, how long until the master had a new worker and until it answered, latency.
An event batch that failed in flight may or may not have been written: the client
retries it (at-least-once; the count of such batches is printed).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time
import uuid

from loadtests.drills import support
from loadtests.drills.model_swap import cart_addons
from loadtests.server import running_service

STREAMS = ("known", "similar", "cart", "events")
# A request counts as in flight at a kill when sent before it; one answered (or failed)
# within this long after the kill was in the killed worker or queued for it.
IN_FLIGHT_GRACE_S = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--every", type=float, default=6)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=300)
    raise SystemExit(run(parser.parse_args()).report())


def run(args: argparse.Namespace) -> support.Verdict:
    verdict = support.Verdict("worker_kill")
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    kills: list[dict] = []
    with (
        support.time_limit(args.duration + 180, "worker_kill"),
        support.own_redis() as redis_server,
    ):
        _artifact, store = support.publish_drill_store(
            redis_server.url, namespace, args.users, args.items
        )
        with running_service(redis_server.url, namespace=namespace, workers=args.workers) as svc:
            every = 3 / args.rate
            traffic = (
                support.Traffic(svc.port)
                .add("known", support.known_recommendations(store), 1, every)
                .add("similar", support.similar_items(store), 1, every)
                .add("cart", cart_addons(store), 1, every)
                .add("events", support.event_batches(store), 1, 10 / args.rate)
            )
            rng = random.Random(7)
            with traffic:
                for _ in range(args.kills):
                    time.sleep(args.every)
                    kills.append(kill_one(svc.master_pid, traffic, rng))
                time.sleep(max(0.0, args.duration - traffic.now()))
    judge(verdict, traffic, kills)
    return verdict


def kill_one(master: int, traffic: support.Traffic, rng: random.Random) -> dict:
    """SIGKILL a worker; wait until the master forked its replacement."""
    before = support.worker_pids(master)
    victim = rng.choice(before)
    at = traffic.now()
    os.kill(victim, signal.SIGKILL)
    replaced = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = set(support.worker_pids(master)) - set(before)
        if new:
            replaced = traffic.now() - at
            break
        time.sleep(0.01)
    return {"pid": victim, "at": at, "replaced_after_s": replaced}


def judge(verdict: support.Verdict, traffic: support.Traffic, kills: list[dict]) -> None:
    answers = [a for name in STREAMS for a in traffic.of(name)]
    failed = [a for a in answers if a.status == 0 or a.status >= 500]
    in_flight = [
        a for a in failed if any(a.started <= k["at"] <= a.ended + IN_FLIGHT_GRACE_S for k in kills)
    ]
    beyond = [a for a in failed if a not in in_flight]
    verdict.check(
        "no failure beyond the requests in flight at a kill",
        not beyond,
        f"{len(failed)} failed, {len(in_flight)} of them in flight at a kill"
        + (f"; e.g. {beyond[0]}" if beyond else ""),
    )
    verdict.check(
        "the master replaced every killed worker",
        all(k["replaced_after_s"] is not None for k in kills),
        ", ".join(f"{k['replaced_after_s']:.2f} s" for k in kills if k["replaced_after_s"]),
    )
    verdict.figures.update(
        {
            "kills": len(kills),
            "failed per kill": [
                sum(1 for a in in_flight if a.started <= k["at"] <= a.ended + IN_FLIGHT_GRACE_S)
                for k in kills
            ],
            "resent on a new connection after a kill (browser behaviour)": sum(
                a.retried_stale for a in answers
            ),
            "event batches failed in flight (the client retries them)": sum(
                1 for a in in_flight if a.name == "events"
            ),
            "requests": {name: len(traffic.of(name)) for name in STREAMS},
            "latency": support.latency_figures(answers),
            "latency within 2 s of a kill": support.latency_figures(
                [a for a in answers if any(0 <= a.started - k["at"] < 2 for k in kills)]
            ),
        }
    )


if __name__ == "__main__":
    main()
