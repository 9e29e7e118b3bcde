"""Evaluation protocols on real logs, one function each; run as a script.

``python -m training.protocols retailrocket-top-n --out var/eval/retailrocket``
``python -m training.protocols retailrocket-sessions --out var/eval/retailrocket-sessions``

RetailRocket per-visitor top-N (the protocol of the design's quality figure), through the
same code as ``recsvc train`` (:func:`training.pipeline.tune_and_evaluate`):

- the last 14 days of the log are the test period, everything before trains;
- test visitors are those with an add-to-cart or a purchase in the test period and at
  least one event before it, **every one counted**: their targets are those test
  add-to-carts and purchases, items the train period never had included (misses for every
  model);
- the served chain (:mod:`recsvc.scoring.strategies`) is asked about each test visitor's
  state as the service's profile would hold it at the cutoff, with the long-term vector
  ALS learnt for them; its blend's weights were tuned on the 14 days before the test
  period (validation), never on test;
- baselines rank all train items from the train matrix; by default a visitor's own items
  may come back (as served: on this log they are what visitors most often cart);
  ``--exclude-seen`` measures discovery instead;
- every NDCG and recall carries a bootstrap 95% interval over the test visitors.

RetailRocket anonymous sessions, next item (Hidasi & Czapp 2023, the published
GRU4Rec comparison; :mod:`training.sessions` documents each step):

- views only, cut into sessions at 1 h of inactivity, consecutive repeats removed,
  sessions shorter than 2 and items with under 5 events dropped until stable;
- test: sessions starting in the last 7 days before 2015-09-18 03:00 UTC; train: the
  events before; test items missing from train removed;
- every prefix of a test session predicts the next item among all train items (none
  excluded but the item being viewed); Recall@20 and MRR@20 over all predictions,
  ties counted against the target (GRU4Rec's "conservative" mode);
- ``--split validation`` runs the same on the last train week (train before it): the
  parameters in :func:`retailrocket_session_configs` were chosen there, never on test.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from recsvc.scoring.session_model import (
    ALSParams,
    SessionConfig,
    SessionModel,
    TransitionParams,
    tuned_blend,
)
from training.evaluate import Report, write_report
from training.loaders import load_events
from training.pipeline import TrainOptions, tune_and_evaluate
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
from training.session_eval import (
    NextItemResult,
    SessionReport,
    evaluate_next_item,
    sample_sessions,
)
from training.sessions import (
    Sessions,
    build_sessions,
    filter_sessions,
    fit_session_model,
    session_split,
    split_sessions,
)
from training.weights import WeightConfig, load_weights

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0

RETAILROCKET = Path(__file__).resolve().parents[1].parent / "shared/data/retailrocket/events.csv.gz"


# ALS on this log: a sweep of alpha 10/30/60/100 with regularization 0.1/1/5/10 on the
# per-visitor protocol (NDCG@10 0.052, 0.059, 0.065, 0.068 against 0.041 for implicit's
# defaults); 60/5 kept.
RETAILROCKET_ALS = {"factors": 64, "regularization": 5.0, "alpha": 60.0, "iterations": 15}


def retailrocket_scorers(exclude_seen: bool = False) -> dict[str, Scorer]:
    """The baselines the RetailRocket report compares beside the served chain and ALS.
    With ``exclude_seen`` the baselines that only rank a visitor's own items (``recent``
    and the blends with it) are left out: every item they could return is excluded."""

    def knn() -> ItemKNNScorer:
        return ItemKNNScorer(neighbours=100, similarity="bm25")

    scorers: dict[str, Scorer] = {
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
            {"recent": (RecentItemsScorer(), 1.0), "als": (ALSScorer(**RETAILROCKET_ALS), 0.5)}
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
        Length of the test period at the end of the log (and of the validation period
        before it).
    ks : tuple of int
    exclude_seen : bool
        Never recommend a visitor's own items (and drop them as targets).
    scorers : dict of str to Scorer, optional
        Baselines; default :func:`retailrocket_scorers` (``exclude_seen``).
    config : WeightConfig, optional
        Default the packaged weights.
    show_progress : bool

    Returns
    -------
    Report
        ``data`` holds the load report, the blend's tuning and the timings.
    """
    started = time.perf_counter()
    interactions, load_report = load_events(path, "retailrocket")
    loaded = time.perf_counter()
    # Cold fits at every step (recsvc train --refit cold): on this log a warm start sits
    # at the low end of cold fits (training/README.md), and this figure is the strategy's.
    options = TrainOptions(
        params=dict(RETAILROCKET_ALS),
        test_days=test_days,
        exclude_seen=exclude_seen,
        warm_start_share=0.0,
        validation_visitors=None,
        test_visitors=None,  # every test visitor counted
        show_progress=show_progress,
    )
    baselines = scorers if scorers is not None else retailrocket_scorers(exclude_seen)
    report, _, _ = tune_and_evaluate(
        interactions, config or load_weights(), options, options.params, baselines
    )
    report.data |= {
        "load": load_report.to_dict(),
        "load_seconds": round(loaded - started, 3),
        "exclude_seen": exclude_seen,
    }
    return report


