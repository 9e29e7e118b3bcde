"""Event types to confidence: per-type weights, time decay, and the config that holds them.

Defaults live in ``training/weights.toml`` beside this module, each with its reason;
:func:`load_weights` reads that file (or another) and applies overrides.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsvc.core.events import EVENT_TYPES
from training.interactions import EVENT_CODES, Interactions

DEFAULT_WEIGHTS_PATH = Path(__file__).with_name("weights.toml")
SECONDS_PER_DAY = 86_400.0

Transform = Literal["none", "log1p"]


@dataclass(frozen=True)
class WeightConfig:
    """How events become matrix cells. Field meanings and defaults: ``weights.toml``.

    Attributes
    ----------
    events : mapping of str to float
        Weight per event type; types not named weigh 0.
    half_life_days : float
        Time decay half-life; 0 turns decay off.
    transform : {"none", "log1p"}
        Applied to each summed cell.
    min_user_interactions, min_item_interactions : int
        k-core bars on distinct (user, item) pairs.
    """

    events: Mapping[str, float]
    half_life_days: float = 0.0
    transform: Transform = "none"
    min_user_interactions: int = 1
    min_item_interactions: int = 1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.events) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types in weights: {unknown}")
        if any(w < 0 for w in self.events.values()):
            raise ValueError("event weights must be >= 0")
        if self.half_life_days < 0:
            raise ValueError("half_life_days must be >= 0")
        if self.transform not in ("none", "log1p"):
            raise ValueError(f"unknown transform {self.transform!r}")

    def table(self) -> np.ndarray:
        """Weight by event code: float32, shape (len(EVENT_TYPES),)."""
        table = np.zeros(len(EVENT_TYPES), dtype=np.float32)
        for name, weight in self.events.items():
            table[EVENT_CODES[name]] = weight
        return table

    def replace(self, **changes: Any) -> WeightConfig:
        """A copy with ``changes``; ``events`` given as a mapping is merged, not replaced."""
        if "events" in changes:
            changes["events"] = {**self.events, **changes["events"]}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (for reports and artifact manifests)."""
        values = dataclasses.asdict(self)
        values["events"] = dict(self.events)
        return values


def load_weights(path: Path | str | None = None, **overrides: Any) -> WeightConfig:
    """Read a weights TOML file (default: :data:`DEFAULT_WEIGHTS_PATH`), then ``overrides``.

    Parameters
    ----------
    path : Path or str, optional
        A file with ``[events]``, ``[decay]`` and ``[matrix]`` tables, as the default.
    **overrides
        :class:`WeightConfig` fields; ``events`` is merged into the file's.

    Returns
    -------
    WeightConfig
    """
    with Path(path or DEFAULT_WEIGHTS_PATH).open("rb") as handle:
        raw = tomllib.load(handle)
    config = WeightConfig(
        events={name: float(w) for name, w in raw.get("events", {}).items()},
        half_life_days=float(raw.get("decay", {}).get("half_life_days", 0.0)),
        **{k: v for k, v in raw.get("matrix", {}).items()},
    )
    return config.replace(**overrides) if overrides else config


def event_weights(
    interactions: Interactions, config: WeightConfig, reference_time: float
) -> np.ndarray:
    """The confidence each event adds to its cell.

    ``weight = events[type] × value × 0.5 ** (max(0, reference_time − time) / half_life)``,
    the last factor only when ``half_life_days > 0``.

    Parameters
    ----------
    interactions : Interactions
    config : WeightConfig
    reference_time : float
        Epoch seconds at which an event has its full weight; earlier events decay.

    Returns
    -------
    ndarray, shape (n,), float32
    """
    weights = config.table()[interactions.event] * interactions.value
    if config.half_life_days > 0:
        age_days = np.maximum(reference_time - interactions.time, 0.0) / SECONDS_PER_DAY
        weights = weights * np.exp2(-age_days / config.half_life_days)
    return weights.astype(np.float32)
