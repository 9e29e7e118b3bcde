"""One scorer protocol, six scorers: ALS, BPR, item-kNN, popular, trending, recent items.

Every scorer is fit on an :class:`~training.matrix.InteractionMatrix` and then answers
two questions the same way for evaluation and for serving:

- :meth:`Scorer.recommend` ``(user_rows, k, exclude=...)``: top ``k`` items for known
  users, by their rows in the train matrix;
- :meth:`Scorer.recommend_histories` ``(histories, k, exclude=...)``: top ``k`` items for
  visitors the model was not fit on, given only the items they touched (fold-in): ALS
  solves for the user vector in closed form from the item factors and YᵀY, item-kNN
  sums the similarity rows of those items, recent items ranks the history itself,
  popular and trending ignore it.

Both go through :func:`top_k`, the one place items are excluded and ranked. Subclasses
implement :meth:`Scorer.fit`, :meth:`Scorer.score_users` and
:meth:`Scorer.score_histories`, which return dense ``(batch, n_items)`` float32 scores.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from recsvc.scoring.foldin import FoldIn
from recsvc.scoring.topk import BLOCK_FLOATS, top_k, top_k_shared
from training.matrix import InteractionMatrix
from training.threads import default_num_threads, single_threaded_blas

SECONDS_PER_DAY = 86_400.0


class Scorer(ABC):
    """The protocol every model implements (see the module docstring).

    Attributes
    ----------
    name : str
        Short name used in reports.
    n_items : int
        Columns of the train matrix, set by :meth:`fit`.
    """

    name: str = "scorer"
    n_items: int = 0

    @abstractmethod
    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        """Learn from ``train``; returns self."""

    @abstractmethod
    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        """Scores of every item for known users.

        Parameters
        ----------
        user_rows : ndarray, shape (b,), int
            Rows of the train matrix.

        Returns
        -------
        ndarray, shape (b, n_items), float32
            Higher is better; a fresh array the caller may overwrite.
        """

    @abstractmethod
    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        """Scores of every item for visitors known only by their items (fold-in).

        Parameters
        ----------
        histories : scipy.sparse.csr_matrix, shape (b, n_items), float32
            One row per visitor: the confidence of each item they touched (see
            :func:`training.matrix.histories_matrix`).

        Returns
        -------
        ndarray, shape (b, n_items), float32
        """

    def params(self) -> dict[str, Any]:
        """The parameters that define this scorer, for reports and manifests."""
        return {}

    def recommend(
        self,
        user_rows: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` items for known users, in batches.

        Parameters
        ----------
        user_rows : ndarray, shape (b,), int
        k : int
        exclude : scipy.sparse.csr_matrix, shape (b, n_items), optional
            Items not to return, row ``i`` for ``user_rows[i]`` (usually
            ``train.matrix[user_rows]``: what they have already seen).
        show_progress : bool

        Returns
        -------
        ids, scores : ndarray, shape (b, k)
            As :func:`top_k`.
        """
        user_rows = np.asarray(user_rows)
        return self._batched(
            len(user_rows), k, exclude, show_progress, lambda s: self.score_users(user_rows[s])
        )

    def recommend_histories(
        self,
        histories: sp.csr_matrix,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        show_progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` items for visitors given only their items (fold-in).

        Parameters
        ----------
        histories : scipy.sparse.csr_matrix, shape (b, n_items)
        k : int
        exclude : scipy.sparse.csr_matrix, shape (b, n_items), optional
            Often ``histories`` itself.
        show_progress : bool

        Returns
        -------
        ids, scores : ndarray, shape (b, k)
            As :func:`top_k`.
        """
        histories = sp.csr_matrix(histories, dtype=np.float32)
        return self._batched(
            histories.shape[0],
            k,
            exclude,
            show_progress,
            lambda s: self.score_histories(histories[s]),
        )

    def _batched(
        self,
        count: int,
        k: int,
        exclude: sp.csr_matrix | None,
        show_progress: bool,
        score: Callable[[slice], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((count, k), -1, dtype=np.int32)
        values = np.full((count, k), -np.inf, dtype=np.float32)

        def rank(block: slice) -> slice:
            chunk = None if exclude is None else exclude[block]
            ids[block], values[block] = top_k(score(block), k, chunk)
            return block

        # Blocks go to a thread per core: numpy's matmul (BLAS pinned to one thread) and
        # argpartition release the GIL, and ranking dominates evaluation time.
        blocks = list(_blocks(count, self.n_items))
        with single_threaded_blas(), ThreadPoolExecutor(default_num_threads()) as pool:
            done = pool.map(rank, blocks)
            for _ in tqdm(
                done, total=len(blocks), desc=f"recommend {self.name}", disable=not show_progress
            ):
                pass
        return ids, values


def _blocks(count: int, n_items: int) -> Iterator[slice]:
    size = max(1, BLOCK_FLOATS // max(n_items, 1))
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


class PopularScorer(Scorer):
    """Every visitor gets the items the most users interacted with.

    ``score(i) = |{u : X[u, i] > 0}|``: distinct users per item, so one fan's hundred
    views count once. Histories are ignored.
    """

    name = "popular"

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        self.n_items = train.shape[1]
        self.item_scores = np.bincount(train.matrix.indices, minlength=self.n_items).astype(
            np.float32
        )
        return self

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores, (len(user_rows), 1))

    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.item_scores, (histories.shape[0], 1))

    def _batched(
        self,
        count: int,
        k: int,
        exclude: sp.csr_matrix | None,
        show_progress: bool,
        score: Callable[[slice], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        # Everyone gets the same scores: rank once instead of a dense block per batch
        # (evaluation spent about 0.4 s per 7k users tiling and partitioning copies).
        return top_k_shared(self.item_scores, count, k, exclude)


class TrendingScorer(PopularScorer):
    """Recent popularity: events of the last ``window_days``, newer ones counting more.

    ``score(i) = Σ_e w(type_e) · 2^(−(T − t_e) / half_life)`` over the events ``e`` on
    item ``i`` with ``T − window ≤ t_e ≤ T``, where ``T`` is the train matrix's reference
    time and ``w`` its event-type weights. Histories are ignored.
    """

    name = "trending"

    def __init__(self, window_days: float = 7.0, half_life_days: float = 2.0) -> None:
        self.window_days = window_days
        self.half_life_days = half_life_days

    def params(self) -> dict[str, Any]:
        return {"window_days": self.window_days, "half_life_days": self.half_life_days}

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        self.n_items = train.shape[1]
        events = train.interactions
        age_days = (train.reference_time - events.time) / SECONDS_PER_DAY
        recent = (age_days >= 0) & (age_days <= self.window_days)
        weights = train.config.table()[events.event[recent]] * events.value[recent]
        weights = weights * np.exp2(-age_days[recent] / self.half_life_days)
        self.item_scores = np.bincount(
            events.item[recent], weights=weights, minlength=self.n_items
        ).astype(np.float32)
        return self


class RecentItemsScorer(Scorer):
    """A visitor's own items, most recent first: the "recently viewed" baseline.

    ``score(u, i) = 1 + (t_ui − t_0) / 1 day`` where ``t_ui`` is the last time ``u``
    touched ``i`` in the train matrix's events and ``t_0`` the first event time; 0 for
    items ``u`` never touched. For a history the cell values themselves are the scores
    (callers put larger values on later items). Only useful without excluding seen
    items: everything it can recommend is seen.
    """

    name = "recent"

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        events = train.interactions
        start = events.time[0] if len(events) else 0.0
        recency = 1.0 + (events.time - start) / SECONDS_PER_DAY
        # Events are in time order, so a cell's last event is its latest: the first
        # occurrence of each cell in the reversed log.
        cells = events.user.astype(np.int64) * train.shape[1] + events.item
        last = np.unique(cells[::-1], return_index=True)[1]
        keep = len(cells) - 1 - last
        self.last_seen = sp.csr_matrix(
            (recency[keep].astype(np.float32), (events.user[keep], events.item[keep])),
            shape=train.shape,
        )
        self.n_items = train.shape[1]
        return self

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self.last_seen[user_rows].toarray()

    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        return sp.csr_matrix(histories, dtype=np.float32).toarray()


class ItemKNNScorer(Scorer):
    """Item-based k nearest neighbours (implicit.nearest_neighbours).

    ``S`` keeps, for each item, its ``neighbours`` most similar items by cosine or BM25
    similarity of their user columns; ``score(u, i) = Σ_j X[u, j] · S[j, i]``. A history
    is scored the same way, with its row in place of ``X[u]``.
    """

    name = "item_knn"

    def __init__(
        self,
        neighbours: int = 100,
        similarity: Literal["cosine", "bm25"] = "bm25",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int | None = None,
    ) -> None:
        self.neighbours = neighbours
        self.similarity = similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def params(self) -> dict[str, Any]:
        params = {"neighbours": self.neighbours, "similarity": self.similarity}
        if self.similarity == "bm25":
            params |= {"bm25_k1": self.bm25_k1, "bm25_b": self.bm25_b}
        return params

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
        from implicit.utils import ParameterWarning

        threads = self.num_threads or default_num_threads()
        if self.similarity == "bm25":
            model = BM25Recommender(
                K=self.neighbours, K1=self.bm25_k1, B=self.bm25_b, num_threads=threads
            )
        elif self.similarity == "cosine":
            model = CosineRecommender(K=self.neighbours, num_threads=threads)
        else:
            raise ValueError(f"unknown similarity {self.similarity!r}")
        with single_threaded_blas(), warnings.catch_warnings():
            # implicit weights the matrix into COO itself, then warns that it got COO.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(train.matrix, show_progress=show_progress)
        self.item_similarity = sp.csr_matrix(model.similarity, dtype=np.float32)
        self.user_items = train.matrix
        self.n_items = train.shape[1]
        return self

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self.score_histories(self.user_items[user_rows])

    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        return (histories @ self.item_similarity).toarray().astype(np.float32, copy=False)


class _FactorScorer(Scorer):
    """Scores are dot products of user and item factors; fold-in is
    :class:`recsvc.scoring.foldin.FoldIn`, the service's."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    regularization: float
    alpha: float = 1.0

    def _keep_factors(self, model: Any, n_items: int) -> None:
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.folder = FoldIn(self.item_factors, self.regularization, self.alpha)
        self.n_items = n_items

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self.user_factors[user_rows] @ self.item_factors.T

    def _fit_implicit(
        self, model_class: type, train: InteractionMatrix, show_progress: bool, **specific: Any
    ) -> Self:
        """Fit an implicit model with this scorer's shared parameters plus ``specific``,
        starting from ``self.initial`` factors when set (see ``ALSScorer.warm_start``)."""
        # implicit checks the BLAS thread count when a model is made: pin it first.
        with single_threaded_blas():
            self.model = model_class(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads or default_num_threads(),
                **specific,
            )
            initial = getattr(self, "initial", None)
            if initial is not None:
                # implicit starts from the factors it finds instead of random ones.
                self.model.user_factors, self.model.item_factors = initial
            self.model.fit(train.matrix, show_progress=show_progress)
        self._keep_factors(self.model, train.shape[1])
        return self

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User vectors for histories: ndarray, shape (b, f), float32."""
        return self.folder.vectors(histories)

    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        return self.fold_in(histories) @ self.item_factors.T


class ALSScorer(_FactorScorer):
    """implicit's alternating least squares (Hu, Koren and Volinsky 2008) on confidences
    ``alpha · X``.

    The defaults (regularization 2, alpha 20) are those whose worse score over two logs'
    validation splits, a generated store and RetailRocket, is best: within 5% of each
    log's best set, where implicit's own (0.01-0.05, 1) lose 22% on RetailRocket
    (``python -m training.als_defaults``, whose docstring has the table)."""

    name = "als"
    # ``warm_start`` factors are used by ``fit`` (a subclass fitting elsewhere may not).
    warm_starts = True

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 2.0,
        alpha: float = 20.0,
        iterations: int = 15,
        random_state: int = 42,
        num_threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.initial: tuple[np.ndarray, np.ndarray] | None = None

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares

        return self._fit_implicit(AlternatingLeastSquares, train, show_progress, alpha=self.alpha)

    def warm_start(self, user_factors: np.ndarray, item_factors: np.ndarray) -> Self:
        """Start the next ``fit`` from these factors, shapes (n_users, f) and (n_items, f)
        float32 for the matrix it will be given: a refit on a little more data then needs
        a few iterations, not the full schedule."""
        self.initial = (
            np.ascontiguousarray(user_factors, np.float32),
            np.ascontiguousarray(item_factors, np.float32),
        )
        return self


class BPRScorer(_FactorScorer):
    """implicit's Bayesian personalised ranking (Rendle et al. 2009), SGD on sampled
    (user, seen item, unseen item) triples.

    BPR has no closed-form fold-in; :meth:`fold_in` uses the ALS least-squares step on
    BPR's item factors (bias column included), an approximation that keeps the history's
    items and their neighbours on top.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 42,
        num_threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return self._fit_implicit(
            BayesianPersonalizedRanking, train, show_progress, learning_rate=self.learning_rate
        )


class BlendScorer(Scorer):
    """A weighted sum of other scorers, each row scaled to a maximum of 1 first.

    ``score(u, i) = Σ_s w_s · score_s(u, i) / max_j |score_s(u, j)|`` (a part whose row
    is all zeros adds nothing). Scaling per row makes the weights comparable between
    scorers whose scores live on different scales (dot products, similarity sums,
    recency in days). Fit fits every part.
    """

    name = "blend"

    def __init__(self, parts: Mapping[str, tuple[Scorer, float]]) -> None:
        if not parts:
            raise ValueError("a blend needs at least one part")
        self.parts = dict(parts)

    def params(self) -> dict[str, Any]:
        return {
            name: {"scorer": scorer.name, "weight": weight, **scorer.params()}
            for name, (scorer, weight) in self.parts.items()
        }

    def fit(self, train: InteractionMatrix, *, show_progress: bool = False) -> Self:
        for scorer, _ in self.parts.values():
            scorer.fit(train, show_progress=show_progress)
        self.n_items = train.shape[1]
        return self

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        return self._sum(lambda scorer: scorer.score_users(user_rows))

    def score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        return self._sum(lambda scorer: scorer.score_histories(histories))

    def _sum(self, score: Callable[[Scorer], np.ndarray]) -> np.ndarray:
        total: np.ndarray | None = None
        for scorer, weight in self.parts.values():
            part = score(scorer)
            scale = np.abs(part).max(axis=1, keepdims=True)
            part *= weight / np.where(scale > 0, scale, 1.0)
            total = part if total is None else total + part
        assert total is not None
        return total.astype(np.float32, copy=False)


SCORERS: dict[str, type[Scorer]] = {
    "als": ALSScorer,
    "bpr": BPRScorer,
    "item_knn": ItemKNNScorer,
    "popular": PopularScorer,
    "recent": RecentItemsScorer,
    "trending": TrendingScorer,
}


def make_scorer(name: str, **params: Any) -> Scorer:
    """A scorer by its report name (:data:`SCORERS`) with constructor ``params``."""
    try:
        return SCORERS[name](**params)
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {sorted(SCORERS)}") from None
