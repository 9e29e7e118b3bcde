"""Nudge analytics: counters per channel turned into rates, incrementality and lift.

Each nudge rule (channel) counts, per day:

- ``eligible``: carts the rule considered once (claimed, shown, or held out);
- ``held_out``: of those, carts of owners in the rule's holdout: never nudged;
- ``claimed``: off-site carts a sender claimed;
- ``sent``: nudges sent (``nudge_sent``) or shown (``nudge_impression``), once per cart;
- ``clicked``: nudges clicked, once per cart;
- ``recovered`` / ``recovered_value``: nudged carts followed by a purchase within the
  attribution window, and the value of that order's lines in the window;
- ``holdout_recovered`` / ``holdout_recovered_value``: the same for held-out carts: what
  would have happened without the nudge.

The nudge's own effect is the difference between the two groups' recovery rates: of the
``recovered`` carts, ``sent × holdout_recovery_rate`` would have come back anyway, the rest
are ``incremental_recoveries``; ``lift`` is the relative gain of the nudged rate over the
held-out one. A ratio with nothing to divide by is ``None``, not 0: "no data" must not read
as "no effect".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COUNTERS: tuple[str, ...] = (
    "eligible",
    "held_out",
    "claimed",
    "sent",
    "clicked",
    "recovered",
    "recovered_value",
    "holdout_recovered",
    "holdout_recovered_value",
)
# Money counters: floats rounded to cents; the others are whole counts.
VALUE_COUNTERS: frozenset[str] = frozenset({"recovered_value", "holdout_recovered_value"})
TOTAL = "all"
RATE_DIGITS = 6


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _rounded(value: float | None, digits: int = RATE_DIGITS) -> float | None:
    return None if value is None else round(value, digits)


def channel_row(channel: str, counts: Mapping[str, float]) -> dict[str, Any]:
    """One channel's report row from its summed counters (missing ones are 0)."""
    row: dict[str, Any] = {"channel": channel}
    for name in COUNTERS:
        value = counts.get(name, 0)
        row[name] = round(float(value), 2) if name in VALUE_COUNTERS else int(value)
    recovery_rate = _ratio(row["recovered"], row["sent"])
    holdout_rate = _ratio(row["holdout_recovered"], row["held_out"])
    incremental = None
    if holdout_rate is not None:
        incremental = row["recovered"] - row["sent"] * holdout_rate
    lift = None
    if recovery_rate is not None and holdout_rate:
        lift = recovery_rate / holdout_rate - 1
    row.update(
        recovery_rate=_rounded(recovery_rate),
        holdout_recovery_rate=_rounded(holdout_rate),
        incremental_recoveries=_rounded(incremental, 2),
        lift=_rounded(lift),
    )
    return row


def nudge_report(
    counts: Mapping[str, Mapping[str, float]], channels: Iterable[str]
) -> dict[str, Any]:
    """Rows for ``channels`` (in that order) from ``counts[channel][counter]``, and a totals
    row (channel ``"all"``) computed from the summed counters of those channels."""
    channels = list(channels)
    totals: dict[str, float] = dict.fromkeys(COUNTERS, 0)
    for channel in channels:
        for name in COUNTERS:
            totals[name] += counts.get(channel, {}).get(name, 0)
    return {
        "channels": [channel_row(channel, counts.get(channel, {})) for channel in channels],
        "totals": channel_row(TOTAL, totals),
    }