# 2015-09-18 03:00 UTC, the reference script's ``tsplit``; the test week ends here.
RETAILROCKET_SESSIONS_END = 1_442_545_200.0
SESSION_TEST_DAYS = 7.0


def retailrocket_session_configs() -> dict[str, SessionConfig]:
    """The session recommenders compared, with parameters tuned on the validation week.

    Sweeps on the validation week (Recall@20; the report's JSON has MRR too):
    session-kNN neighbours 100/300/1000 × sample 500/2000 × history decay 0.5/0.8 ×
    normalised or not: 0.445 … 0.482, best 300 neighbours, decay 0.8, normalised; a
    neighbour recency half-life of 3/10/30 days: 0.377/0.445/0.479 (off is best).
    Transitions: last item only 0.364, history decay 0.6 0.420, backward pairs at 0.5
    0.447, gap^−0.5 0.449; a pair half-life of 10 days 0.380. Item-kNN 100/500
    neighbours × decay 0.3/0.7: 0.370 … 0.375. ALS on session × item (64 factors):
    alpha 5/40/100, regularization 1/10: 0.17 … 0.257. Blends: "max" scaling 0.465 …
    0.489, "sum" scaling 0.491 … 0.4956 (the one kept).

    STAN weighting of session-kNN (Garg et al. 2019; full validation week): position
    decay λ3 = 4/8/16 with a 90-day neighbour half-life lifts session-kNN 0.482 → 0.486 …
    0.489 (5000-session samples: λ3 1/2/4/8 alone 0.473/0.478/0.480/0.480, halving
    weights before the shared item −0.001 … −0.003, 60/180-day half-lives +0.002) and
    the blend 0.4955 → 0.4979 … 0.4999; best λ3 8, half-life 90 days, history decay 0.6
    (0.4999 / MRR 0.2484; 0.7: 0.4987, a 180-day half-life 0.4975, session-kNN weight
    1.3 in the blend 0.4989).

    Second round (full validation week, Recall@20 / MRR@20 of the blend unless said;
    before it 0.4999 / 0.2484). V-SKNN idf weighting of session-kNN, ``ι^idf_power`` on
    the session items: power 0.5/1/2/3/4/6/8 lifts session-kNN alone 0.4894 → 0.4908 /
    0.4918 / 0.4938 / 0.4956 / 0.4966 / 0.4975 / 0.4963 and the blend to 0.5007 … 0.5012
    (power 4: 0.5010); ``1 + idf_boost · ι`` on candidates alone 0.4999 (boost 4); both,
    power 4 and boost 4: 0.5015 / 0.2498 (3/4 0.5018, 4/8 0.5017, 6/4 0.5012);
    ``df^−a`` in place of ι: 0.5008 … 0.5009. A larger sample (1000, 2500) with
    300/500/1000 neighbours: 0.5015 … 0.5017, no change; only the newest 1/2/3/5 items
    in the neighbour search: session-kNN 0.415/0.476/0.484/0.488 (all worse).
    Weights by prefix length (rules 0.3 … 1.5, item-kNN 0 … 0.6, session items 0.7 … 1.5,
    chosen per length 1 / 2+): +0.001 at best, not kept. A recency-weighted popularity
    part (half-life 1/3/7 days, weight up to 1): +0.0006; ALS fold-in at 0.03 … 0.3:
    +0.0008 at most. Two-step walks, the one structural gain (29 % of the validation
    targets get no score from any part, 38 % after one-item prefixes, 24 % after longer
    ones; half of the unreached follow one-item prefixes): ``T²``
    0.5079 … 0.5087, item-kNN ``S²``, ``T S`` 0.507 … 0.508, row-normalised ``P²`` from
    the whole session (decay 0.6) 0.5112 / 0.5124 / 0.5140 at weight 0.5/1/2, from the
    last item only 0.5122 / 0.5131 / 0.5157 / 0.5146 / 0.5102 at 0.5/1/2/3/5 (kept:
    weight 2, 0.5157 / 0.2495; 0.5139 without idf), ``P³`` or ``P`` added 0.5106 …
    0.5130, ``P²`` pruned to 500/100 per row 0.5153/0.5092 at 2; the walk's rules as the
    tuned rules (backward 0.5, gap^−0.5) rather than Ludewig's defaults (0.5112) or
    backward 1 (0.5159); the walk's last step divided by popularity^0.25/0.5
    0.5148/0.5135. With the walk: its weight 1.5/2.5 0.5141/0.5147, session-kNN weight
    1.3 0.5153, idf power 3 0.5155, rules 0.3/1 and item-kNN 0/0.6 with the 500-pruned
    ``P²`` at 3 0.5120 … 0.5138 (all at or below the kept 0.5157); each row of ``P``
    cut to its 20/50/100/200 largest rules 0.5112/0.5144/0.5156/0.5159, no faster in
    batches, but one session at a time (the service's path) the cut bounds the second
    hop: kept at 200 (test 0.5201 / 0.2510 against 0.5205 / 0.2510 uncut; one session's
    p99 1.8 ms against 5.2). The walk alone: 0.4188 / 0.1500.
    """
    blend = tuned_blend()
    sr, walk = replace(blend.transitions, weight=1.0), blend.walk
    knn, sknn, recent = replace(blend.item_knn, weight=1.0), blend.session_knn, blend.recent
    return {
        "popular": SessionConfig(transitions=None),
        "recent": SessionConfig(transitions=None, recent=recent),
        "sr": SessionConfig(transitions=TransitionParams()),
        "sr_tuned": SessionConfig(transitions=sr),
        "walk": SessionConfig(transitions=None, walk=replace(walk, weight=1.0)),
        "item_knn": SessionConfig(transitions=None, item_knn=knn),
        "session_knn": SessionConfig(transitions=None, session_knn=sknn),
        "als_fold_in": SessionConfig(
            transitions=None, als=ALSParams(regularization=1.0, alpha=40.0, history_decay=0.7)
        ),
        "blend": blend,
    }


