"""The benchmark store: a published model with clustered factors, a catalog, a session model.

Shared by the benchmarks, the drills and the storefront load test, so that each measures
the same kind of model. Factors are structured so that the norm-pruned search
(recsvc.scoring.index) behaves as it does on real ALS factors, the ``gauss-pop`` recipe of
loadtests/bench_search.py: item directions around 500 Gaussian centres (centre + 0.7 x
noise, normalised), item norms heavy-tailed, Pareto(1.5) + 0.01, so the popularity of an
item is its norm (popular and trending lists are the items of largest norm; synthetic
sessions stay in one centre's items, drawn the same way); user vectors are centre + 0.7 x
noise around a centre drawn with the same popularity skew, normalised, with
lognormal(0, 0.5) norms. Item ids are ``i<row>``, user ids ``u<row>``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import numpy as np

from recsvc.scoring.artifact import ModelArtifact, session_arrays
from recsvc.scoring.index import ItemIndex
from recsvc.scoring.session_model import tuned_blend
from recsvc.store.catalog import CatalogStore
from recsvc.store.models import ModelStore
from training.sessions import Sessions, fit_session_model

CENTRES = 500
CATEGORIES = 40
PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15}
WEIGHTS = {"events": {"product_view": 1.0, "add_to_cart": 4.0, "purchase": 8.0}}


def structured_artifact(
    users: int, items: int, factors: int, seed: int = 0, sessions: int = 0
) -> ModelArtifact:
    """Clustered factors with heavy-tailed item norms (see the module docstring), and with
    ``sessions`` > 0 a session model fit on that many synthetic sessions."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CENTRES, factors)).astype(np.float32)
    labels = rng.integers(0, CENTRES, items)
    item_factors = centres[labels] + 0.7 * rng.standard_normal((items, factors), np.float32)
    item_factors /= np.linalg.norm(item_factors, axis=1, keepdims=True)
    item_norms = (rng.pareto(1.5, items) + 0.01).astype(np.float32)
    item_factors *= item_norms[:, None]
    # Users lean to the popular clusters, as real users lean to popular items.
    weight = np.bincount(labels, weights=item_norms, minlength=CENTRES)
    user_labels = rng.choice(CENTRES, users, p=weight / weight.sum())
    user_factors = np.empty((users, factors), np.float32)
    for start in range(0, users, 100_000):  # in chunks: a 1M x 64 float64 temp is 0.5 GB
        part = slice(start, min(start + 100_000, users))
        n = part.stop - part.start
        chunk = centres[user_labels[part]] + 0.7 * rng.standard_normal((n, factors), np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        chunk *= rng.lognormal(0.0, 0.5, n).astype(np.float32)[:, None]
        user_factors[part] = chunk
    by_norm = np.argsort(-item_norms)
    artifact = ModelArtifact(
        version=f"bench-{uuid.uuid4().hex[:6]}",
        manifest={"model": "als", "created": "bench", "params": PARAMS, "weights": WEIGHTS},
        item_ids=np.char.add("i", np.arange(items).astype(str)),
        user_ids=np.char.add("u", np.arange(users).astype(str)),
        item_factors=item_factors,
        user_factors=user_factors,
        popular=by_norm[:500],
        trending=by_norm[:200][::-1].copy(),
        similar_items=rng.integers(0, items, (items, 50), dtype=np.int32),
        similar_scores=rng.random((items, 50), dtype=np.float32),
    )
    if sessions:
        train = cluster_sessions(labels, item_norms, artifact.item_ids, sessions, seed)
        model = fit_session_model(train, tuned_blend())
        artifact.session = session_arrays(model)
        artifact.manifest["session"] = {
            "config": model.config.to_dict(),
            "sessions": train.stats(),
            "fit_seconds": model.fit_seconds,
        }
    return artifact


def cluster_sessions(
    labels: np.ndarray, norms: np.ndarray, item_ids: np.ndarray, count: int, seed: int
) -> Sessions:
    """``count`` sessions of 2-12 views (geometric lengths, mean about 4) inside one cluster
    each, clusters drawn by their total norm and items within a cluster by their norm (the
    popularity skew of the factors); a minute apart, 30 s between views."""
    rng = np.random.default_rng(seed + 1)
    lengths = np.minimum(rng.geometric(0.3, count) + 1, 12)
    order = np.argsort(labels, kind="stable")
    cumulative = np.cumsum(norms[order].astype(np.float64))
    mass = np.bincount(labels, weights=norms, minlength=CENTRES)
    before = np.concatenate(([0.0], np.cumsum(mass)[:-1]))
    centre = rng.choice(CENTRES, count, p=mass / mass.sum())
    of_event = np.repeat(centre, lengths)
    target = before[of_event] + rng.random(len(of_event)) * mass[of_event]
    at = np.minimum(np.searchsorted(cumulative, target), len(order) - 1)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    step = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    return Sessions(
        item=order[at].astype(np.int32),
        time=1.7e9 + np.repeat(np.arange(count) * 60.0, lengths) + 30.0 * step,
        offsets=offsets,
        visitor=np.arange(count, dtype=np.int32),
        items=np.asarray(item_ids),
    )


def catalog_items(items: int, seed: int = 1) -> Iterator[dict]:
    rng = random.Random(seed)
    for n in range(items):
        yield {
            "item_id": f"i{n}",
            "category": f"cat{rng.randrange(CATEGORIES)}",
            "in_stock": rng.random() < 0.95,
            "price": round(rng.uniform(2, 300), 2),
            "title": f"Item {n}",
        }


def upsert_catalog(catalog: CatalogStore, items: int, chunk: int = 1000) -> None:
    batch: list[dict] = []
    for item in catalog_items(items):
        batch.append(item)
        if len(batch) == chunk:
            catalog.upsert(batch)
            batch = []
    if batch:
        catalog.upsert(batch)


def search_floor(artifact: ModelArtifact, queries: int = 1000) -> dict:
    """In-process top-10 search latency for user vectors: what the pruning does here."""
    index = ItemIndex.build(np.ascontiguousarray(artifact.item_factors, np.float32))
    rng = np.random.default_rng(2)
    users = artifact.user_factors[rng.integers(0, len(artifact.user_ids), queries)]
    mask = np.ones(len(artifact.item_ids), bool)
    mask[rng.random(len(mask)) < 0.05] = False  # the bench catalog's out-of-stock share
    index.search(users[0], 10, mask)
    latencies = []
    for user in users:
        started = time.perf_counter()
        index.search(user, 10, mask)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "index": type(index).__name__,
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }


def popularity(artifact: ModelArtifact) -> np.ndarray:
    """(n_items,) float64 probabilities proportional to item norm: how visitors of the
    benchmark store pick items."""
    norms = np.linalg.norm(artifact.item_factors, axis=1).astype(np.float64)
    return norms / norms.sum()


def publish_store(
    client,
    keys,
    *,
    users: int,
    items: int,
    factors: int = 64,
    sessions: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> ModelArtifact:
    """Build the structured model, upsert its catalog and publish it as the current
    version of ``keys``' namespace; returns the artifact."""
    artifact = structured_artifact(users, items, factors, seed=seed, sessions=sessions)
    upsert_catalog(CatalogStore(client, keys), items)
    ModelStore(client, keys).publish(artifact, progress=progress)
    return artifact
