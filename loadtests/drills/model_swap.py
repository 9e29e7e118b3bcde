"""Drill: a model version published and made current under load.

    python -m loadtests.drills.model_swap [--duration 30] [--at 8] [--users 100000]
        [--items 100000] [--rate 300]

Starts its own Redis and the service on it with version A published; runs traffic
(known and anonymous visitors' recommendations, similar items, cart add-ons: ``--rate``
requests a second at most); at ``--at`` seconds publishes version B (same shape, other
factors; the publish's pipelined writes under the same load) and makes it current
through the admin API, as an operator would.

Verdict: no failed request (every answer 200) over the whole run; every answer to a
request sent from 1 s after B was made current names B (a worker builds B aside and swaps
one reference: no request waits for it); figures: publish time, when the last A and the
first B answered, when each worker had loaded B (from the service's log: a worker builds
the new version's item side and its catalog view in a background thread, sharing the
worker's GIL with the request threads), latency before, during and after the switch.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid

import redis

from loadtests.bench_model import structured_artifact
from loadtests.drills import support
from loadtests.server import running_service
from recsvc.keys import KeySpace
from recsvc.store.models import ModelStore

SWITCH_LIMIT_S = 1.0
STREAMS = ("known", "anonymous", "similar", "cart")


def cart_addons(store: support.DrillStore) -> support.RequestMaker:
    def make(rng: random.Random):
        items = [f"i{rng.randrange(store.items)}" for _ in range(2)]
        return "POST", "/v1/recommendations/cart", {"items": items, "n": 10}

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--at", type=float, default=8)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=300)
    raise SystemExit(run(parser.parse_args()).report())


def run(args: argparse.Namespace) -> support.Verdict:
    verdict = support.Verdict("model_swap")
    namespace = f"drill{uuid.uuid4().hex[:6]}"
    with (
        support.time_limit(args.duration + 300, "model_swap"),
        support.own_redis() as redis_server,
    ):
        artifact, store = support.publish_drill_store(
            redis_server.url, namespace, args.users, args.items, args.sessions
        )
        new = structured_artifact(args.users, args.items, 64, seed=1, sessions=args.sessions)
        with running_service(redis_server.url, namespace=namespace, workers=args.workers) as svc:
            store = support.seed_visitors(svc, artifact, store, args.visitors)
            every = 5 / args.rate
            traffic = (
                support.Traffic(svc.port)
                .add("known", support.known_recommendations(store), 2, every)
                .add("anonymous", support.anonymous_recommendations(store), 1, every)
                .add("similar", support.similar_items(store), 1, every)
                .add("cart", cart_addons(store), 1, every)
            )
            with traffic:
                time.sleep(args.at)
                publish_started = traffic.now()
                client = redis.Redis.from_url(redis_server.url, socket_timeout=60)
                ModelStore(client, KeySpace(namespace)).publish(new, make_current=False)
                published_at = traffic.now()
                svc.call("POST", "/v1/admin/models/current", {"version": new.version})
                current_at, current_wall = traffic.now(), time.time()
                time.sleep(max(0.0, args.duration - current_at))
            loads = support.log_lines(svc.log_path, "model loaded", version=new.version)
    judge(verdict, traffic, artifact.version, new.version, current_at)
    verdict.figures["publish under load s"] = round(published_at - publish_started, 2)
    verdict.figures["made current at s"] = round(current_at, 2)
    verdict.figures["workers loaded it after s"] = [
        round(line["at"] - current_wall, 2) for line in loads
    ]
    verdict.figures["of which loading s"] = [line.get("load_seconds") for line in loads]
    return verdict


def judge(verdict, traffic: support.Traffic, old: str, new: str, current_at: float) -> None:
    answers = [a for name in STREAMS for a in traffic.of(name)]
    failed = [a for a in answers if a.status != 200]
    verdict.check(
        "no failed request",
        not failed,
        f"{len(failed)} of {len(answers)}" + (f", e.g. {failed[0]}" if failed else ""),
    )
    versions = {a: (a.body or {}).get("model_version") for a in answers if a.status == 200}
    late_old = [a.started - current_at for a, v in versions.items() if v == old]
    first_new = [a.ended - current_at for a, v in versions.items() if v == new]
    after = [a for a in answers if a.started >= current_at + SWITCH_LIMIT_S]
    verdict.check(
        f"every answer names the new version from {SWITCH_LIMIT_S:.0f} s after it is current",
        after and all(versions.get(a) == new for a in after),
        f"{sum(versions.get(a) == new for a in after)} of {len(after)}; the last old "
        f"answer to a request sent {max(late_old, default=float('nan')):.3f} s after, the "
        f"first new answer {min(first_new, default=float('nan')):.3f} s after",
    )
    other = {v for v in versions.values()} - {old, new}
    verdict.check("no answer names another version", not other, str(other or ""))
    verdict.figures.update(
        {
            "requests": {name: len(traffic.of(name)) for name in STREAMS},
            "before": support.latency_figures([a for a in answers if a.started < current_at]),
            "switch (1 s)": support.latency_figures(
                [a for a in answers if current_at <= a.started < current_at + SWITCH_LIMIT_S]
            ),
            "after": support.latency_figures(after),
        }
    )


if __name__ == "__main__":
    main()