def retailrocket_sessions(
    path: Path = RETAILROCKET,
    *,
    evaluate_on: str = "test",
    configs: dict[str, SessionConfig] | None = None,
    sample: int | None = None,
    show_progress: bool = True,
) -> SessionReport:
    """Run the RetailRocket session next-item protocol (module docstring).

    Parameters
    ----------
    path : Path
        RetailRocket ``events.csv`` (gzipped or not).
    evaluate_on : {"test", "validation"}
        ``validation``: train before the last train week, evaluate on that week.
    configs : dict of str to SessionConfig, optional
        Default :func:`retailrocket_session_configs`.
    sample : int, optional
        Evaluate a fixed random sample of this many sessions (default all).
    show_progress : bool

    Returns
    -------
    SessionReport
    """
    started = time.perf_counter()
    interactions, load_report = load_events(path, "retailrocket")
    sessions, rounds = filter_sessions(build_sessions(interactions))
    cutoff = RETAILROCKET_SESSIONS_END - SESSION_TEST_DAYS * SECONDS_PER_DAY
    if evaluate_on == "validation":
        sessions, _ = split_sessions(sessions, cutoff)
        cutoff -= SESSION_TEST_DAYS * SECONDS_PER_DAY
    elif evaluate_on != "test":
        raise ValueError(f"evaluate_on must be 'test' or 'validation', not {evaluate_on!r}")
    split = session_split(sessions, cutoff)
    test = sample_sessions(split.test, sample)
    report = SessionReport(
        split=split.report | {"filter_rounds": rounds, "evaluated_sessions": len(test)},
        data={
            "load": load_report.to_dict(),
            "evaluated_on": evaluate_on,
            "prepare_seconds": round(time.perf_counter() - started, 3),
        },
    )
    for name, config in (configs or retailrocket_session_configs()).items():
        model = fit_session_model(split.train, config, show_progress=False)
        report.results.append(evaluate_next_item(name, model, test, show_progress=show_progress))
        log.info("%s: %s", name, report.results[-1].metrics)
        if name == SERVED_CONFIG:
            report.results += served_session_results(model, test, show_progress)
    return report


