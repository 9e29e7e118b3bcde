"""Event ingestion with wrk: batches of 100 against the no-op endpoint, same server, same run.

    python -m loadtests.bench_ingest [--duration 15] [--runs 1] [--connections 8]
        [--workers 2] [--threads N] [--batch-size 100] [--visitors 1000000]
        [--auth server|public]

Starts ``recsvc serve`` (API keys on; events sent with the admin key, as a store's
backend would) on ``REDIS_URL`` if set, else an embedded Redis, and measures with wrk
(``loadtests.phases``: no-op, phases, no-op per run):

- ``ingest``: ``POST /v1/events`` of ``--batch-size`` events for as many distinct
  visitors, drawn from ``--visitors``; wrk rotates through 1,000 such bodies;
- ``contention``: the worst case, every batch on the same 100 visitors: writers keep
  invalidating each other's WATCHed transaction. Allowed answers are 202 and what a
  client can retry (429 or 503 with Retry-After); a 500 or a lost event fails the run.

With ``--auth public``, two more phases on the same bodies: batches of ``--batch-size``
events of one logged-in visitor each (every event with its ``user_id``), as a browser
sends them, rotating through 1,000 visitors:

- ``users_server``: sent with the admin key, which runs on the store's servers: no token
  is checked and nothing is rate limited;
- ``users_public``: sent with the public key and, per request, the visitor's
  ``X-Identity-Token`` (``wrk.Request.headers``): every request's token is verified
  against the batch, and its events are charged to the key's, the address's and the
  visitor's rate-limit buckets (one Lua call; the limits are set far above the load, so
  nothing is refused and the cost is the check's alone).

The ratio ``users_public / users_server`` of events/s is the cost of the token checks.

After each phase every shard of the Redis stream together must have grown by exactly the
events answered 202 (nothing accepted is lost; nothing refused is written). Prints
events/s against the target (DESIGN.md: 10,000 events/s in batches of 100), the ratios
against the no-op, the generator's, the service's, Redis's and everybody else's CPU, and
worker PSS.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import tempfile
import time
from pathlib import Path

from loadtests import phases, wrk
from loadtests.server import KEYS, benchmark_redis, running_service
from recsvc.core.events import SOURCES
from recsvc.identity.tokens import mint_token
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.settings import Settings
from recsvc.store.namespace import delete_namespace
from recsvc.store.stream import decode_entry, stream_keys, total_length

TARGET_EVENTS_PER_S = 10_000
RETRYABLE = {202, 429, 503}
TYPES = ["page_view", "product_view", "product_view", "product_view", "search", "add_to_cart"]
BODIES = 1000


# The items a hot visitor (contention) carts: every batch adds to the same 100 carts, and
# a cart holds at most RECSVC_CART_MAX_LINES (100) lines, after which each add is a 422
# (the cap doing its job): a few thousand adds a second over 100 visitors would reach
# it within seconds if each add were a new item.
HOT_CART_ITEMS = 50


def event(rng: random.Random, visitor: str, cart_items: int = 100_000) -> dict:
    kind = rng.choice(TYPES)
    body: dict = {"type": kind, "visitor_id": visitor}
    if kind == "product_view":
        body["item_id"] = f"i{rng.randrange(100_000)}"
    if kind == "add_to_cart":
        body["item_id"] = f"i{rng.randrange(cart_items)}"
    if kind == "page_view":
        body["source"] = rng.choice(SOURCES)
    if kind == "search":
        body["properties"] = {"query": "red shoes"}
    return body


def batch_requests(
    batch_size: int, visitors: int, same_visitors: bool, seed: int = 0
) -> list[wrk.Request]:
    """``BODIES`` batches of ``batch_size`` events for distinct visitors of a batch: drawn
    from ``visitors`` ids, or with ``same_visitors`` the same ``batch_size`` in every batch."""
    rng = random.Random(seed)
    fixed = [f"hot{n}" for n in range(batch_size)]
    out = []
    for _ in range(BODIES):
        ids = fixed if same_visitors else [f"v{n}" for n in rng.sample(range(visitors), batch_size)]
        cart_items = HOT_CART_ITEMS if same_visitors else 100_000
        body = {"events": [event(rng, visitor, cart_items) for visitor in ids]}
        out.append(
            wrk.Request("POST", "/v1/events", json.dumps(body, separators=(",", ":")).encode())
        )
    return out


def user_batch_requests(
    batch_size: int, visitors: int, secret: str | None, seed: int = 2
) -> list[wrk.Request]:
    """``BODIES`` batches of ``batch_size`` events of one logged-in visitor each (drawn
    from ``visitors`` ids, user ``u<n>`` on visitor ``v<n>``), every event with its
    ``user_id``; with ``secret``, each request carries the visitor's identity token, as
    the store's backend mints it for the page."""
    rng = random.Random(seed)
    out = []
    for n in rng.sample(range(visitors), BODIES):
        visitor, user = f"v{n}", f"u{n}"
        body = {"events": [{**event(rng, visitor), "user_id": user} for _ in range(batch_size)]}
        headers: tuple[tuple[str, str], ...] = ()
        if secret is not None:
            token = mint_token(secret, user_id=user, visitor_id=visitor, ttl_seconds=86400)
            headers = (("X-Identity-Token", token),)
        data = json.dumps(body, separators=(",", ":")).encode()
        out.append(wrk.Request("POST", "/v1/events", data, headers))
    return out


# The public phases' limits (here and in bench_serving): far above what a benchmark
# sends, so that every request is let through and the phase measures the checks, not
# refusals.
UNLIMITED = {
    f"RECSVC_RATE_LIMIT_{scope}_{kind}": "1000000000"
    for scope in ("KEY", "VISITOR", "ADDRESS", "READ_ADDRESS", "READ_VISITOR")
    for kind in ("PER_SECOND", "BURST")
}


class StreamCheck:
    """After a phase: every event id answered 202 is in the stream (every shard), among the
    entries the phase added. The stream may hold more (up to a batch per connection):
    requests in flight when wrk stopped were written, but their answers were not read."""

    def __init__(self, client, keys: KeySpace, batch_size: int, connections: int) -> None:
        self.client, self.keys = client, keys
        self.shards = Settings.from_env().stream_shards  # the service's, from the same env
        self.streams = stream_keys(keys, self.shards)
        self.slack = batch_size * connections
        self.capture = Path(tempfile.mkstemp(prefix="recsvc-ingest-ids-", suffix=".jsonl")[1])
        self.last_ids = self._last_ids()
        self.figures: dict[str, dict] = {}

    def _settle(self, quiet: float = 0.5, timeout: float = 30.0) -> None:
        """Until the stream stops growing: requests in flight when wrk stopped finish."""
        deadline = time.monotonic() + timeout
        length = total_length(self.client, self.keys, self.shards)
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = total_length(self.client, self.keys, self.shards)
            if now == length:
                return
            length = now

    def _last_ids(self) -> dict[str, bytes]:
        self._settle()
        last = {}
        for stream in self.streams:
            newest = self.client.xrevrange(stream, count=1)
            last[stream] = newest[0][0] if newest else b"0-0"
        return last

    def _added_ids(self) -> list[str]:
        """Event ids of the entries added to each shard since ``last_ids``, in chunks."""
        ids = []
        for stream, after in self.last_ids.items():
            while True:
                chunk = self.client.xrange(stream, min=b"(" + after, count=10_000)
                if not chunk:
                    break
                ids.extend(decode_entry(fields)["id"] for _, fields in chunk)
                after = chunk[-1][0]
        return ids

    def __call__(self, result: wrk.Result) -> list[str]:
        answered = [
            event_id
            for line in self.capture.read_text().splitlines()
            if line.strip()
            for event_id in json.loads(line)["ids"]
        ]
        self._settle()
        added = self._added_ids()
        self.last_ids = self._last_ids()
        missing = set(answered) - set(added)
        self.figures[result.name] = {
            "events_accepted": len(answered),
            "events_per_s": round(len(answered) / result.seconds),
            "stream_added": len(added),
            "missing": len(missing),
        }
        problems = []
        if missing or len(answered) != len(set(answered)):
            problems.append(f"{len(missing)} events answered 202 are not in the stream")
        if not 0 <= len(added) - len(answered) <= self.slack:
            problems.append(f"stream added {len(added)}, {len(answered)} answered 202")
        return problems

    def reset(self) -> None:
        self.last_ids = self._last_ids()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    phases.add_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument(
        "--auth",
        choices=("server", "public"),
        default="server",
        help="public: also the same user batches with the admin key and with the public "
        "key and identity tokens (the token checks' cost)",
    )
    args = parser.parse_args()
    if args.batch_size > 1000 or args.batch_size < 1:
        parser.error(f"--batch-size {args.batch_size}: between 1 and 1000 (a batch's limit)")
    if args.auth == "public" and args.visitors < BODIES:
        parser.error(f"--visitors {args.visitors}: at least {BODIES} with --auth public")
    secret = secrets.token_urlsafe(32)
    settings = {"RECSVC_IDENTITY_SECRETS": secret, **UNLIMITED} if args.auth == "public" else {}
    ok = True
    with (
        benchmark_redis() as redis_url,
        running_service(
            redis_url, workers=args.workers, threads=args.threads, settings=settings
        ) as service,
    ):
        client = connect(redis_url, socket_timeout=60)
        keys = KeySpace(service.namespace)
        check = StreamCheck(client, keys, args.batch_size, args.connections)
        measured = [
            accepted_phase(
                "ingest", batch_requests(args.batch_size, args.visitors, same_visitors=False), check
            ),
            phases.Phase(
                "contention",
                batch_requests(args.batch_size, args.visitors, same_visitors=True, seed=1),
                allowed=frozenset(RETRYABLE),
                check=check,
                capture=check.capture,
            ),
        ]
        if args.auth == "public":
            measured += user_phases(args, secret, check)
        runner = phases.Runner.from_args(service, args, phases.redis_pid(client))
        runner.warm_up(measured, seconds=1)
        check.reset()

        def on_run(report: dict) -> None:
            report["events"] = dict(check.figures)
            phases.print_run(report)
            ingest = check.figures["ingest"]["events_per_s"]
            print(
                f"  events/s {ingest} (target {TARGET_EVENTS_PER_S}); contention: "
                f"{check.figures['contention']['events_per_s']} events/s accepted, the rest "
                "answered 503/429 with Retry-After"
            )
            if args.auth == "public":
                print_token_cost(report)
            check.reset()

        try:
            reports = runner.run(measured, args.runs, on_run)
        finally:
            delete_namespace(client, service.namespace)
    summary = phases.over_runs(reports)
    phases.print_over_runs(summary, {})
    events_per_s = sorted(r["events"]["ingest"]["events_per_s"] for r in reports)
    median = events_per_s[len(events_per_s) // 2]
    ok = median >= TARGET_EVENTS_PER_S and not any(r["problems"] for r in reports)
    if args.auth == "public":
        for name in ("events_per_s", "events_per_cpu_s"):
            ratios = sorted(token_cost(r)[name] for r in reports)
            print(
                f"token checks: {name} public key + tokens / admin key, median "
                f"{ratios[len(ratios) // 2]:.3f} [{ratios[0]:.3f}-{ratios[-1]:.3f}] over "
                f"{len(reports)} run(s)"
            )
    print(
        f"ingestion events/s median {median} over {len(reports)} run(s) "
        f"(target {TARGET_EVENTS_PER_S}); nothing lost, only retryable answers: "
        f"{not any(r['problems'] for r in reports)}; meets target: {ok}"
    )
    print(json.dumps({"args": vars(args), "runs": reports, "over_runs": summary, "ok": ok}))


def user_phases(args: argparse.Namespace, secret: str, check: StreamCheck) -> list[phases.Phase]:
    """The same user batches with the admin key (no token checks) and with the public key
    and a token per request."""
    return [
        accepted_phase(
            "users_server", user_batch_requests(args.batch_size, args.visitors, None), check
        ),
        accepted_phase(
            "users_public",
            user_batch_requests(args.batch_size, args.visitors, secret),
            check,
            headers={"X-API-Key": KEYS["public"]},
        ),
    ]


def accepted_phase(
    name: str, requests: list, check: StreamCheck, headers: dict[str, str] | None = None
) -> phases.Phase:
    """A phase whose every batch must be accepted (202) and land in the stream."""
    extra = {"headers": headers} if headers else {}
    return phases.Phase(
        name,
        requests,
        marker='"accepted"',
        allowed=frozenset({202}),
        check=check,
        capture=check.capture,
        **extra,
    )


def token_cost(report: dict) -> dict[str, float]:
    """The public key with identity tokens against the admin key, on the same batches:
    the ratio of events/s, and of events per CPU second of the service and Redis together
    (on a machine shared with others the second holds still while the first follows
    whatever else runs; Redis is counted since the rate limits run there)."""
    figures, lines = report["events"], report["phases"]
    ratios = {}
    for name, per in (("events_per_s", lambda _n: 1.0), ("events_per_cpu_s", _cpu)):
        server, public = (
            figures[phase]["events_per_s"] / per(lines[phase])
            for phase in ("users_server", "users_public")
        )
        ratios[name] = round(public / server, 3) if server else float("nan")
    return ratios


def _cpu(line: dict) -> float:
    cores = line["cpu_cores"]
    return max(cores["service"] + cores["redis"], 1e-9)


def print_token_cost(report: dict) -> None:
    figures = report["events"]
    ratios = token_cost(report)
    print(
        f"  token checks: {figures['users_public']['events_per_s']} events/s with the public "
        f"key and identity tokens, {figures['users_server']['events_per_s']} without (admin "
        f"key): ratio {ratios['events_per_s']:.3f}; per CPU second of the service and Redis "
        f"{ratios['events_per_cpu_s']:.3f}"
    )


if __name__ == "__main__":
    main()
