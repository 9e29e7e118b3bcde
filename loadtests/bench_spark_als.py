"""Spark MLlib ALS beside implicit ALS on the same split: metrics and time.

    python -m loadtests.bench_spark_als [--visitors 20000] [--items 2000] [--factors 64]

Generates a store (``recsvc.synth``), builds the matrix and the evaluation fold as
``recsvc train`` does (the last 7 days held out), and evaluates ``ALSScorer`` (implicit)
and ``SparkALSScorer`` (Spark, local mode, all cores) with the same hyperparameters,
beside popularity. Prints each one's NDCG@10, Recall@20, fit seconds and recommend
seconds, and one JSON report. Needs pyspark (``pip install -e '.[spark]'``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date
from pathlib import Path

from recsvc.synth.generator import GenerateConfig, generate
from training.evaluate import evaluate
from training.folds import make_fold
from training.loaders import load_events
from training.scorers import ALSScorer, PopularScorer
from training.spark_als import SparkALSScorer, spark_session
from training.splits import split_global_time
from training.weights import load_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recsvc-spark-bench-") as tmp:
        store = Path(tmp)
        generate(
            GenerateConfig(
                visitors=args.visitors,
                items=args.items,
                days=args.days,
                seed=11,
                out=store,
                end_date=date(2026, 3, 1),
            )
        )
        interactions, _ = load_events(store / "events")
    fold = make_fold(
        split_global_time(interactions, test_days=7), load_weights(), exclude_seen=True
    )
    spark_session()  # the JVM's start is not the fit's time
    params = {
        "factors": args.factors,
        "iterations": args.iterations,
        "alpha": 10.0,
        "regularization": 0.5,
    }
    report = evaluate(
        {
            "implicit_als": ALSScorer(**params),
            "spark_als": SparkALSScorer(**params),
            "popular": PopularScorer(),
        },
        fold,
        (10, 20),
    )
    rows = [
        {
            "model": m.name,
            "ndcg@10": round(m.metrics["ndcg@10"], 4),
            "recall@20": round(m.metrics["recall@20"], 4),
            "fit_seconds": round(m.fit_seconds, 2),
            "recommend_seconds": round(m.recommend_seconds, 2),
        }
        for m in report.models
    ]
    print(
        f"{len(interactions)} events; train matrix {fold.train.shape}, nnz {fold.train.matrix.nnz}"
    )
    for row in rows:
        print(row)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
