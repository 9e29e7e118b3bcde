"""Scoring a trained model against a synthetic store's ground truth.

``recsvc generate`` writes ``ground_truth.jsonl``: for each visitor who buys in the days
*after* the log ends, the items they buy. A model fit on the whole log can be scored on
those purchases without any split: nothing of them is in its training data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from training.matrix import InteractionMatrix
from training.metrics import compute_metrics
from training.scorers import Scorer


def find_ground_truth(events_path: Path) -> Path | None:
    """``ground_truth.jsonl`` beside a generated store's ``events`` folder, if any."""
    events_path = Path(events_path)
    for folder in (events_path, events_path.parent):
        candidate = folder / "ground_truth.jsonl"
        if candidate.is_file():
            return candidate
    return None


def load_targets(path: Path, matrix: InteractionMatrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """Rows of the users the model knows and their future purchases as a 0/1 matrix,
    shape (n_users_known, n_items); items the model does not know are left out."""
    users, rows, cols = [], [], []
    for line in Path(path).read_text().splitlines():
        entry = json.loads(line)
        user_row = int(matrix.users.rows([entry["visitor_id"]])[0])
        item_rows = matrix.items.rows(entry["items"])
        item_rows = item_rows[item_rows >= 0]
        if user_row < 0 or not len(item_rows):
            continue
        rows.extend([len(users)] * len(item_rows))
        cols.extend(item_rows.tolist())
        users.append(user_row)
    data = np.ones(len(rows), np.float32)
    targets = sp.csr_matrix((data, (rows, cols)), shape=(len(users), matrix.shape[1]))
    targets.data[:] = 1.0  # an item bought twice is one target
    return np.asarray(users, np.int32), targets


def score_ground_truth(
    scorers: dict[str, Scorer], matrix: InteractionMatrix, path: Path, ks=(10, 20)
) -> dict[str, Any]:
    """Metrics of each (fitted) scorer on the ground truth's future purchases."""
    users, targets = load_targets(path, matrix)
    results: dict[str, Any] = {"users": len(users), "targets": int(targets.nnz)}
    for name, scorer in scorers.items():
        ids, _ = scorer.recommend(users, max(ks))
        results[name] = compute_metrics(ids, targets, tuple(ks), matrix.shape[1])
    return results
