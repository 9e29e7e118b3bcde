"""Banners and nudges with wrk against the no-op endpoint, same server, same run.

    python -m loadtests.bench_marketing [--duration 10] [--runs 1] [--connections 8]
        [--workers 2] [--threads N] [--users 100000] [--items 20000] [--visitors 20000]
        [--banners 60]

Publishes a model (``--items`` items, ``--users`` users, 64 clustered factors:
``loadtests.bench_model``) and its catalog into a namespace of its own, starts ``recsvc
serve`` (API keys on; the admin key sent), creates ``--banners`` banners over four
placements with rules of every kind (stages, segments, carts, categories, hours, days,
caps, two experiments), and sends each of ``--visitors`` known visitors (``u<n>``, in the
model) and as many anonymous ones 3-5 product views, half of them a cart, stamped two
hours ago so those carts are abandoned. Every worker then answers with the model and a
short unmeasured run of each phase lets workers load banners and add-ons (start-up no
phase should be charged with). Then with wrk (``loadtests.phases``: per run the no-op,
each phase, the no-op again):

- ``banners_known``: ``GET /v1/visitors/u<n>/banners?placement=home`` (affinity by model
  vectors);
- ``banners_anon``: the same for anonymous visitors (affinity from the profile);
- ``nudges_page``: ``GET /v1/visitors/<id>/nudges`` for every visitor, as the storefront
  asks on each page (here half of them have an abandoned cart, far more than in a shop);
- ``nudges``: the same for visitors with an abandoned cart only, the costly case (the
  nudge with its cart tiles and three add-ons computed from the model);
- ``claim``: ``POST /v1/nudges/claim`` ``{"channel": "push", "limit": 10}`` until the carts
  run out (claims after that are the cheap empty case, so its ratio is not a target;
  carts claimed per second are printed; a second run finds none left).

Some answers of every banner and nudge phase must carry a banner or a nudge (a run
answering empty lists cannot pass); targets (DESIGN.md): banners and nudges at least 0.5
x the no-op's req/s and p99 at most 2 x the no-op's p99, in the median over ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from loadtests import phases, wrk
from loadtests.bench_model import CATEGORIES, publish_store
from loadtests.bench_serving import wait_for_version
from loadtests.server import benchmark_redis, running_service
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.store.namespace import delete_namespace

TARGET = (0.5, 2.0)  # (min req/s over the no-op's, max p99 over the no-op's)
TARGETED = ("banners_known", "banners_anon", "nudges_page", "nudges")
PLACEMENTS = ("home", "product", "cart", "checkout")


def banner_bodies(count: int, seed: int = 5) -> list[dict]:
    """Banners with a mix of rules, so matching does real work; some match everybody."""
    rng = random.Random(seed)
    rule_makers = [
        lambda: {"stages": rng.sample(["awareness", "consideration", "decision"], 2)},
        lambda: {"segments": [rng.choice(["cart_abandoner", "engaged_browser", "new_visitor"])]},
        lambda: {"has_cart": rng.random() < 0.5},
        lambda: {"cart_value_min": round(rng.uniform(10, 200), 2)},
        lambda: {"categories": [f"cat{rng.randrange(CATEGORIES)}" for _ in range(3)]},
        lambda: {"hours": list(range(24))},
        lambda: {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        lambda: {},
    ]
    bodies = []
    for n in range(count):
        rules: dict = {}
        for make in rng.sample(rule_makers, rng.randint(1, 3)):
            rules.update(make())
        body = {
            "id": f"bench-b{n}",
            "placement": PLACEMENTS[n % len(PLACEMENTS)],
            "content": {"title": f"Banner {n}", "cta": "Shop now"},
            "rules": rules,
            "priority": rng.randint(0, 3),
            "frequency_cap_per_day": rng.choice([None, 3, 10]),
            "promotes": {"categories": [f"cat{rng.randrange(CATEGORIES)}"]},
        }
        if n < 8:
            body["experiment"] = {"id": f"exp{n % 2}", "variant": "ab"[n // 2 % 2]}
        bodies.append(body)
    return bodies


def visitor_events(visitors: list[str], items: int, stamp: str, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for visitor in visitors:
        viewed = [f"i{rng.randrange(items)}" for _ in range(rng.randint(3, 5))]
        for item in viewed:
            events.append(
                {"type": "product_view", "visitor_id": visitor, "item_id": item, "timestamp": stamp}
            )
        if rng.random() < 0.5:
            events.append(
                {
                    "type": "add_to_cart",
                    "visitor_id": visitor,
                    "item_id": viewed[0],
                    "price": round(rng.uniform(5, 150), 2),
                    "timestamp": stamp,
                }
            )
    return events


def some_answers_hold(what: str):
    """A phase check: at least one answer held the phase's marker (wrk counts them)."""

    def check(result: wrk.Result) -> list[str]:
        return [] if result.marked else [f"no answer held a {what}"]

    return check


