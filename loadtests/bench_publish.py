"""Publishing benchmark: 100,000 items and 1,000,000 users of 64 factors into Redis.

    python -m loadtests.bench_publish [--users 1000000] [--items 100000] [--factors 64]

Prints the publish time (target: under 30 s), the Redis memory the version adds
(``INFO memory`` used_memory before and after; target: at most 0.4 GiB per million users)
and the time to read one user's vector. Uses ``REDIS_URL`` when set, else an embedded Redis.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid

import numpy as np

from loadtests.server import benchmark_redis
from recsvc.keys import KeySpace
from recsvc.redis_client import connect
from recsvc.scoring.artifact import ModelArtifact
from recsvc.store.models import ModelStore
from recsvc.store.namespace import delete_namespace


def synthetic_artifact(users: int, items: int, factors: int) -> ModelArtifact:
    rng = np.random.default_rng(0)
    return ModelArtifact(
        version=f"bench-{uuid.uuid4().hex[:6]}",
        manifest={"model": "als", "created": "bench"},
        item_ids=np.char.add("i", np.arange(items).astype(str)),
        user_ids=np.char.add("u", np.arange(users).astype(str)),
        item_factors=rng.standard_normal((items, factors), dtype=np.float32),
        user_factors=rng.standard_normal((users, factors), dtype=np.float32),
        popular=np.arange(500),
        trending=np.arange(500),
        similar_items=rng.integers(0, items, (items, 50), dtype=np.int32),
        similar_scores=rng.random((items, 50), dtype=np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    args = parser.parse_args()

    with benchmark_redis("recsvc-bench-publish-") as url:
        client = connect(url, socket_timeout=60)
        namespace = f"benchpub{uuid.uuid4().hex[:6]}"
        store = ModelStore(client, KeySpace(namespace))
        try:
            artifact = synthetic_artifact(args.users, args.items, args.factors)
            before = client.info("memory")["used_memory"]
            started = time.perf_counter()
            store.publish(artifact, progress=True)
            seconds = time.perf_counter() - started
            added = client.info("memory")["used_memory"] - before
            buckets = store.published()[artifact.version]["user_buckets"]
            reads = [f"u{n}" for n in np.random.default_rng(1).integers(0, args.users, 2000)]
            started = time.perf_counter()
            for user in reads:
                store.user_vector(artifact.version, buckets, args.factors, user)
            read_ms = (time.perf_counter() - started) / len(reads) * 1000
            started = time.perf_counter()
            store.load_item_side(artifact.version)
            load_s = time.perf_counter() - started
        finally:
            delete_namespace(client, namespace)
    vectors = artifact.user_factors.nbytes + artifact.item_factors.nbytes
    report = {
        "users": args.users,
        "items": args.items,
        "factors": args.factors,
        "publish_s": round(seconds, 2),
        "redis_bytes_added": added,
        "redis_gib_added": round(added / 2**30, 3),
        "raw_vector_gib": round(vectors / 2**30, 3),
        "bytes_per_user": round(added / args.users, 1),
        "user_vector_read_ms": round(read_ms, 3),
        "item_side_load_s": round(load_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "targets": {"publish_s": 30, "redis_gib_per_million_users": 0.4},
    }
    print(
        f"published {args.items:,} items + {args.users:,} users x {args.factors} in "
        f"{seconds:.1f} s (target < 30 s); Redis +{added / 2**30:.3f} GiB "
        f"({added / args.users:.0f} B/user; target <= 0.4 GiB per 1M users); "
        f"one user vector {read_ms:.3f} ms; item side load {load_s:.2f} s"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
