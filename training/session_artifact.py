"""The session model a version ships: fit on the training log, stored as flat arrays.

``recsvc train`` fits the tuned blend of :mod:`training.sessions` on the log's view
sessions, over the shipped model's item rows (so the service filters, explains and
renders both models' answers with the same row numbers), and keeps it in the artifact as
named arrays. Publishing writes those arrays to Redis; a serving worker rebuilds the
:class:`~training.sessions.SessionModel` from them and scores an anonymous visitor's
session with :func:`training.session_query.recommend_session`, the function the session
evaluation measures.

Array names: ``popularity``, dense ``item_idf``, ``item_factors`` and ``gram`` when the
config uses them, and each sparse matrix as ``<name>.indptr``, ``<name>.indices``,
``<name>.data`` and ``<name>.shape``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import scipy.sparse as sp

from training.interactions import Interactions
from training.matrix import IdMap
from training.sessions import (
    PART_PARAMS,
    SessionConfig,
    SessionModel,
    build_sessions,
    fit_session_model,
    restrict_items,
)

SPARSE = (
    "transitions",
    "walk",
    "item_similarity",
    "session_items",
    "item_sessions",
    "session_positions",
)
DENSE = ("item_idf", "item_factors", "gram")


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


def fit_served_sessions(
    interactions: Interactions,
    item_ids: np.ndarray,
    config: SessionConfig,
    *,
    show_progress: bool = False,
) -> tuple[SessionModel | None, dict[str, Any]]:
    """The session model over ``item_ids`` (the shipped model's rows, in order).

    Sessions are cut as the published protocol cuts them (:func:`build_sessions`: views,
    1 h of inactivity, consecutive repeats removed); items the shipped model does not
    have are dropped, then sessions left shorter than 2, which teach no transition.

    Returns
    -------
    model : SessionModel or None
        None when no session of 2 known items is left.
    report : dict
        Session counts and fit seconds, for the manifest.
    """
    sessions = build_sessions(interactions)
    codes = IdMap(interactions.items).rows(np.asarray(item_ids).astype(str))
    train = restrict_items(sessions, codes)
    report: dict[str, Any] = {"sessions": train.stats()}
    if len(train) == 0:
        return None, report
    model = fit_session_model(train, config, show_progress=show_progress)
    report["fit_seconds"] = model.fit_seconds
    return model, report


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