def some_marked(name: str, requests: list[wrk.Request], marker: str, what: str) -> phases.Phase:
    """A phase some of whose answers (not all) must hold ``marker`` (a ``what``)."""
    return phases.Phase(
        name, requests, marker, every_answer_marked=False, check=some_answers_hold(what)
    )


def has_cart(client, keys: KeySpace, visitor: str) -> bool:
    raw = client.get(keys.visitor_profile(visitor))
    return bool(raw and json.loads(raw)["shared"]["cart"]["items"])


def marketing_phases(known: list[str], anonymous: list[str], carts: list[str]):
    """The measured phases and the file the claim phase's answers go to."""
    rng = random.Random(4)

    def gets(paths: list[str], count: int = 5000) -> list[wrk.Request]:
        return [wrk.Request("GET", rng.choice(paths)) for _ in range(count)]

    def banners(visitors: list[str]) -> list[str]:
        return [f"/v1/visitors/{v}/banners?placement=home" for v in visitors]

    claims = Path(tempfile.mkstemp(prefix="recsvc-claims-", suffix=".jsonl")[1])
    claim = json.dumps({"channel": "push", "limit": 10}).encode()
    measured = [
        some_marked("banners_known", gets(banners(known)), '"banners":[{', "banner"),
        some_marked("banners_anon", gets(banners(anonymous)), '"banners":[{', "banner"),
        # What the storefront asks on every page: most visitors have no abandoned cart.
        some_marked(
            "nudges_page",
            gets([f"/v1/visitors/{v}/nudges" for v in known + anonymous]),
            '"nudges":[{',
            "nudge",
        ),
        some_marked(
            "nudges", gets([f"/v1/visitors/{v}/nudges" for v in carts]), '"nudges":[{', "nudge"
        ),
        phases.Phase("claim", [wrk.Request("POST", "/v1/nudges/claim", claim)], capture=claims),
    ]
    return measured, claims


def claimed(claims: Path) -> int:
    return sum(
        len(json.loads(line)["nudges"]) for line in claims.read_text().splitlines() if line.strip()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    phases.add_arguments(parser, seconds=10.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--banners", type=int, default=60)
    args = parser.parse_args()
    # Quiet hours off: the claim phase must not depend on the hour the benchmark runs at.
    settings = {"RECSVC_NUDGE_QUIET_HOURS": "", "RECSVC_NUDGE_DELAY_PUSH_SECONDS": "0"}
    with (
        benchmark_redis() as redis_url,
        running_service(
            redis_url, workers=args.workers, threads=args.threads, settings=settings
        ) as service,
    ):
        client, keys = connect(redis_url, socket_timeout=60), KeySpace(service.namespace)
        try:
            reports, carts = measure(service, client, keys, args)
        finally:
            delete_namespace(client, service.namespace)
    summary = phases.over_runs(reports)
    met = phases.print_over_runs(summary, {name: TARGET for name in TARGETED})
    met &= not any(r["problems"] for r in reports)
    print(f"banners and nudges meet their targets, answers as expected: {met}")
    print(json.dumps({"args": vars(args), "carts": carts, "runs": reports, "over": summary}))


def measure(service, client, keys: KeySpace, args: argparse.Namespace) -> tuple[list[dict], int]:
    started = time.perf_counter()
    artifact = publish_store(client, keys, users=args.users, items=args.items)
    for body in banner_bodies(args.banners):
        service.call("POST", "/v1/admin/banners", body, expect=(201,))
    known = [f"u{n}" for n in np.random.default_rng(1).choice(args.users, args.visitors)]
    anonymous = [f"anon-{n}" for n in range(args.visitors)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    service.send_events(visitor_events(known + anonymous, args.items, stamp))
    carts = [v for v in anonymous if has_cart(client, keys, v)]
    all_carts = len(carts) + sum(1 for v in set(known) if has_cart(client, keys, v))
    print(
        f"setup {time.perf_counter() - started:.1f} s: model {artifact.version}, "
        f"{args.banners} banners, {2 * args.visitors:,} visitors, {all_carts:,} carts "
        f"({len(carts):,} of anonymous visitors, asked for their nudge)",
        flush=True,
    )
    wait_for_version(service, artifact.version)
    measured, claims = marketing_phases(known, anonymous, carts)
    runner = phases.Runner.from_args(service, args, phases.redis_pid(client))
    runner.warm_up([p for p in measured if p.name != "claim"])

    def on_run(report: dict) -> None:
        report["carts_claimed"] = claimed(claims)
        phases.print_run(report)
        seconds = report["phases"]["claim"]["requests"] / max(report["phases"]["claim"]["rps"], 1)
        print(
            f"  claimed {report['carts_claimed']} of {all_carts} carts "
            f"({report['carts_claimed'] / seconds:.0f} carts/s)"
        )

    return runner.run(measured, args.runs, on_run), all_carts


if __name__ == "__main__":
    main()
