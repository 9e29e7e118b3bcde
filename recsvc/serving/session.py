"""The ``session`` strategy: an anonymous visitor's current session, scored by the
version's session model (:mod:`training.session_query`, the function the session
evaluation measures: Recall@20 0.52 on RetailRocket's published protocol, where ALS
fold-in scores 0.22).

The session is read from the profile's recent items: the newest ones up to the first gap
of more than an hour between two of them (the protocol's cut), oldest first, those the
model knows. The profile keeps each item once, at its latest touch, so a revisited item
counts where it was last seen; every event type on an item counts, as a visit to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsvc.serving.holder import LoadedModel
from training.session_query import SessionRecommendation, explain_session, recommend_session
from training.sessions import SESSION_GAP_SECONDS


def current_session(visitor: dict[str, Any] | None, model: LoadedModel) -> np.ndarray:
    """Item rows of the visitor's current session, oldest first (module docstring)."""
    if not visitor:
        return np.zeros(0, np.int64)
    rows: list[int] = []
    newer_at = None
    for item_id, _kind, at in visitor.get("recent_items", []):  # newest first
        if newer_at is not None and newer_at - at > SESSION_GAP_SECONDS:
            break
        newer_at = at
        row = model.row_of.get(item_id)
        if row is not None:
            rows.append(row)
    return np.array(rows[::-1], np.int64)


def session_candidates(
    model: LoadedModel, session: np.ndarray, k: int, allowed: np.ndarray
) -> SessionRecommendation:
    """The ``k`` best allowed items for ``session`` (fewer when fewer are allowed)."""
    found = recommend_session(model.session, session, k, allowed)
    keep = found.ids >= 0
    return SessionRecommendation(found.ids[keep], found.scores[keep], found.factors)


def session_evidence(
    model: LoadedModel, session: np.ndarray, rows: np.ndarray, found: SessionRecommendation
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows`` (the candidates, after re-ranking): the session items behind
    its score and their shares, (k, 3) each, ``-1`` / 0 where none."""
    return explain_session(model.session, session, rows, found.factors)