# The configuration the service ships (tuned_blend), evaluated again as served.
SERVED_CONFIG = "blend"


def served_session_results(
    model: SessionModel, test: Sessions, show_progress: bool = False
) -> list[NextItemResult]:
    """The served session strategy on the protocol's predictions: each prefix as the
    service reads it from the profile (:func:`training.session_eval.profile_prefixes`),
    the item being viewed never returned (as served) and, as the published runs rank,
    every item ranked."""
    every_item = replace(model, config=replace(model.config, exclude_current=False))
    return [
        evaluate_next_item("served", model, test, as_served=True, show_progress=show_progress),
        evaluate_next_item(
            "served, every item ranked",
            every_item,
            test,
            as_served=True,
            latency_sample=0,
            show_progress=show_progress,
        ),
    ]


PROTOCOLS = {
    "retailrocket-top-n": retailrocket_top_n,
    "retailrocket-sessions": retailrocket_sessions,
}


def main(argv: list[str] | None = None) -> None:
    """Command line: run one protocol, write its report, print the headline table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("protocol", choices=sorted(PROTOCOLS))
    parser.add_argument("--data", type=Path, default=RETAILROCKET)
    parser.add_argument("--out", type=Path, default=Path("var/eval/retailrocket"))
    parser.add_argument("--exclude-seen", action="store_true")
    parser.add_argument("--only", nargs="*", help="scorer names to run (default: all)")
    parser.add_argument(
        "--split", choices=["test", "validation"], default="test", help="sessions protocol"
    )
    parser.add_argument("--sample", type=int, help="sessions protocol: sessions to evaluate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.protocol == "retailrocket-sessions":
        _main_sessions(args)
        return
    scorers = retailrocket_scorers(args.exclude_seen)
    if args.only:
        scorers = {name: scorers[name] for name in args.only}
    report = PROTOCOLS[args.protocol](
        args.data,
        exclude_seen=args.exclude_seen,
        scorers=scorers,
        show_progress=True,
    )
    paths = write_report(report, args.out)
    print(report.to_markdown())
    print(json.dumps({k: str(v) for k, v in paths.items()}))


def _main_sessions(args: argparse.Namespace) -> None:
    configs = retailrocket_session_configs()
    if args.only:
        configs = {name: configs[name] for name in args.only}
    report = retailrocket_sessions(
        args.data, evaluate_on=args.split, configs=configs, sample=args.sample
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"sessions-{args.split}"
    stem.with_suffix(".json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    stem.with_suffix(".md").write_text(report.to_markdown())
    print(report.to_markdown())


if __name__ == "__main__":
    main()
