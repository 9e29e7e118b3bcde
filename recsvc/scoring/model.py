"""One model version as the strategies score from it: arrays in memory, nothing else.

A :class:`ScoringModel` is built once per version, from the arrays a serving worker reads
from Redis or from a :class:`~recsvc.scoring.artifact.ModelArtifact` on disk (the
evaluation): item ids and factors, the search index and the fold-in (``YᵀY`` and its
inverse), the similar-items lists, the popular and trending rankings, the session model,
and the serving parameters the manifest ships (:class:`ServingParams`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

from recsvc.scoring.answer_cache import AnswerCache
from recsvc.scoring.artifact import ModelArtifact, config_from_dict, session_model_from_arrays
from recsvc.scoring.blend import BlendParams
from recsvc.scoring.foldin import FoldIn
from recsvc.scoring.index import ItemIndex
from recsvc.scoring.session_model import SESSION_GAP_SECONDS, SessionModel


@dataclass(frozen=True)
class ServingParams:
    """How a version is served: the manifest's ``serving`` section.

    Attributes
    ----------
    session_gap_seconds : float
        Inactivity that ends a visitor's current session (the session model was fit on
        sessions cut the same way).
    blend : BlendParams
        The known-visitor blend's weights, tuned on a validation split by ``recsvc train``.
    """

    session_gap_seconds: float = SESSION_GAP_SECONDS
    blend: BlendParams = field(default_factory=BlendParams)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ServingParams:
        """The manifest's values; a version written before a field existed gets its
        default."""
        raw = dict(manifest.get("serving") or {})
        known = {f.name for f in fields(BlendParams)}
        blend = BlendParams(
            **{k: v for k, v in (raw.pop("blend", None) or {}).items() if k in known}
        )
        gap = float(raw.get("session_gap_seconds", SESSION_GAP_SECONDS))
        return cls(session_gap_seconds=gap, blend=blend)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, for the manifest."""
        return asdict(self)


@dataclass
class ScoringModel:
    """One version, ready to score (numpy arrays; no Redis, no HTTP).

    Attributes
    ----------
    version : str
    manifest : dict
    item_ids : list of str
        Row to id.
    row_of : dict of str to int
        Id to row.
    item_factors : ndarray, shape (n_items, f), float32
    similar_items : ndarray, shape (n_items, s), int32
        Each item's nearest items, best first, -1 padded.
    similar_scores : ndarray, shape (n_items, s), float32
    popular, trending : ndarray, shape (k,), int32
        Item rows, best first.
    session : SessionModel or None
        Over the same item rows; None when the version has none.
    answer_cache_size : int
        Session answers and sessions' scores kept per process
        (:mod:`recsvc.scoring.answer_cache`); 0, the default, keeps none (an evaluation
        asks each session once).
    """

    version: str
    manifest: dict[str, Any]
    item_ids: list[str]
    row_of: dict[str, int]
    item_factors: np.ndarray
    similar_items: np.ndarray
    similar_scores: np.ndarray
    popular: np.ndarray
    trending: np.ndarray
    session: SessionModel | None = None
    answer_cache_size: int = 0

    @classmethod
    def build(
        cls,
        version: str,
        manifest: dict[str, Any],
        item_ids: list[str],
        item_factors: np.ndarray,
        similar_items: np.ndarray,
        similar_scores: np.ndarray,
        lists: Mapping[str, Any],
        session_arrays: Mapping[str, np.ndarray] | None = None,
        row_of: dict[str, int] | None = None,
    ) -> ScoringModel:
        """From a version's arrays: ``lists`` holds ``popular`` and ``trending`` as item
        ids (unknown ones dropped); ``session_arrays`` the session model's, if any;
        ``row_of`` the id-to-row map of ``item_ids`` if the caller has it."""
        if row_of is None:
            row_of = dict(zip(item_ids, range(len(item_ids)), strict=True))
        rankings = {
            name: np.array([row_of[i] for i in lists.get(name, ()) if i in row_of], np.int32)
            for name in ("popular", "trending")
        }
        return cls(
            version=version,
            manifest=manifest,
            item_ids=item_ids,
            row_of=row_of,
            item_factors=np.ascontiguousarray(item_factors, dtype=np.float32),
            similar_items=similar_items,
            similar_scores=similar_scores,
            popular=rankings["popular"],
            trending=rankings["trending"],
            session=_session_model(manifest, item_ids, session_arrays),
        )

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> ScoringModel:
        """The model an artifact on disk (or just trained) serves."""
        item_ids = artifact.item_ids.tolist()
        lists = {
            name: [item_ids[row] for row in getattr(artifact, name).tolist()]
            for name in ("popular", "trending")
        }
        return cls.build(
            artifact.version,
            artifact.manifest,
            item_ids,
            artifact.item_factors,
            artifact.similar_items,
            artifact.similar_scores,
            lists,
            artifact.session,
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    @property
    def regularization(self) -> float:
        return float(self.manifest.get("params", {}).get("regularization", 0.01))

    @property
    def alpha(self) -> float:
        return float(self.manifest.get("params", {}).get("alpha", 1.0))

    @cached_property
    def serving(self) -> ServingParams:
        return ServingParams.from_manifest(self.manifest)

    @cached_property
    def event_weights(self) -> dict[str, float]:
        """Training weight per event type (fold-in weighs a history's items by them)."""
        return {k: float(v) for k, v in self.manifest.get("weights", {}).get("events", {}).items()}

    @cached_property
    def folder(self) -> FoldIn:
        """ALS fold-in against this version's item factors."""
        return FoldIn(self.item_factors, self.regularization, self.alpha)

    @cached_property
    def index(self) -> ItemIndex:
        """Top-k inner-product search over the item factors."""
        return ItemIndex.build(self.item_factors)

    @cached_property
    def ranked_popular(self) -> np.ndarray:
        """Trending rows, then popular rows not already listed: the popular strategy's
        order, computed once per version."""
        merged = np.concatenate([self.trending, self.popular]).astype(np.int32)
        _, first = np.unique(merged, return_index=True)
        return merged[np.sort(first)]

    @cached_property
    def answers(self) -> AnswerCache:
        """This version's cache of session answers and scores (empty when a version
        loads)."""
        return AnswerCache(self.answer_cache_size)

    @cached_property
    def is_trending(self) -> np.ndarray:
        flags = np.zeros(self.n_items, bool)
        flags[self.trending] = True
        return flags

    def warm(self) -> None:
        """Compute what every worker would otherwise compute on its first request (the
        index, the fold-in, the session tiebreak): gunicorn's master calls it before it
        forks, so the workers share those pages."""
        _ = self.index, self.folder, self.ranked_popular, self.is_trending, self.serving
        _ = self.answers
        if self.session is not None:
            _ = self.session.tiebreak_order, self.session.walk_into


def _session_model(
    manifest: Mapping[str, Any], item_ids: list[str], arrays: Mapping[str, np.ndarray] | None
) -> SessionModel | None:
    described = manifest.get("session")
    if not arrays or not described:
        return None
    config = config_from_dict(described["config"])
    return session_model_from_arrays(config, np.asarray(item_ids), dict(arrays))
