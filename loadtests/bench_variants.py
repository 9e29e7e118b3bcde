"""Server variants side by side: gunicorn worker configurations and middleware, same wrk.

    python -m loadtests.bench_variants [--variants 2x1,2x4] [--endpoints noop,similar]
        [--duration 5] [--runs 3] [--connections 8] [--log-level INFO]
        (endpoints: noop, known, popular, similar, cart, ingest: batches of 100 events)
        [--users 100000] [--items 20000]
    python -m loadtests.bench_variants --middleware      # every app_variants variant, 2x1

A variant is ``WORKERSxTHREADS`` (threads > 1: gunicorn's gthread worker, which keeps
connections alive; 1: the sync worker, one request per connection) optionally followed
by ``:<app variant>`` of ``loadtests.app_variants`` (the service less a middleware piece).
Every variant is started at once, on the same Redis and (for endpoints other than the
no-op) the same published store (``loadtests.bench_model``); then each run measures every
variant on every endpoint for ``--duration`` seconds, one after the other, so all
variants of a run share the machine's state of that moment. A variant's figures are
ratios over the first variant's in the same run (req/s, p99), and the service's CPU per
request (microseconds: comparable when the machine is shared, as req/s is not), with the
generator's and everybody else's CPU beside them. Services log at ``--log-level``
(INFO, the shipped default: one JSON access line per request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import uuid

from loadtests import phases, wrk
from loadtests.app_variants import VARIANTS
from loadtests.bench_model import popularity, publish_store
from loadtests.server import benchmark_redis, running_service
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.store.namespace import delete_namespace

MIDDLEWARE = ",".join(f"2x1:{v}" for v in VARIANTS)


def parse_variant(spec: str) -> tuple[int, int, str | None]:
    """``"2x4:no-metrics"`` -> (2, 4, "no-metrics"); ``"2x1"`` -> (2, 1, None)."""
    config, _, app = spec.partition(":")
    workers, _, threads = config.partition("x")
    if app and app not in VARIANTS:
        raise argparse.ArgumentTypeError(f"unknown app variant {app!r}")
    return int(workers), int(threads or 1), app or None


def endpoint_phase(name: str, artifact) -> phases.Phase:
    """The no-op, or one read endpoint over the published store."""
    if name == "noop":
        return phases.noop_phase()
    if name == "ingest":
        from loadtests.bench_ingest import batch_requests

        batches = batch_requests(100, 1_000_000, same_visitors=False)
        return phases.Phase(name, batches, allowed=frozenset({202}))
    import numpy as np

    rows = np.random.default_rng(7).choice(len(artifact.item_ids), 4000, p=popularity(artifact))
    users = len(artifact.user_ids)
    paths = {
        "known": [f"/v1/visitors/u{(r * 7919) % users}/recommendations?n=10" for r in rows],
        "popular": [f"/v1/visitors/nobody-{n}/recommendations?n=10" for n in range(4000)],
        "similar": [f"/v1/items/i{r}/similar?n=10" for r in rows],
    }
    if name == "cart":
        bodies = [
            json.dumps({"items": [f"i{a}", f"i{b}"], "n": 10}, separators=(",", ":")).encode()
            for a, b in zip(rows[::2], rows[1::2], strict=True)
        ]
        return phases.Phase(
            name, [wrk.Request("POST", "/v1/recommendations/cart", b) for b in bodies]
        )
    if name not in paths:
        raise SystemExit(f"unknown endpoint {name!r}: noop, ingest, cart, {', '.join(paths)}")
    return phases.Phase(name, [wrk.Request("GET", p) for p in paths[name]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="2x1,4x1,2x2,2x4,2x8")
    parser.add_argument("--middleware", action="store_true", help=f"--variants {MIDDLEWARE}")
    parser.add_argument("--endpoints", default="noop")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    specs = (MIDDLEWARE if args.middleware else args.variants).split(",")
    variants = [(spec, *parse_variant(spec)) for spec in specs]
    endpoints = args.endpoints.split(",")

    with benchmark_redis() as redis_url, contextlib.ExitStack() as stack:
        client = connect(redis_url, socket_timeout=60)
        namespace = f"benchvar{uuid.uuid4().hex[:6]}"
        stack.callback(delete_namespace, client, namespace)
        artifact = None
        if set(endpoints) - {"noop", "ingest"}:
            artifact = publish_store(
                client, KeySpace(namespace), users=args.users, items=args.items
            )
        runners = {}
        for spec, workers, threads, app in variants:
            service = stack.enter_context(
                running_service(
                    redis_url,
                    namespace=namespace,
                    workers=workers,
                    threads=threads,
                    log_level=args.log_level,
                    app=f'loadtests.app_variants:create("{app}")' if app else None,
                )
            )
            runners[spec] = phases.Runner(service, args.duration, args.connections)
        measured = [endpoint_phase(name, artifact) for name in endpoints]
        for runner in runners.values():  # workers load the model, caches fill
            for phase in measured:
                runner.measure(phase, 2)
        rounds = [measure_round(runners, measured) for _ in range(args.runs)]
    for number, figures in enumerate(rounds, 1):
        print_round(number, figures)
    summary = over_rounds(rounds)
    print_summary(summary)
    print(json.dumps({"args": vars(args), "rounds": rounds, "summary": summary}))


def measure_round(runners: dict[str, phases.Runner], measured: list[phases.Phase]) -> dict:
    """Every variant on every endpoint once; figures by endpoint, then variant."""
    out: dict[str, dict] = {}
    for phase in measured:
        out[phase.name] = {}
        for spec, runner in runners.items():
            result = runner.measure(phase)
            cpu = result.cpu
            out[phase.name][spec] = {
                "rps": round(result.rps, 1),
                "p50_ms": result.latency_ms["p50"],
                "p99_ms": result.p99_ms,
                "service_us_per_request": round(cpu["service"] * 1e6 / max(result.rps, 1e-9)),
                "cpu_cores": cpu,
                "bad_answers": sum(n for s, n in result.statuses.items() if s not in phase.allowed)
                + sum(n for k, n in result.socket_errors.items() if k != "status"),
            }
        base = next(iter(out[phase.name].values()))
        for line in out[phase.name].values():
            line["rps_over_first"] = round(line["rps"] / base["rps"], 3)
            line["p99_over_first"] = round(line["p99_ms"] / base["p99_ms"], 2)
            line["cpu_us_over_first"] = round(
                line["service_us_per_request"] / base["service_us_per_request"], 3
            )
    return out


def print_round(number: int, figures: dict) -> None:
    print(f"\nrun {number}")
    for endpoint, lines in figures.items():
        print(
            f"  {endpoint:<10}{'variant':<26}{'req/s':>8}{'p99':>8}{'x rps':>7}{'x p99':>7}"
            f"{'svc us/req':>11}{'x us':>6}  cores: gen  others  bad"
        )
        for spec, line in lines.items():
            cpu = line["cpu_cores"]
            print(
                f"  {'':<10}{spec:<26}{line['rps']:>8.0f}{line['p99_ms']:>8.2f}"
                f"{line['rps_over_first']:>7.2f}{line['p99_over_first']:>7.2f}"
                f"{line['service_us_per_request']:>11}{line['cpu_us_over_first']:>6.2f}"
                f"  {cpu['generator']:>10.2f}{cpu['others']:>8.2f}{line['bad_answers']:>5}"
            )


def over_rounds(rounds: list[dict]) -> dict:
    """Per endpoint and variant: median req/s ratio, p99 ratio and CPU us per request."""
    summary: dict[str, dict] = {}
    for endpoint, lines in rounds[0].items():
        summary[endpoint] = {}
        for spec in lines:
            values = [r[endpoint][spec] for r in rounds]
            summary[endpoint][spec] = {
                key: round(statistics.median(v[key] for v in values), 3)
                for key in (
                    "rps",
                    "rps_over_first",
                    "p99_over_first",
                    "service_us_per_request",
                    "cpu_us_over_first",
                )
            }
    return summary


def print_summary(summary: dict) -> None:
    print("\nmedian over runs (ratios over the first variant, same run)")
    for endpoint, lines in summary.items():
        for spec, s in lines.items():
            print(
                f"  {endpoint:<10}{spec:<26} req/s {s['rps']:>7.0f}"
                f"  x rps {s['rps_over_first']:.2f}"
                f"  x p99 {s['p99_over_first']:.2f}  service CPU {s['service_us_per_request']:.0f}"
                f" us/request (x {s['cpu_us_over_first']:.2f})"
            )


if __name__ == "__main__":
    main()
