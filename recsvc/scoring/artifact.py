"""A trained model version on disk: ``<models-dir>/<version>/``.

Files (all arrays little-endian ``.npy``):

- ``manifest.json``: version, created (ISO 8601 UTC), model name and parameters, data
  fingerprint, row counts, metrics, library versions;
- ``item_ids.npy`` (n_items,) str and ``user_ids.npy`` (n_users,) str: row -> id;
- ``item_factors.npy`` (n_items, factors) float32 and ``user_factors.npy``
  (n_users, factors) float32: the model's vectors (``score = user @ item``);
- ``popular.npy`` and ``trending.npy`` (k,) int32: item rows, best first;
- ``similar_items.npy`` (n_items, s) int32 and ``similar_scores.npy`` (n_items, s)
  float32: each item's nearest items, best first, padded with -1 / 0;
- ``session.npz``, when the version has a session model: its named arrays
  (:func:`session_arrays`), over the same item rows; the manifest's ``session`` holds
  its configuration (:meth:`SessionConfig.to_dict`).

Session arrays: ``popularity``, dense ``item_idf`` and ``item_factors`` when the config
uses them, and each sparse matrix as ``<name>.indptr``, ``<name>.indices``,
``<name>.data`` and ``<name>.shape``.

No per-user candidate lists: at a million users they would cost more memory in Redis
than the vectors they come from.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsvc.scoring.session_model import PART_PARAMS, SessionConfig, SessionModel

ARRAYS = (
    "item_ids",
    "user_ids",
    "item_factors",
    "user_factors",
    "popular",
    "trending",
    "similar_items",
    "similar_scores",
)
SESSION_FILE = "session.npz"


@dataclass
class ModelArtifact:
    version: str
    manifest: dict[str, Any]
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_factors: np.ndarray
    user_factors: np.ndarray
    popular: np.ndarray
    trending: np.ndarray
    similar_items: np.ndarray
    similar_scores: np.ndarray
    # The session model's named arrays (session_arrays); empty without one.
    session: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.item_factors = np.ascontiguousarray(self.item_factors, dtype=np.float32)
        self.user_factors = np.ascontiguousarray(self.user_factors, dtype=np.float32)
        self.similar_items = np.ascontiguousarray(self.similar_items, dtype=np.int32)
        self.similar_scores = np.ascontiguousarray(self.similar_scores, dtype=np.float32)
        self.popular = np.asarray(self.popular, dtype=np.int32)
        self.trending = np.asarray(self.trending, dtype=np.int32)
        self.item_ids = np.asarray(self.item_ids).astype(str)
        self.user_ids = np.asarray(self.user_ids).astype(str)
        self._check_shapes()

    def _check_shapes(self) -> None:
        n_items, factors = self.item_factors.shape
        if self.user_factors.shape[1:] != (factors,):
            raise ValueError("user and item factors differ in width")
        if len(self.item_ids) != n_items or len(self.user_ids) != len(self.user_factors):
            raise ValueError("id maps do not match the factor matrices")
        if self.similar_items.shape != self.similar_scores.shape or (
            len(self.similar_items) != n_items
        ):
            raise ValueError("similar-items arrays must be (n_items, s)")

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    def array_shapes(self) -> dict[str, list[int]]:
        return {name: list(getattr(self, name).shape) for name in ARRAYS}

    def save(self, models_dir: Path) -> Path:
        """Write to ``models_dir/<version>/`` via a temporary folder renamed at the end, so a
        version folder is either complete or absent."""
        final = Path(models_dir) / self.version
        partial = final.with_name(f".{self.version}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in ARRAYS:
            np.save(partial / f"{name}.npy", getattr(self, name), allow_pickle=False)
        if self.session:
            np.savez(partial / SESSION_FILE, **self.session)
        manifest = {**self.manifest, "version": self.version, "arrays": self.array_shapes()}
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        return final

    @classmethod
    def load(cls, path: Path) -> ModelArtifact:
        """Read a version folder written by ``save``."""
        path = Path(path)
        manifest = json.loads((path / "manifest.json").read_text())
        arrays = {name: np.load(path / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
        session = {}
        if (path / SESSION_FILE).exists():
            with np.load(path / SESSION_FILE, allow_pickle=False) as stored:
                session = {name: stored[name] for name in stored.files}
        return cls(version=manifest["version"], manifest=manifest, session=session, **arrays)


def local_versions(models_dir: Path) -> list[dict[str, Any]]:
    """Manifests of the complete versions under ``models_dir``, newest first."""
    manifests = []
    for manifest in Path(models_dir).glob("*/manifest.json"):
        manifests.append(json.loads(manifest.read_text()))
    return sorted(manifests, key=lambda m: m.get("created", ""), reverse=True)


SPARSE = (
    "transitions",
    "walk",
    "item_similarity",
    "session_items",
    "item_sessions",
    "session_positions",
)
# "gram" (YᵀY of session ALS) was stored before it became derived; a stored one is ignored.
DENSE = ("item_idf", "item_factors")


def config_from_dict(raw: dict[str, Any]) -> SessionConfig:
    """The inverse of :meth:`SessionConfig.to_dict`: parts absent from ``raw`` are off."""
    values: dict[str, Any] = {name: None for name in PART_PARAMS}
    for name, value in raw.items():
        if name in PART_PARAMS:
            params_type = PART_PARAMS[name]
            known = {f.name for f in fields(params_type)}
            values[name] = params_type(**{k: v for k, v in value.items() if k in known})
        elif name in {f.name for f in fields(SessionConfig)}:
            values[name] = value
    return SessionConfig(**values)


def session_arrays(model: SessionModel) -> dict[str, np.ndarray]:
    """Every array of ``model`` under its name (module docstring)."""
    arrays = {"popularity": np.asarray(model.popularity, np.float32)}
    for name in DENSE:
        value = getattr(model, name)
        if value is not None:
            arrays[name] = np.ascontiguousarray(value)
    for name in SPARSE:
        matrix = getattr(model, name)
        if matrix is not None:
            matrix = sp.csr_matrix(matrix)
            arrays[f"{name}.indptr"] = matrix.indptr.astype(np.int64)
            arrays[f"{name}.indices"] = matrix.indices.astype(np.int32)
            arrays[f"{name}.data"] = np.ascontiguousarray(matrix.data)
            arrays[f"{name}.shape"] = np.asarray(matrix.shape, np.int64)
    return arrays


def session_model_from_arrays(
    config: SessionConfig, items: np.ndarray, arrays: dict[str, np.ndarray]
) -> SessionModel:
    """The :class:`SessionModel` that :func:`session_arrays` flattened."""
    model = SessionModel(config, np.asarray(items), arrays["popularity"])
    for name in DENSE:
        if name in arrays:
            setattr(model, name, arrays[name])
    for name in SPARSE:
        if f"{name}.shape" in arrays:
            shape = tuple(int(n) for n in arrays[f"{name}.shape"])
            parts = (arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"])
            setattr(model, name, sp.csr_matrix(parts, shape=shape, copy=False))
    return model
