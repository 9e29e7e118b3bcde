"""The short Redis outage drill, run whole: its own Redis killed under load and restarted
from its append-only file, the service on it answering throughout (a few seconds)."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest

from loadtests.drills import redis_outage, support

pytestmark = pytest.mark.slow


def _args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    redis_outage.add_arguments(parser, duration=10, outage=4, at=3)
    args = parser.parse_args(["--users", "2000", "--items", "500", "--sessions", "2000"])
    args.visitors, args.rate = 100, 100
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def test_a_short_redis_outage_passes_every_check():
    verdict = redis_outage.run(
        _args(), "redis_outage (short)", lambda server: server.kill(), lambda s: s.start()
    )
    failed = [(what, detail) for what, ok, detail in verdict.checks if not ok]
    assert not failed, failed
    assert verdict.figures["recovery"]["normal_from_s"] <= redis_outage.RECOVERY_LIMIT_S


def _answer(started: float, fallback: str | None, status: int = 200) -> support.Answer:
    return support.Answer("known", started, started + 0.01, status, body={"fallback": fallback})


def test_recovery_is_the_start_of_the_first_clean_window():
    answers = [_answer(t / 10, "popular" if t < 4 else None) for t in range(40)]
    answers.append(_answer(3.5, "popular"))  # a later trip of the breaker
    back = redis_outage.recovery(answers, back_at=0.0, window=2.0)
    assert back["normal_from_s"] == 0.4
    assert back["first_normal_s"] == pytest.approx(0.41)
    assert back["later_fallbacks"] == 1


def test_recovery_never_reached():
    answers = [_answer(t / 10, "popular") for t in range(10)]
    assert redis_outage.recovery(answers, back_at=0.0)["normal_from_s"] is None


class _Recorded:
    """What a drill's traffic recorded, by name (only recommendations here)."""

    def __init__(self, known: list[support.Answer]) -> None:
        self.answers = known

    def of(self, name: str) -> list[support.Answer]:
        return self.answers if name == "known" else []


def _during_check(answers: list[support.Answer]) -> tuple[bool, str]:
    verdict = support.Verdict("redis_outage")
    redis_outage.judge(verdict, _Recorded(answers), 1.0, 5.0, 5.5, Counter())
    return next((ok, d) for what, ok, d in verdict.checks if what.startswith("recommendations"))


def test_reads_answered_while_redis_was_down_must_come_from_memory():
    down = [_answer(1.5 + t / 10, "popular") for t in range(30)]
    assert _during_check(down) == (True, "30 of 30")
    assert _during_check([*down, _answer(3.0, None)]) == (False, "30 of 31")


def test_a_normal_answer_while_redis_restarts_is_not_a_failure():
    """Between the restart (5.0) and the drill's first successful ping (5.5) a worker may
    already read from Redis."""
    down = [_answer(1.5 + t / 10, "popular") for t in range(30)]
    assert _during_check([*down, _answer(5.2, None)]) == (True, "30 of 30")
