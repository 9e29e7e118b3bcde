"""A ratings-shaped log, as a data scientist first brings one: ``user,item,rating,timestamp``.

No event column; ratings 1-5; each user active in one short burst (a few minutes to a
few hours, on one day of a year), as in MovieLens, where most users rate in one
session. Tastes are planted: users and items have latent vectors over a few genres, a
user rates the items they would like more often (beside what is popular), and rates
them higher; so a model that learns tastes can beat popularity, and a ratings threshold
(``--min-weight 4``) keeps the likes.

``python -m loadtests.ratings_log --out var/ratings.csv`` writes one and prints the
``recsvc evaluate`` commands whose figures training/README.md reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

DAY = 86_400.0
START = 1_704_067_200.0  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class RatingsConfig:
    """The log's shape. ``taste``: how strongly a user's choice of items follows their
    taste rather than popularity (0: popularity only)."""

    users: int = 3000
    items: int = 1000
    genres: int = 8
    median_ratings: float = 25.0
    min_ratings: int = 5
    taste: float = 2.5
    days: int = 365
    seed: int = 7


def ratings_log(config: RatingsConfig = RatingsConfig()) -> list[tuple[str, str, int, int]]:
    """Rows ``(user, item, rating, epoch seconds)`` in time order."""
    rng = np.random.default_rng(config.seed)
    users = _tastes(rng, config.users, config.genres, per_row=2)
    items = _tastes(rng, config.items, config.genres, per_row=1)
    popularity = 1.0 / np.arange(1, config.items + 1) ** 0.8
    popularity = rng.permutation(popularity)
    counts = np.maximum(
        config.min_ratings,
        rng.lognormal(np.log(config.median_ratings), 0.8, config.users).astype(int),
    )
    counts = np.minimum(counts, config.items // 2)
    rows = []
    for user in range(config.users):
        affinity = items @ users[user]  # in [0, 1]
        weights = popularity * np.exp(config.taste * 2 * affinity)
        chosen = rng.choice(config.items, counts[user], replace=False, p=weights / weights.sum())
        # Ratings average about 3.6 (as MovieLens'), higher for the user's genres.
        liking = (affinity[chosen] - affinity.mean()) / (affinity.std() + 1e-9)
        noise = rng.normal(0.0, 0.7, len(chosen))
        ratings = np.clip(np.rint(3.4 + 0.6 * liking + noise), 1, 5).astype(int)
        # One burst: a day of the year, then a rating every 10 s to 5 min.
        start = START + rng.integers(0, config.days) * DAY + rng.uniform(0, DAY / 2)
        times = start + np.cumsum(rng.uniform(10, 300, len(chosen)))
        rows += [
            (f"u{user}", f"m{item}", int(r), int(t))
            for item, r, t in zip(chosen, ratings, times, strict=True)
        ]
    rows.sort(key=lambda row: row[3])
    return rows


def write_ratings_log(path: Path, config: RatingsConfig = RatingsConfig()) -> Path:
    """Write :func:`ratings_log` as CSV with a ``user,item,rating,timestamp`` header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["user,item,rating,timestamp"]
    lines += [f"{u},{i},{r},{t}" for u, i, r, t in ratings_log(config)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _tastes(rng: np.random.Generator, n: int, genres: int, per_row: int) -> np.ndarray:
    """Rows on the simplex over ``genres``, each mostly on ``per_row`` genres."""
    tastes = np.full((n, genres), 0.05)
    for _ in range(per_row):
        tastes[np.arange(n), rng.integers(0, genres, n)] += 1.0
    return tastes / tastes.sum(axis=1, keepdims=True)


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--users", type=int, default=RatingsConfig.users, show_default=True)
@click.option("--seed", type=int, default=RatingsConfig.seed, show_default=True)
def main(out: Path, users: int, seed: int) -> None:
    """Write a ratings-shaped log and print the commands that evaluate it."""
    write_ratings_log(out, RatingsConfig(users=users, seed=seed))
    click.echo(f"wrote {out}; the figures of training/README.md:")
    base = f'recsvc evaluate --events {out} --event-col "" --compare itemknn,popular'
    liked = "--weight-col rating --min-weight 4 --exclude-seen"
    als = "--factors 16 --regularization 0.1 --alpha 5 --iterations 20"
    for split in ("leave-last", "user-fraction", "user-kfold"):
        click.echo(f"{base} --split {split} {liked} {als} --out var/eval/ratings-{split}")


if __name__ == "__main__":
    main()
