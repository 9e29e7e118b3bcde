"""Top-k item search for one visitor: latency and recall of the candidate methods.

Run (about 3 minutes; faiss and hnswlib rows only where those packages import)::

    python -m loadtests.bench_search                      # synthetic factors
    python -m loadtests.bench_search --retailrocket       # + ALS fit on the RetailRocket log
    python -m loadtests.bench_search --factors items.npy --users users.npy

Everything is single-threaded (BLAS and OpenMP pinned to 1): one query per request, the
gunicorn workers are the parallelism. Per method and k it prints the per-query p50 and p99
latency in milliseconds, recall@k against exact float32 top-k (an item counts when its
exact score reaches the k-th exact score, so ties do not count as misses), build seconds
and the memory the index adds to a worker beyond the item matrix it already holds.

Datasets, 64 factors:

- ``gauss-flat``: 100k items around 500 Gaussian centres with nearly equal norms
  (lognormal σ=0.3): the worst case for norm pruning, the best for clustering.
- ``gauss-pop``: the same directions, norms heavy-tailed (Pareto) as popularity makes
  ALS norms.
- ``retailrocket``: implicit ALS (64 factors, 15 iterations, the project's weights) fit on
  the RetailRocket log; the 100k items of largest norm; queries are user vectors.

The choice (recsvc.scoring.index), from this script's figures on the 2-core machine
(RetailRocket, k=10 / k=100): ``NormPrunedIndex``, exact search that stops when
``‖u‖·‖y_next‖`` falls below the k-th score. On real ALS factors it answers in 0.08 / 0.31
ms at p50 (0.8 / 1.0 ms p99) against 1.9 ms for the full scan, with recall 1 by
construction, no new dependency, no build time to speak of (one argsort of the norms, so
a model swap costs nothing) and one sorted copy of the factors (25 MB at 100k × 64).
HNSW (faiss, hnswlib, M=32) is as fast at p50 and tighter at p99, but approximate: recall
0.97-0.99 at k=10 but only 0.88-0.93 at k=100 with ef 64-256 on the real factors; it
takes 4-8 s per version to build on two cores (in every worker, or shipped with the
artifact), adds about 50 MB per worker and a compiled dependency with its own OpenMP pool
(a fork hazard under gunicorn's preload), and filtering means over-fetching. An inverted
file (faiss IVFFlat, 316 lists) is fast but its recall on ALS factors is 0.48-0.88 even at
nprobe 64: L2 clusters do not bound inner products of vectors of unequal norms. An exact
search over those clusters with a ball bound (``u·c + ‖u‖·r_c``) was tried and dropped:
in 64 dimensions the bound prunes almost no cluster (17-28 ms in numpy). Float16
storage pays only where a kernel exists (faiss SQfp16: 0.4 ms, exact to float16); numpy
has no float16 BLAS (26-45 ms). Exact search stays the index up to 20k items (crossover
table) and is the reference. The limit: where norms are flat (``gauss-flat``) pruning
saves nothing and costs what the full scan does (1.8-2 ms); that is the figure to watch
when a model changes, and HNSW the next step if it ever matters.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recsvc.scoring.foldin import FoldIn
from recsvc.scoring.index import ExactIndex, NormPrunedIndex
from recsvc.scoring.rerank import rerank

N_ITEMS = 100_000
FACTORS = 64
KS = (10, 100)
CACHE = Path("/tmp/recsvc-bench-search")

Search = Callable[[np.ndarray, int], np.ndarray]


def gaussian_factors(heavy_norms: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items ``(N_ITEMS, 64)`` float32 and 1,000 queries near random items."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((500, FACTORS))
    labels = rng.integers(0, 500, N_ITEMS)
    items = centres[labels] + 0.7 * rng.standard_normal((N_ITEMS, FACTORS))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    norms = rng.pareto(1.5, N_ITEMS) + 0.01 if heavy_norms else rng.lognormal(0, 0.3, N_ITEMS)
    items *= norms[:, None]
    queries = items[rng.integers(0, N_ITEMS, 1000)] + 0.3 * rng.standard_normal((1000, FACTORS))
    return items.astype(np.float32), queries.astype(np.float32)


def retailrocket_factors() -> tuple[np.ndarray, np.ndarray]:
    """Item and user factors of an ALS fit on RetailRocket, cached under ``CACHE``."""
    items_path, users_path = CACHE / "rr_items.npy", CACHE / "rr_users.npy"
    if not items_path.exists():
        from training.loaders import load_events
        from training.matrix import build_matrix
        from training.scorers import ALSScorer

        log = Path(__file__).resolve().parents[1] / "../shared/data/retailrocket/events.csv.gz"
        interactions, _ = load_events(log)
        print("fitting ALS on RetailRocket (about a minute)...", file=sys.stderr)
        scorer = ALSScorer(factors=FACTORS, iterations=15).fit(build_matrix(interactions))
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(items_path, scorer.item_factors)
        np.save(users_path, scorer.user_factors)
    return np.load(items_path), np.load(users_path)


def real_dataset(items: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``N_ITEMS`` longest item vectors, 1,000 user vectors of the top-decile users."""
    rng = np.random.default_rng(1)
    kept = items[np.argsort(-np.linalg.norm(items, axis=1))[:N_ITEMS]]
    norms = np.linalg.norm(users, axis=1)
    active = np.flatnonzero(norms >= np.quantile(norms, 0.9))
    queries = users[rng.choice(active, min(1000, len(active)), replace=False)]
    return np.ascontiguousarray(kept, np.float32), np.ascontiguousarray(queries, np.float32)


