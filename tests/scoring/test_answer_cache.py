"""The answer cache on its own: least recently used out first, a bounded size, shared
answers that cannot be changed in place. Its use by the session strategy is tested with
the strategies (``test_strategies.py``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from recsvc.scoring.answer_cache import AnswerCache
from recsvc.scoring.state import Ranked


def answer(row: int) -> Ranked:
    return Ranked("session", np.array([row], np.int32), np.array([1.0], np.float32), [[]])


def test_a_repeated_key_is_answered_from_the_cache_and_counted():
    cache = AnswerCache(10)
    computed = []
    for _ in range(3):
        got = cache.get_or_compute("a", lambda: computed.append(1) or answer(1))
    assert len(computed) == 1 and got.rows.tolist() == [1]
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.hit_rate == pytest.approx(2 / 3)


def test_the_least_recently_used_key_goes_first():
    cache = AnswerCache(2)
    cache.get_or_compute("a", lambda: answer(1))
    cache.get_or_compute("b", lambda: answer(2))
    cache.get_or_compute("a", lambda: answer(9))  # a is now the most recent
    cache.get_or_compute("c", lambda: answer(3))  # so b goes
    assert len(cache) == 2
    assert cache.get_or_compute("a", lambda: answer(9)).rows.tolist() == [1]
    assert cache.get_or_compute("b", lambda: answer(5)).rows.tolist() == [5]


def test_capacity_zero_keeps_nothing():
    cache = AnswerCache(0)
    assert cache.get_or_compute("a", lambda: answer(1)).rows.tolist() == [1]
    assert cache.get_or_compute("a", lambda: answer(2)).rows.tolist() == [2]
    assert len(cache) == 0


def test_a_shared_answer_cannot_be_changed_in_place():
    cache = AnswerCache(1)
    held = cache.get_or_compute("a", lambda: answer(1))
    with pytest.raises(ValueError):
        held.rows[0] = 7
    assert cache.get_or_compute("a", lambda: answer(2)).rows.tolist() == [1]


def test_threads_sharing_one_cache_stay_within_its_size():
    cache = AnswerCache(50)

    def ask(offset: int) -> None:
        for n in range(500):
            key = (n * 7 + offset) % 120
            assert cache.get_or_compute(key, lambda k=key: answer(k)).rows.tolist() == [key]

    threads = [threading.Thread(target=ask, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    assert cache.hits + cache.misses == 2000
