"""Serving with wrk: recommendations, similar items and cart add-ons against the no-op.

    python -m loadtests.bench_serving [--duration 15] [--runs 1] [--connections 8]
        [--workers 2] [--threads N] [--configs 2x1,2x4]
        [--users 1000000] [--items 100000] [--factors 64] [--sessions 300000]
        [--anonymous-visitors 20000] [--foldin] [--session-cache 0] [--auth admin|public]

Publishes one model of ``--items`` items and ``--users`` users (``loadtests.bench_model``:
clustered, heavy-tailed factors; a session model fit on ``--sessions`` synthetic
sessions; a catalog of category, stock, price and title) into a namespace of its own on
``REDIS_URL`` (else an embedded Redis), gives ``--anonymous-visitors`` anonymous visitors
3-5 product views each (items drawn by popularity), starts ``recsvc serve`` (API keys on,
requests sent with the admin key) once per configuration of ``--configs``
(``WORKERSxTHREADS``; default ``--workers`` x ``--threads``), waits until every worker
answers with the model, and measures with wrk (``loadtests.phases``: per run the no-op,
each phase, the no-op again):

- ``known``: ``/v1/visitors/u<random>/recommendations?n=10`` (strategy ``blend``) for
  users the service has no profile of: the blend is their long-term vector alone;
- ``known_active``: ``--anonymous-visitors`` of the model's users, each with 3-5 product
  views (strategy ``blend``: their long-term vector, their session by the session model
  and their own items);
- ``session``: the anonymous visitors (strategy ``session``). wrk asks the same 20,000
  sessions over and over, which would make the session answer cache
  (``RECSVC_SESSION_ANSWER_CACHE``) answer all of them or, cycling past its size, none:
  the server runs with ``--session-cache`` entries (default 0: every answer computed, the
  worst case; ``python -m loadtests.session_repeats`` gives the hit rate a real store's
  traffic gets);
- ``popular``: unknown visitors (strategy ``popular``);
- ``similar``: ``/v1/items/i<popular>/similar?n=10``;
- ``cart``: ``POST /v1/recommendations/cart`` with two popular items;
- with ``--foldin``, ``foldin``: the anonymous visitors again, from a second server
  with ``RECSVC_ANONYMOUS_STRATEGY=foldin``, bracketed by its own no-op.

With ``--auth public`` every phase is sent as a storefront sends it: the public key (so
each read is also charged to the rate limits, in Redis: limits set far above what the
benchmark sends, so the phase measures the checks, not refusals) and, on a visitor's
recommendations, the visitor's identity token (checked per request). The no-op stays an
operations endpoint, which no key reaches. Without it, the admin key: no rate limit, no
token.

Every answer of a recommendation phase must name the model version, its strategy and
no fallback (counted by wrk over all answers), and every status must be 200. Targets
(DESIGN.md): each read endpoint at least 0.5 x the no-op's req/s with p99 at most 2 x the
no-op's p99, in the median over ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable

import numpy as np
import requests

from loadtests import phases, wrk
from loadtests.bench_ingest import UNLIMITED
from loadtests.bench_model import popularity, publish_store, search_floor
from loadtests.server import ADMIN_HEADERS, KEYS, Service, benchmark_redis, running_service
from recsvc.identity.tokens import mint_token
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.scoring.artifact import ModelArtifact
from recsvc.store.namespace import delete_namespace

TARGET = (0.5, 2.0)  # (min req/s over the no-op's, max p99 over the no-op's)
READS = ("known", "known_active", "session", "popular", "similar", "cart", "foldin")
REQUESTS_PER_PHASE = 5000


def recommend_path(visitor: str) -> str:
    return f"/v1/visitors/{visitor}/recommendations?n=10"


def seed_anonymous_visitors(
    service: Service, count: int, artifact: ModelArtifact, seed: int = 3
) -> list[str]:
    """``count`` anonymous visitors with 3-5 product views each, items by popularity."""
    return seed_views(service, [f"anon-{seed}-{n}" for n in range(count)], artifact, seed)


def seed_known_visitors(
    service: Service, count: int, artifact: ModelArtifact, users: int, seed: int = 4
) -> list[str]:
    """``count`` of the model's users browsing now: 3-5 product views each, as
    :func:`seed_anonymous_visitors` gives, so the blend scores their session and own items
    beside their long-term vector."""
    picked = np.random.default_rng(seed).choice(users, count, replace=False)
    return seed_views(service, [f"u{n}" for n in picked.tolist()], artifact, seed)


def seed_views(
    service: Service, visitors: list[str], artifact: ModelArtifact, seed: int
) -> list[str]:
    """3-5 product views for each of ``visitors``, items by popularity."""
    rng = np.random.default_rng(seed)
    count = len(visitors)
    views = rng.integers(3, 6, count)
    picks = rng.choice(len(artifact.item_ids), int(views.sum()), p=popularity(artifact))
    events, position = [], 0
    for visitor, k in zip(visitors, views.tolist(), strict=True):
        for row in picks[position : position + k].tolist():
            events.append({"type": "product_view", "visitor_id": visitor, "item_id": f"i{row}"})
        position += k
    service.send_events(events)
    return visitors


def wait_for_version(service: Service, version: str, timeout: float = 180.0) -> float:
    """Until 50 answers in a row name ``version`` with no fallback (each over a fresh
    connection, so every worker is asked); the seconds it took."""
    started = time.monotonic()
    in_a_row, n = 0, 0
    while in_a_row < 50:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"workers did not serve {version} within {timeout} s")
        n += 1
        answer = requests.get(
            service.url + recommend_path(f"u{n}"),
            headers={**ADMIN_HEADERS, "Connection": "close"},
            timeout=30,
        ).json()
        if answer.get("model_version") == version and answer.get("fallback") is None:
            in_a_row += 1
        else:
            in_a_row = 0
            time.sleep(0.2)
    return time.monotonic() - started


def markers(version: str, strategy: str) -> tuple[str, ...]:
    """What every answer of a recommendation phase holds (Flask's compact JSON)."""
    return (f'"model_version":"{version}"', f'"strategy":"{strategy}"', '"fallback":null')


class Auth:
    """How the phases' requests prove who sends them (``--auth``): the admin key, or the
    public key with each visitor's identity token."""

    def __init__(self, kind: str) -> None:
        self.secret = secrets.token_urlsafe(32) if kind == "public" else None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": KEYS["public"]} if self.secret else dict(ADMIN_HEADERS)

    @property
    def settings(self) -> dict[str, str]:
        """The service's: the token secret, and rate limits no phase reaches."""
        return {"RECSVC_IDENTITY_SECRETS": self.secret, **UNLIMITED} if self.secret else {}

    def visitor_headers(self, visitor: str) -> tuple[tuple[str, str], ...]:
        if self.secret is None:
            return ()
        return (("X-Identity-Token", mint_token(self.secret, visitor_id=visitor)),)


def read_phases(
    artifact: ModelArtifact,
    visitors: list[str],
    users: int,
    active: list[str],
    auth: Auth | None = None,
    seed: int = 1000,
) -> list[phases.Phase]:
    """The read phases (module docstring), sent as ``auth`` says (default the admin key)."""
    auth = auth or Auth("admin")
    rng = random.Random(seed)
    rows = np.random.default_rng(seed).choice(
        len(artifact.item_ids), 2 * REQUESTS_PER_PHASE, p=popularity(artifact)
    )
    version = artifact.version

    def gets(paths: list[str]) -> list[wrk.Request]:
        return [wrk.Request("GET", path) for path in paths]

    def recommend(pick: Callable[[], str]) -> list[wrk.Request]:
        picked = [pick() for _ in range(REQUESTS_PER_PHASE)]
        return [wrk.Request("GET", recommend_path(v), b"", auth.visitor_headers(v)) for v in picked]

    def phase(
        name: str, requests: list[wrk.Request], marker: str | tuple[str, ...] = ""
    ) -> phases.Phase:
        return phases.Phase(name, requests, marker, headers=auth.headers)

    carts = [
        wrk.Request(
            "POST",
            "/v1/recommendations/cart",
            json.dumps({"items": [f"i{a}", f"i{b}"], "n": 10}, separators=(",", ":")).encode(),
        )
        for a, b in zip(rows[::2], rows[1::2], strict=True)
    ]
    n = REQUESTS_PER_PHASE
    return [
        phase("known", recommend(lambda: f"u{rng.randrange(users)}"), markers(version, "blend")),
        phase("known_active", recommend(lambda: rng.choice(active)), markers(version, "blend")),
        phase("session", recommend(lambda: rng.choice(visitors)), markers(version, "session")),
        phase(
            "popular",
            recommend(lambda: f"nobody-{rng.randrange(10**9)}"),
            markers(version, "popular"),
        ),
        phase("similar", gets([f"/v1/items/i{r}/similar?n=10" for r in rows[:n]])),
        phase("cart", carts, '"items":[{'),
    ]


def parse_configs(raw: str) -> list[tuple[int, int]]:
    configs = []
    for part in raw.split(","):
        workers, _, threads = part.strip().partition("x")
        configs.append((int(workers), int(threads or 1)))
    return configs


def config_name(workers: int, threads: int | None) -> str:
    """``2x4``; without threads given, the gunicorn configuration's own default."""
    return f"{workers}x{threads}" if threads else f"{workers} workers x the default threads"


def measure_config(
    redis_url: str,
    namespace: str,
    workers: int,
    threads: int | None,
    args: argparse.Namespace,
    artifact: ModelArtifact,
    visitors: list[str],
    active: list[str],
    redis_pid: int | None,
) -> list[dict]:
    """Every run of the read phases on one gunicorn configuration (and fold-in from a
    second server with ``--foldin``); the runs' reports."""
    auth = Auth(args.auth)
    measured = read_phases(artifact, visitors, args.users, active, auth)
    config = {"namespace": namespace, "workers": workers, "threads": threads}
    settings = {"RECSVC_SESSION_ANSWER_CACHE": str(args.session_cache), **auth.settings}
    with running_service(redis_url, **config, settings=settings) as service:
        loaded_s = wait_for_version(service, artifact.version)
        print(
            f"\n== {config_name(workers, threads)}: workers served the model after {loaded_s:.1f} s"
        )
        runner = phases.Runner.from_args(service, args, redis_pid)
        runner.warm_up(measured)
        reports = runner.run(measured, args.runs, phases.print_run)
    if args.foldin:
        foldin = phases.Phase(
            "foldin", measured[2].requests, markers(artifact.version, "foldin"), auth.headers
        )
        settings = {**settings, "RECSVC_ANONYMOUS_STRATEGY": "foldin"}
        with running_service(redis_url, **config, settings=settings) as service:
            wait_for_version(service, artifact.version)
            runner = phases.Runner.from_args(service, args, redis_pid)
            runner.warm_up([foldin])
            for report, more in zip(reports, runner.run([foldin], args.runs), strict=True):
                report["phases"]["foldin"] = more["phases"]["foldin"]
                report["foldin_noop_rps"] = more["noop_rps"]
                report["problems"].update(more["problems"])
                print(f"  foldin run {more['run']}: {more['phases']['foldin']}")
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    phases.add_arguments(parser)
    parser.add_argument("--configs", default="", help="gunicorn WORKERSxTHREADS, comma-separated")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--anonymous-visitors", type=int, default=20_000)
    parser.add_argument("--foldin", action="store_true", help="measure fold-in too")
    parser.add_argument(
        "--session-cache", type=int, default=0, help="session answers a worker keeps"
    )
    parser.add_argument(
        "--auth",
        choices=("admin", "public"),
        default="admin",
        help="public: the public key, rate limits and identity tokens, as storefronts send",
    )
    args = parser.parse_args()
    configs = parse_configs(args.configs) if args.configs else [(args.workers, args.threads)]

    with benchmark_redis("recsvc-bench-serving-") as redis_url:
        client = connect(redis_url, socket_timeout=60)
        namespace = f"benchsrv{uuid.uuid4().hex[:6]}"
        keys = KeySpace(namespace)
        out: dict = {"args": vars(args), "configs": {}}
        try:
            started = time.perf_counter()
            artifact = publish_store(
                client,
                keys,
                users=args.users,
                items=args.items,
                factors=args.factors,
                sessions=args.sessions,
                progress=True,
            )
            out["search_floor_top10"] = search_floor(artifact)
            with running_service(redis_url, namespace=namespace) as service:
                visitors = seed_anonymous_visitors(service, args.anonymous_visitors, artifact)
                active = seed_known_visitors(service, args.anonymous_visitors, artifact, args.users)
            print(
                f"published {artifact.version}: {args.items:,} items + {args.users:,} users x "
                f"{args.factors}, catalog, {len(visitors):,} anonymous visitors, in "
                f"{time.perf_counter() - started:.0f} s; in-process top-10 search "
                f"{out['search_floor_top10']}",
                flush=True,
            )
            redis_pid = phases.redis_pid(client)
            met = True
            for workers, threads in configs:
                reports = measure_config(
                    redis_url,
                    namespace,
                    workers,
                    threads,
                    args,
                    artifact,
                    visitors,
                    active,
                    redis_pid,
                )
                summary = phases.over_runs(reports)
                targets = {name: TARGET for name in READS}
                met &= phases.print_over_runs(summary, targets)
                met &= not any(r["problems"] for r in reports)
                out["configs"][config_name(workers, threads)] = {"runs": reports, "over": summary}
        finally:
            delete_namespace(client, namespace)
    print(f"every read endpoint meets its targets, answers as expected: {met}")
    out["meets_targets"] = met
    print(json.dumps(out))


if __name__ == "__main__":
    main()