def timed(search: Search, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[np.ndarray]]:
    search(queries[0], k)  # warm caches and lazy initialisation
    latencies, results = np.empty(len(queries)), []
    for i, query in enumerate(queries):
        start = time.perf_counter()
        rows = search(query, k)
        latencies[i] = time.perf_counter() - start
        results.append(np.asarray(rows).reshape(-1)[:k])
    return latencies * 1e3, results


def recall(items: np.ndarray, queries: np.ndarray, results: list[np.ndarray], k: int) -> float:
    exact = ExactIndex(items)
    hits = 0
    for query, rows in zip(queries, results, strict=True):
        kth = exact.search(query, k)[1][-1]
        rows = rows[rows >= 0]
        # A gathered matvec may round differently from the full one: allow float32 noise.
        hits += int(np.count_nonzero(items[rows] @ query >= kth - 1e-5 * abs(kth)))
    return hits / (k * len(queries))


def methods(items: np.ndarray, quick: bool) -> Iterator[tuple[str, float, int, Search]]:
    """(name, build seconds, extra bytes, search) for every method that can run here."""
    start = time.perf_counter()
    exact = ExactIndex(items)
    yield "exact f32 (numpy)", time.perf_counter() - start, 0, lambda q, k: exact.search(q, k)[0]
    start = time.perf_counter()
    pruned = NormPrunedIndex(items)
    built = time.perf_counter() - start
    yield "norm-pruned exact (chosen)", built, pruned.memory_bytes(), _rows(pruned)
    half = items.astype(np.float16)
    yield "exact f16 (numpy)", 0.0, half.nbytes, lambda q, k: _top(half @ q.astype(np.float16), k)
    yield from _faiss_methods(items, quick)
    yield from _hnswlib_methods(items, quick)


def _rows(index: Any) -> Search:
    return lambda q, k: index.search(q, k)[0]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argpartition(scores, len(scores) - k)[len(scores) - k :]


def _faiss_methods(items: np.ndarray, quick: bool) -> Iterator[tuple[str, float, int, Search]]:
    try:
        import faiss
    except ImportError:
        print("faiss not installed: its rows are skipped", file=sys.stderr)
        return
    faiss.omp_set_num_threads(1)
    f, ip = items.shape[1], faiss.METRIC_INNER_PRODUCT

    def search(index: Any) -> Search:
        return lambda q, k: index.search(q[None, :], k)[1][0]

    for name, quantizer in (("fp16", faiss.ScalarQuantizer.QT_fp16),):
        start = time.perf_counter()
        sq = faiss.IndexScalarQuantizer(f, quantizer, ip)
        sq.train(items)
        sq.add(items)
        yield f"faiss SQ {name}", time.perf_counter() - start, items.nbytes // 2, search(sq)
    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(f), f, 316, ip)
    ivf.train(items)
    ivf.add(items)
    built = time.perf_counter() - start
    for nprobe in (16, 64):
        ivf.nprobe = nprobe
        yield f"faiss IVFFlat 316 nprobe={nprobe}", built, items.nbytes, search(ivf)
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(f, 32, ip)
    hnsw.hnsw.efConstruction = 100
    faiss.omp_set_num_threads(2)  # build with both cores, as a worker would not
    hnsw.add(items)
    faiss.omp_set_num_threads(1)
    built = time.perf_counter() - start
    extra = items.nbytes + len(items) * 32 * 2 * 4 * 9 // 8
    for ef in (64, 128) if quick else (64, 128, 256):
        hnsw.hnsw.efSearch = ef

        def query(q: np.ndarray, k: int, ef: int = ef) -> np.ndarray:
            hnsw.hnsw.efSearch = max(ef, k)
            return hnsw.search(q[None, :], k)[1][0]

        yield f"faiss HNSWFlat M=32 ef={ef}", built, extra, query


