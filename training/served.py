"""The served strategies evaluated as served, beside the baselines, every test visitor counted.

The per-visitor protocol: a global time split; the test visitors are those with a target
event (by default an add-to-cart or a purchase) after the cutoff and at least one event
before it; their targets are the distinct items of those events, **including items the
train part never had** (no model can recommend them: they count as misses, as they would
on the storefront). With ``exclude_seen`` a visitor's train items are never recommended
and leave the targets; visitors with no target left are not scored (counted).

The served strategies are the objects the service calls (:mod:`recsvc.scoring.strategies`),
asked about each test visitor's state as the service's profile would hold it at the
cutoff (:mod:`training.visitor_states`: the train log replayed through the profile code),
with the long-term vector the evaluated model learnt for them. Baselines
(:class:`training.scorers.Scorer`) rank from the train matrix. Both are scored against the
same targets (:func:`score_lists`), each NDCG with a bootstrap 95% interval.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from recsvc.scoring.model import ScoringModel, ServingParams
from recsvc.scoring.session_model import SessionModel
from recsvc.scoring.state import VisitorState, Want
from recsvc.scoring.strategies import Strategy, recommend, visitor_chain
from recsvc.settings import Settings
from training.evaluate import ModelResult, Report
from training.matrix import IdMap, InteractionMatrix
from training.metrics import metrics_from_hits
from training.scorers import PopularScorer, Scorer, TrendingScorer
from training.splits import Split
from training.visitor_states import states_from_log

POSITIVES = ("add_to_cart", "purchase")
LIST_LENGTH = 500
SERVED = "served"


@dataclass
class VisitorTest:
    """The test side of the per-visitor protocol (module docstring).

    Attributes
    ----------
    users : ndarray, shape (u,), int32
        Test visitors as indices into the log's ``users``, ascending.
    targets : scipy.sparse.csr_matrix, shape (u, n_log_items), bool
        Their targets over the log's item codes.
    report : dict
        Counts: test events, target events, visitors and targets, targets on items the
        train part never had, targets dropped as seen.
    """

    users: np.ndarray
    targets: sp.csr_matrix
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def relevant(self) -> np.ndarray:
        """Targets per visitor (the denominator of recall and NDCG): int64, shape (u,)."""
        return np.diff(self.targets.indptr).astype(np.int64)

    def subset(self, rows: np.ndarray) -> VisitorTest:
        """The visitors ``rows`` (indices into ``users``)."""
        return VisitorTest(self.users[rows], self.targets[rows], dict(self.report))


def visitor_test(
    split: Split, positives: Sequence[str] | None = POSITIVES, exclude_seen: bool = False
) -> VisitorTest:
    """The test visitors and their targets (module docstring); ``positives`` None takes
    every event type."""
    test = split.test
    if positives is not None:
        test = test.subset(test.event_mask(tuple(positives)))
    n_items = len(split.train.items)
    pairs = np.unique(test.user.astype(np.int64) * n_items + test.item)
    in_train = np.zeros(n_items, bool)
    in_train[split.train.item] = True
    report: dict[str, Any] = {
        "target_events": len(test),
        "target_pairs": len(pairs),
        "targets_on_new_items": int(np.count_nonzero(~in_train[pairs % n_items])),
    }
    if exclude_seen:
        seen = np.unique(split.train.user.astype(np.int64) * n_items + split.train.item)
        keep = ~np.isin(pairs, seen)
        visitors_before = len(np.unique(pairs // n_items))
        pairs = pairs[keep]
        report["seen_targets"] = int(np.count_nonzero(~keep))
        report["visitors_without_unseen_targets"] = visitors_before - len(
            np.unique(pairs // n_items)
        )
    users, row = np.unique(pairs // n_items, return_inverse=True)
    targets = sp.csr_matrix(
        (np.ones(len(pairs), bool), (row, pairs % n_items)), shape=(len(users), n_items)
    )
    report |= {"users": len(users), "targets": int(targets.nnz)}
    return VisitorTest(users.astype(np.int32), targets, report)


def score_lists(
    codes: np.ndarray, test: VisitorTest, ks: tuple[int, ...], n_items: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every metric (means, and values per visitor) of ranked lists of log item codes
    (``-1``: none), one row per test visitor, against the test's targets."""
    rows = np.arange(len(codes))[:, None]
    hits = np.asarray(test.targets[rows, np.maximum(codes, 0)].todense(), bool) & (codes >= 0)
    return metrics_from_hits(hits, test.relevant, ks, codes, n_items)


def bootstrap_interval(
    values: np.ndarray, samples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of per-visitor ``values``."""
    if not len(values):
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def scoring_model(
    version: str,
    matrix: InteractionMatrix,
    item_factors: np.ndarray,
    params: Mapping[str, Any],
    session: SessionModel | None,
    serving: ServingParams,
) -> ScoringModel:
    """The :class:`ScoringModel` a version fit on ``matrix`` would serve, without the
    similar-items lists (no visitor strategy reads them)."""
    item_ids = matrix.items.ids(np.arange(matrix.shape[1])).tolist()
    n_items = len(item_ids)
    lists = {
        "popular": ranked_ids(PopularScorer().fit(matrix).item_scores, item_ids),
        "trending": ranked_ids(TrendingScorer().fit(matrix).item_scores, item_ids),
    }
    manifest = {
        "params": dict(params),
        "weights": matrix.config.to_dict(),
        "serving": serving.to_dict(),
    }
    model = ScoringModel.build(
        version,
        manifest,
        item_ids,
        item_factors,
        np.zeros((n_items, 0), np.int32),
        np.zeros((n_items, 0), np.float32),
        lists,
    )
    model.session = session
    return model


def ranked_ids(scores: np.ndarray, item_ids: list[str], length: int = LIST_LENGTH) -> list[str]:
    """The ids of the ``length`` best-scored items, best first, zeros left out."""
    order = np.argsort(-scores, kind="stable")[:length]
    return [item_ids[row] for row in order[scores[order] > 0]]


def visitor_states(
    split: Split,
    test: VisitorTest,
    model: ScoringModel,
    matrix: InteractionMatrix,
    user_factors: np.ndarray | None,
    settings: Settings | None = None,
    *,
    show_progress: bool = False,
) -> list[VisitorState]:
    """Each test visitor as the service would see them at the cutoff: their replayed
    profile, and the vector ``user_factors`` (rows of ``matrix``) holds for them, if any."""
    vectors = None
    if user_factors is not None:
        rows = matrix.users.rows(split.train.users[test.users])
        vectors = np.zeros((len(test), user_factors.shape[1]), np.float32)
        vectors[rows >= 0] = user_factors[rows[rows >= 0]]
    states = states_from_log(
        split.train, test.users, model.row_of, vectors, settings, show_progress=show_progress
    )
    if vectors is not None:
        known = matrix.users.rows(split.train.users[test.users]) >= 0
        states = [s if k else replace(s, vector=None) for s, k in zip(states, known, strict=True)]
    return states


def strategy_codes(
    model: ScoringModel,
    chain: Sequence[Strategy],
    states: Sequence[VisitorState],
    k: int,
    log_items: IdMap,
    exclude_seen: bool = False,
    *,
    show_progress: bool = False,
) -> tuple[np.ndarray, dict[str, int]]:
    """The chain's top ``k`` for every state, as log item codes (``-1`` past the end),
    and how many states each strategy answered."""
    codes_of_rows = log_items.rows(np.asarray(model.item_ids))
    codes = np.full((len(states), k), -1, np.int64)
    used: dict[str, int] = {}
    want = Want(n=k, exclude_seen=exclude_seen, explain=False)
    for n, state in enumerate(tqdm(states, desc="served", disable=not show_progress)):
        ranked = recommend(chain, model, state, want)
        codes[n, : len(ranked)] = codes_of_rows[ranked.rows]
        used[ranked.strategy] = used.get(ranked.strategy, 0) + 1
    return codes, used


def scorer_codes(
    scorer: Scorer,
    matrix: InteractionMatrix,
    test_users: np.ndarray,
    k: int,
    log_items: IdMap,
    exclude_seen: bool = False,
) -> np.ndarray:
    """A fitted baseline's top ``k`` for every test visitor (``test_users``: their ids;
    one the matrix lacks gets nothing), as log item codes."""
    rows = matrix.users.rows(test_users)
    known = rows >= 0
    exclude = matrix.matrix[rows[known]] if exclude_seen else None
    ids, _ = scorer.recommend(rows[known], k, exclude=exclude)
    codes_of_columns = log_items.rows(matrix.items.ids(np.arange(matrix.shape[1])))
    codes = np.full((len(test_users), k), -1, np.int64)
    codes[known] = np.where(ids >= 0, codes_of_columns[np.maximum(ids, 0)], -1)
    return codes


def model_result(
    name: str,
    kind: str,
    params: Mapping[str, Any],
    codes: np.ndarray,
    test: VisitorTest,
    ks: tuple[int, ...],
    n_items: int,
    seconds: tuple[float, float],
) -> ModelResult:
    """A report row; every cutoff's NDCG and recall carry a bootstrap 95% interval
    (``<metric>@<k>_low`` / ``_high``)."""
    metrics, per_user = score_lists(codes, test, ks, n_items)
    for k in ks:
        for name_ in ("ndcg", "recall"):
            key = f"{name_}@{k}"
            metrics[f"{key}_low"], metrics[f"{key}_high"] = bootstrap_interval(per_user[key])
    return ModelResult(
        name=name,
        scorer=kind,
        params=dict(params),
        fit_seconds=round(seconds[0], 3),
        recommend_seconds=round(seconds[1], 3),
        metrics=metrics,
        per_user=per_user,
    )


def evaluate_visitors(
    split: Split,
    matrix: InteractionMatrix,
    scorers: Mapping[str, Scorer],
    served: ScoringModel | None,
    user_factors: np.ndarray | None,
    ks: tuple[int, ...] = (10, 20),
    *,
    exclude_seen: bool = False,
    positives: Sequence[str] | None = POSITIVES,
    anonymous: str = "session",
    max_visitors: int | None = None,
    seed: int = 0,
    fit_seconds: Mapping[str, float] | None = None,
    show_progress: bool = False,
) -> Report:
    """The per-visitor protocol (module docstring): the served chain (when ``served`` is
    given, its long-term vectors from ``user_factors``) beside every fitted scorer, on
    every test visitor or, with ``max_visitors``, on the same fixed random sample of them
    for every model (the report says how many of how many)."""
    test = visitor_test(split, positives, exclude_seen)
    if max_visitors is not None and len(test) > max_visitors:
        test.report["sampled_from"] = len(test)
        rng = np.random.default_rng(seed)
        test = test.subset(np.sort(rng.choice(len(test), max_visitors, replace=False)))
        test.report["users"], test.report["targets"] = len(test), int(test.targets.nnz)
    log_items = IdMap(split.train.items)
    n_items, k = matrix.shape[1], max(ks)
    fit_seconds = fit_seconds or {}
    results, data = [], {"exclude_seen": exclude_seen, "positives": list(positives or [])}
    if served is not None:
        started = time.perf_counter()
        states = visitor_states(
            split, test, served, matrix, user_factors, show_progress=show_progress
        )
        codes, used = strategy_codes(
            served,
            visitor_chain(anonymous),
            states,
            k,
            log_items,
            exclude_seen,
            show_progress=show_progress,
        )
        seconds = (fit_seconds.get(SERVED, 0.0), time.perf_counter() - started)
        params = {"serving": served.serving.to_dict(), "strategies": used}
        results.append(model_result(SERVED, "chain", params, codes, test, ks, n_items, seconds))
        data["strategies"] = used
    users = split.train.users[test.users]
    for name, scorer in scorers.items():
        started = time.perf_counter()
        codes = scorer_codes(scorer, matrix, users, k, log_items, exclude_seen)
        seconds = (fit_seconds.get(name, 0.0), time.perf_counter() - started)
        results.append(
            model_result(
                name, type(scorer).__name__, scorer.params(), codes, test, ks, n_items, seconds
            )
        )
    return Report(
        ks=tuple(ks),
        split=split.report.to_dict(),
        fold=test.report,
        matrix=matrix.report.to_dict(),
        weights=matrix.config.to_dict(),
        models=results,
        data=data,
    )
