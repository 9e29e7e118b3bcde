"""How often an anonymous visitor's session repeats one already answered: the session
answer cache's hit rate (:mod:`recsvc.scoring.answer_cache`) on a real store's log.

    python -m loadtests.session_repeats [--log ../shared/data/retailrocket/events.csv.gz]
        [--capacity 1000,10000,20000,100000] [--workers 1,2,4]

Replays RetailRocket's events in time order. Each visitor's recent items are kept as the
profile keeps them (``recsvc.core.profile``: an item touched again moves to the front,
at most ``recent_items_max``), and after every product view the visitor's current session
(:meth:`~recsvc.scoring.state.VisitorState.current_session`, the model's one-hour gap)
is the question the session strategy is asked: the cache's key with the request's filters
left at their defaults. Gunicorn gives each request to any worker, so with ``W`` workers
each holds its own cache and sees a random ``1/W`` of the requests. Prints the hit rate
per cache size and worker count. Every visitor counts as anonymous: known visitors are
served by the blend, which does not use the cache, so this is the rate among the
session strategy's requests if the store's visitors were all anonymous (on RetailRocket
nearly all are).
"""

from __future__ import annotations

import argparse
import csv
import gzip
from collections import OrderedDict
from itertools import pairwise
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recsvc.scoring.session_model import SESSION_GAP_SECONDS
from recsvc.settings import Settings

DEFAULT_LOG = Path(__file__).resolve().parents[2] / "shared/data/retailrocket/events.csv.gz"


def session_questions(log: Path, recent_max: int) -> list[tuple[int, ...]]:
    """The current session after each product view, in time order, as item codes."""
    with gzip.open(log, "rt", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        events = sorted((int(row[0]), row[1], row[2], row[3]) for row in reader)
    codes: dict[str, int] = {}
    recent: dict[str, list[tuple[int, float]]] = {}  # newest first: (item, seconds)
    questions = []
    for millis, visitor, kind, item in tqdm(events, desc="replay", unit="event"):
        at, code = millis / 1000.0, codes.setdefault(item, len(codes))
        held = [entry for entry in recent.get(visitor, []) if entry[0] != code]
        recent[visitor] = [(code, at), *held][:recent_max]
        if kind == "view":
            questions.append(_current_session(recent[visitor]))
    return questions


def _current_session(newest_first: list[tuple[int, float]]) -> tuple[int, ...]:
    session = [newest_first[0][0]]
    for (_, later), (item, earlier) in pairwise(newest_first):
        if later - earlier > SESSION_GAP_SECONDS:
            break
        session.append(item)
    return tuple(reversed(session))


def hit_rate(questions: list[tuple[int, ...]], capacity: int, workers: int, seed: int = 0) -> float:
    """Hits over questions with ``workers`` LRU caches of ``capacity`` each, every
    question sent to a random worker."""
    worker_of = np.random.default_rng(seed).integers(0, workers, len(questions))
    caches: list[OrderedDict] = [OrderedDict() for _ in range(workers)]
    hits = 0
    for question, worker in zip(questions, worker_of.tolist(), strict=True):
        cache = caches[worker]
        if question in cache:
            hits += 1
            cache.move_to_end(question)
            continue
        cache[question] = True
        if len(cache) > capacity:
            cache.popitem(last=False)
    return hits / max(len(questions), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG)
    parser.add_argument("--capacity", default="1000,10000,20000,100000")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args(argv)
    if not args.log.exists():
        parser.error(f"--log: {args.log} does not exist (RetailRocket's events.csv.gz)")
    questions = session_questions(args.log, Settings().recent_items_max)
    lengths = np.bincount(np.minimum([len(q) for q in questions], 5))
    print(f"{len(questions):,} session questions; length 1..4, 5+: {lengths[1:].tolist()}")
    workers = [int(w) for w in args.workers.split(",")]
    print(f"{'capacity':>9s} " + " ".join(f"{w:>2d} worker(s)" for w in workers))
    for capacity in (int(c) for c in args.capacity.split(",")):
        rates = [hit_rate(questions, capacity, w) for w in workers]
        print(f"{capacity:9,d} " + " ".join(f"{r:12.1%}" for r in rates))


if __name__ == "__main__":
    main()