def _hnswlib_methods(items: np.ndarray, quick: bool) -> Iterator[tuple[str, float, int, Search]]:
    try:
        import hnswlib
    except ImportError:
        print("hnswlib not installed: its rows are skipped", file=sys.stderr)
        return
    start = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=items.shape[1])
    index.init_index(len(items), ef_construction=100, M=32)
    index.add_items(items, num_threads=2)
    built = time.perf_counter() - start
    extra = items.nbytes + len(items) * 32 * 2 * 4 * 9 // 8
    for ef in (64, 128) if quick else (64, 128, 256):

        def query(q: np.ndarray, k: int, ef: int = ef) -> np.ndarray:
            index.set_ef(max(ef, k))
            return index.knn_query(q, k, num_threads=1)[0][0].astype(np.int64)

        yield f"hnswlib M=32 ef={ef}", built, extra, query


def bench_dataset(name: str, items: np.ndarray, queries: np.ndarray, quick: bool) -> None:
    print(f"\n## {name}: {items.shape[0]:,} items x {items.shape[1]}, {len(queries)} queries")
    print(
        f"{'method':34s} {'k':>4s} {'p50 ms':>8s} {'p99 ms':>8s} {'recall':>7s} "
        f"{'build s':>8s} {'+MB':>6s}"
    )
    for method, built, extra, search in methods(items, quick):
        # numpy float16 has no BLAS kernel: a few queries show it.
        batch = queries[:20] if "f16 (numpy)" in method else queries
        for k in KS:
            latencies, results = timed(search, batch, k)
            print(
                f"{method:34s} {k:4d} {np.percentile(latencies, 50):8.3f} "
                f"{np.percentile(latencies, 99):8.3f} {recall(items, batch, results, k):7.3f} "
                f"{built:8.2f} {extra / 2**20:6.1f}",
                flush=True,
            )


def bench_crossover(items: np.ndarray, queries: np.ndarray) -> None:
    """Exact vs pruned by catalog size (the longest items kept, as a smaller catalog)."""
    print(f"\n## crossover, k=100: p50 / p99 ms, {len(queries)} queries")
    print(f"{'items':>8s} {'exact':>16s} {'pruned':>16s}")
    by_norm = items[np.argsort(-np.linalg.norm(items, axis=1))]
    for n in (5_000, 10_000, 20_000, 50_000, 100_000):
        subset = np.ascontiguousarray(by_norm[:n])
        cells = []
        for index in (ExactIndex(subset), NormPrunedIndex(subset)):
            latencies, _ = timed(_rows(index), queries, 100)
            cells.append(f"{np.percentile(latencies, 50):.3f} / {np.percentile(latencies, 99):.3f}")
        print(f"{n:8,d} {cells[0]:>16s} {cells[1]:>16s}")


def bench_request_parts(items: np.ndarray) -> None:
    """Fold-in, explanations and re-ranking at the sizes one request uses."""
    rng = np.random.default_rng(3)
    folder = FoldIn(items, 0.05, 1.0)
    categories = rng.integers(0, 50, len(items))
    histories = [rng.choice(len(items), 5) for _ in range(500)]
    candidates = NormPrunedIndex(items).search(items[0], 60)
    parts: dict[str, Callable[[np.ndarray], Any]] = {
        "fold_in, 5 items": lambda h: folder.vector(h),
        "explain, 5 items x 10 recs": lambda h: folder.explain(h, None, candidates[0][:10]),
        "rerank MMR 60 -> 10, diversity .3": lambda h: rerank(
            candidates[0], candidates[1], items, categories, 10, diversity=0.3
        ),
    }
    print("\n## request parts: p50 / p99 ms over 500 calls")
    for name, part in parts.items():
        latencies = np.empty(len(histories))
        for i, history in enumerate(histories):
            start = time.perf_counter()
            part(history)
            latencies[i] = time.perf_counter() - start
        latencies *= 1e3
        print(f"{name:36s} {np.percentile(latencies, 50):.3f} / {np.percentile(latencies, 99):.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retailrocket", action="store_true", help="add ALS RetailRocket factors")
    parser.add_argument("--factors", type=Path, help="item factors .npy (n_items, f)")
    parser.add_argument("--users", type=Path, help="user factors .npy, queries for --factors")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="fewer HNSW settings")
    args = parser.parse_args(argv)
    datasets = {
        "gauss-flat": gaussian_factors(heavy_norms=False),
        "gauss-pop": gaussian_factors(heavy_norms=True),
    }
    if args.retailrocket:
        datasets["retailrocket"] = real_dataset(*retailrocket_factors())
    if args.factors is not None and args.users is not None:
        datasets[args.factors.stem] = real_dataset(np.load(args.factors), np.load(args.users))
    with threadpool_limits(limits=1):
        for name, (items, queries) in datasets.items():
            bench_dataset(name, items, queries[: args.queries], args.quick)
        last_items, last_queries = list(datasets.values())[-1]
        bench_crossover(last_items, last_queries[: args.queries])
        bench_request_parts(last_items)


if __name__ == "__main__":
    main()
