"""ALS fitted by Spark MLlib (``pyspark.ml.recommendation.ALS``, implicit preferences),
for interaction logs that outgrow one machine's ``implicit`` fit.

``SparkALSScorer`` is an ``ALSScorer`` whose ``fit`` hands the confidence matrix to Spark
and takes the user and item factors back: everything downstream (scoring, fold-in,
similar items, the artifact, the evaluation) is the ``implicit`` path's, so the two engines
are compared on the same split with the same code (``recsvc train --engine spark``,
``python -m loadtests.bench_spark_als``).

Spark runs in local mode here (``local[*]``); point ``SPARK_MASTER`` at a cluster to fit
there. Same model, different solver: Spark's implicit ALS (Hu, Koren and Volinsky 2008,
as implicit's) solves each least-squares step with Cholesky where implicit uses conjugate
gradient, and seeds its factors differently, so the factors differ while the quality is
comparable (see the benchmark).
"""

from __future__ import annotations

import os
from typing import Any, Self

import numpy as np

from training.matrix import InteractionMatrix
from training.scorers import ALSScorer


def spark_session() -> Any:
    """A Spark session: ``SPARK_MASTER`` (default ``local[*]``), small defaults for one
    machine, the UI off."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[*]"))
        .appName("recsvc-train")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        .getOrCreate()
    )


class SparkALSScorer(ALSScorer):
    """``ALSScorer`` fitted by Spark MLlib's implicit ALS (rank = ``factors``, regParam =
    ``regularization``, alpha, maxIter = ``iterations``, seed = ``random_state``)."""

    name = "spark_als"
    # Spark's ALS starts from its own random factors: a refit is a full fit.
    warm_starts = False

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        from pyspark.ml.recommendation import ALS

        spark = spark_session()
        coo = train.matrix.tocoo()
        rows = zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
        frame = spark.createDataFrame(list(rows), ["user", "item", "confidence"])
        als = ALS(
            rank=self.factors,
            maxIter=self.iterations,
            regParam=self.regularization,
            alpha=self.alpha,
            implicitPrefs=True,
            userCol="user",
            itemCol="item",
            ratingCol="confidence",
            seed=self.random_state,
            nonnegative=False,
            coldStartStrategy="drop",
        )
        model = als.fit(frame)
        n_users, n_items = train.shape
        self.user_factors = _dense(model.userFactors.collect(), n_users, self.factors)
        self.item_factors = _dense(model.itemFactors.collect(), n_items, self.factors)
        self.gram = self.item_factors.T.astype(np.float64) @ self.item_factors
        self.n_items = n_items
        self.model = None
        return self


def _dense(rows: list[Any], count: int, factors: int) -> np.ndarray:
    """Spark's ``(id, features)`` rows as a float32 array, row ``id`` at ``id`` (rows
    Spark never saw stay zero)."""
    out = np.zeros((count, factors), dtype=np.float32)
    for row in rows:
        out[row["id"]] = row["features"]
    return out
