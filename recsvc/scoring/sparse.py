"""Ragged index helpers over CSR rows, shared by the session model's scoring and fitting."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups ``g`` of ``counts[g]`` consecutive indices from ``starts[g]``: the group
    and the index of every element, groups in order."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return group, starts[group] + np.arange(counts.sum()) - first[group]


def row_entries(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every stored entry of ``matrix[rows]``: the position in ``rows`` it belongs to and
    its index into ``matrix.indices`` and ``matrix.data``."""
    starts = matrix.indptr[rows]
    return ragged(starts, matrix.indptr[rows + 1] - starts)
