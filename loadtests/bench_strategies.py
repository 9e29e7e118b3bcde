"""In-process cost of each served strategy, one request at a time (no HTTP, no Redis).

    python -m loadtests.bench_strategies [--items 100000] [--factors 64]
        [--sessions 300000] [--requests 2000]

Builds the serving benchmark's model (``loadtests.bench_model.structured_artifact``:
clustered factors with heavy-tailed norms and a session model fit on synthetic cluster
sessions) and times, over ``--requests`` visitors each, what a worker runs per request:

- ``blend``: a known visitor (their vector, 3-30 recent items of their cluster, the newest
  few within the hour, one in the cart for a third of them) through the known-visitor
  blend, evidence included: what known visitors get now;
- ``als_only``: the same visitor as known visitors were served before the blend: a
  search of their vector and the ALS explanation over their recent items;
- ``session``, ``foldin``: the same states without a vector; ``session_hit``: the
  session strategy answering a session its answer cache holds
  (:mod:`recsvc.scoring.answer_cache`);
- ``similar``, ``cart``: an item's similar items, a two-item cart's add-ons.

Prints p50 and p99 of each request's CPU time in milliseconds (one BLAS thread, as in a
worker): the work a request costs, which a busy machine stretches less than the wall
clock. Compare rows of one run.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from loadtests.bench_model import structured_artifact
from recsvc.scoring.model import ScoringModel
from recsvc.scoring.state import VisitorState, Want
from recsvc.scoring.strategies import BLEND, CART, FOLD_IN, SESSION, SIMILAR

HOUR = 3600.0


def visitor_states(
    model: ScoringModel, vectors: np.ndarray, count: int, seed: int = 3
) -> list[VisitorState]:
    """Known visitors whose recent items lie near their vector (its best items)."""
    rng = np.random.default_rng(seed)
    states = []
    for n in range(count):
        vector = vectors[n % len(vectors)]
        near, _ = model.index.search(vector, 200)
        size = int(rng.integers(3, 31))
        recent = rng.choice(near, size, replace=False).astype(np.int64)
        in_session = int(rng.integers(1, min(size, 6) + 1))
        times = 1.7e9 - np.concatenate(
            [np.arange(in_session) * 60.0, 2 * HOUR + np.arange(size - in_session) * 600.0]
        )
        cart = recent[:1] if n % 3 == 0 else recent[:0]
        states.append(
            VisitorState(
                vector=vector,
                recent=recent,
                recent_kinds=("product_view",) * size,
                recent_times=times,
                recent_touches=rng.integers(1, 4, size).astype(np.int32),
                cart=cart,
            )
        )
    return states


def als_only(model: ScoringModel, state: VisitorState, n: int = 10) -> None:
    """Known visitors' path before the blend: search, then explain over recent items."""
    rows, _ = model.index.search(state.vector, n, np.ones(model.n_items, bool))
    model.folder.explain(state.recent, None, rows)


def timed(run, states) -> tuple[float, float]:
    for state in states[:20]:  # warm caches
        run(state)
    times = np.empty(len(states))
    for n, state in enumerate(states):
        # The thread's CPU time, not the wall clock: a busy machine stretches the wall
        # time of every request, but not the work one request does.
        started = time.thread_time()
        run(state)
        times[n] = time.thread_time() - started
    p50, p99 = np.percentile(times * 1000.0, [50, 99])
    return float(p50), float(p99)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    artifact = structured_artifact(2000, args.items, args.factors, sessions=args.sessions)
    model = ScoringModel.from_artifact(artifact)
    model.warm()
    print(
        f"model: {args.items:,} items, {args.factors} factors, built in "
        f"{time.perf_counter() - started:.1f} s"
    )
    known = visitor_states(model, artifact.user_factors, args.requests)
    anonymous = [VisitorState(**{**state.__dict__, "vector": None}) for state in known]
    want = Want(n=10)
    cached = replace(model, answer_cache_size=len(anonymous))
    for state in anonymous:  # every session asked once: the timed run only hits
        SESSION.rank(cached, state, want)
    rng = np.random.default_rng(4)
    items = rng.integers(0, args.items, (args.requests, 2))
    runs = {
        "blend": (lambda s: BLEND.rank(model, s, want), known),
        "als_only": (lambda s: als_only(model, s), known),
        "session": (lambda s: SESSION.rank(model, s, want), anonymous),
        "session_hit": (lambda s: SESSION.rank(cached, s, want), anonymous),
        "foldin": (lambda s: FOLD_IN.rank(model, s, want), anonymous),
        "similar": (
            lambda s: SIMILAR.rank(model, s, want),
            [VisitorState.viewing(int(i)) for i in items[:, 0]],
        ),
        "cart": (
            lambda s: CART.rank(model, s, want),
            [VisitorState.with_cart(pair) for pair in items],
        ),
    }
    print(f"{'strategy':10s} {'p50 ms':>8s} {'p99 ms':>8s}")
    with threadpool_limits(1, "blas"):
        for name, (run, states) in runs.items():
            p50, p99 = timed(run, states)
            print(f"{name:10s} {p50:8.3f} {p99:8.3f}")


if __name__ == "__main__":
    main()
