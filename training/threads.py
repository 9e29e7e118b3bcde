"""Thread settings for training: BLAS pinned to one thread, implicit's own pool sized here.

implicit parallelises over users and items itself; a multi-threaded BLAS underneath it
oversubscribes the cores and can make a fit ten times slower (implicit's README), so every
fit and every batched scoring runs inside :func:`single_threaded_blas`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


def default_num_threads() -> int:
    """Threads for implicit's own pool when a scorer is not given a number: every core.

    Returns
    -------
    int
        At least 1.
    """
    return max(1, os.cpu_count() or 1)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL, BLIS) to one thread inside the block, then restore it."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield
