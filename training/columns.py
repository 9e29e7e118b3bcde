"""Column parsing shared by the loaders: ids to codes, times to epoch seconds, missing
values, and the time order of a log. Vectorised with numpy; the per-value Python
fallbacks run only when a vectorised parse fails on some value.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

from recsvc.core.events import parse_timestamp

TimeUnit = Literal["auto", "s", "ms", "iso"]


class LoadError(ValueError):
    """A log that cannot be read as asked: a user's mistake (a column not in the header,
    an empty or unreadable file, no row left), said in one line with what would work.

    ``role`` names the :class:`~training.loaders.ColumnMap` field at fault (``"user"``,
    ``"event"``, ...) when one is, so a command line can name its flag.
    """

    def __init__(self, message: str, role: str | None = None) -> None:
        super().__init__(message)
        self.role = role


# A numeric time column whose median is at least this is in milliseconds: 1e11 seconds is
# the year 5138, 1e11 milliseconds is March 1973.
MILLISECONDS_THRESHOLD = 1e11
# Times outside 1900-2200 are taken as not parsed: they come from a wrong unit (epoch
# milliseconds read as seconds are in the year 50,000; epoch seconds read as ISO text are
# years of ten digits), and every later step assumes a plausible clock.
EARLIEST, LATEST = -2_208_988_800.0, 7_258_118_400.0


def time_order(times: np.ndarray, ties: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices that sort by time, ties broken by ``ties`` (last key most significant).

    Logs are nearly in time order already, so a stable argsort on time is cheap; only
    the rows that share a timestamp with another go through the (slow) lexsort.

    Parameters
    ----------
    times : ndarray, shape (n,), float64
    ties : tuple of ndarray, each shape (n,)

    Returns
    -------
    ndarray, shape (n,), intp
    """
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    equal = sorted_times[1:] == sorted_times[:-1]
    tied = np.zeros(len(times), dtype=bool)
    tied[1:] |= equal
    tied[:-1] |= equal
    if tied.any():
        # Tied rows form runs in sorted order; sorting them among themselves by time
        # first keeps every run where it is.
        positions = np.flatnonzero(tied)
        rows = order[positions]
        keys = (*(key[rows] for key in ties), times[rows])
        order[positions] = rows[np.lexsort(keys)]
    return order


def missing(column: np.ndarray) -> np.ndarray:
    """Bool, shape (n,): empty text, None or NaN."""
    if column.dtype.kind in "SU":
        return column == column.dtype.type()
    if column.dtype.kind == "f":
        return np.isnan(column)
    if column.dtype.kind == "O":
        return np.array([v is None or v == "" or v != v for v in column], dtype=bool)
    return np.zeros(len(column), dtype=bool)


def factorize(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and labels of a column of ids.

    Parameters
    ----------
    column : ndarray, shape (n,)
        Ids as bytes, str, objects or integers.

    Returns
    -------
    codes : ndarray, shape (n,), int32
        ``labels[codes] == column`` (as text).
    labels : ndarray, shape (n_unique,), str
        The distinct ids, in a deterministic order (sorted, except for short byte ids,
        which are ordered by their bytes read as a little-endian integer).
    """
    if column.dtype.kind == "S" and column.dtype.itemsize <= 8:
        # Sorting 8-byte integers is twice as fast as sorting byte strings, and ids of
        # up to 8 characters (RetailRocket's) fit in one.
        width = column.dtype.itemsize
        padded = np.zeros((len(column), 8), dtype=np.uint8)
        padded[:, :width] = column.view(np.uint8).reshape(-1, width)
        keys, codes = np.unique(padded.view("<u8").reshape(-1), return_inverse=True)
        labels = keys.view(np.uint8).reshape(-1, 8)[:, :width].copy().view(f"S{width}")
        return codes.astype(np.int32).reshape(-1), as_text(labels.reshape(-1))
    labels, codes = np.unique(column, return_inverse=True)
    return codes.astype(np.int32).reshape(-1), as_text(labels)


def few_unique(
    column: np.ndarray, sample: int = 4096, most: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(column, return_inverse=True)`` for a column of few distinct values.

    A categorical column (event names) is cheaper to compare once per distinct value than
    to sort; the distinct values are guessed from the first ``sample`` rows and the rest
    found among the rows no guess matched.

    Returns
    -------
    names : ndarray, shape (n_unique,)
    inverse : ndarray, shape (n,), int64
        ``names[inverse] == column``.
    """
    guesses = np.unique(column[:sample])
    if len(guesses) > most:
        names, inverse = np.unique(column, return_inverse=True)
        return names, inverse.reshape(-1)
    inverse = np.full(len(column), -1, dtype=np.int64)
    for index, name in enumerate(guesses):
        inverse[column == name] = index
    rest = inverse < 0
    if not rest.any():
        return guesses, inverse
    more, more_inverse = np.unique(column[rest], return_inverse=True)
    inverse[rest] = more_inverse.reshape(-1) + len(guesses)
    return np.concatenate((guesses, more)), inverse


def as_text(labels: np.ndarray) -> np.ndarray:
    """Labels as a numpy str array (bytes decoded as UTF-8)."""
    if labels.dtype.kind == "S":
        try:
            return labels.astype(str)  # ASCII, the common case, in one cast
        except UnicodeDecodeError:
            return np.char.decode(labels, "utf-8")
    if labels.dtype.kind == "U":
        return labels
    return labels.astype(str)


def parse_times(column: np.ndarray, unit: TimeUnit = "auto") -> np.ndarray:
    """Event times as epoch seconds.

    Parameters
    ----------
    column : ndarray, shape (n,)
        Numbers, numeric text, ISO 8601 text (bytes or str; UTC where there is no
        offset) or ``datetime64``.
    unit : {"auto", "s", "ms", "iso"}
        See :class:`ColumnMap`; the whole column has one unit.

    Returns
    -------
    ndarray, shape (n,), float64
        Seconds since the Unix epoch, UTC; NaN where a value does not parse or falls
        outside the years 1900-2200.
    """
    seconds = _parse_times(column, unit)
    with np.errstate(invalid="ignore"):
        plausible = (seconds >= EARLIEST) & (seconds <= LATEST)
    return np.where(plausible, seconds, np.nan)


def _parse_times(column: np.ndarray, unit: TimeUnit) -> np.ndarray:
    if column.dtype.kind == "M":
        stamps = column.astype("datetime64[us]")
        seconds = stamps.astype(np.int64) / 1e6
        return np.where(np.isnat(stamps), np.nan, seconds)
    if unit == "iso":
        return _parse_iso(column)
    numbers = to_float(column)
    if unit == "auto":
        parsed = np.isfinite(numbers)
        if np.count_nonzero(parsed) * 2 < len(column):
            return _parse_iso(column)
        median = float(np.median(np.abs(numbers[parsed]))) if parsed.any() else 0.0
        unit = "ms" if median >= MILLISECONDS_THRESHOLD else "s"
    return numbers / 1000.0 if unit == "ms" else numbers


def to_float(column: np.ndarray) -> np.ndarray:
    """Float64, NaN where a value is not a finite number."""
    try:
        numbers = column.astype(np.float64)
    except (ValueError, TypeError):
        numbers = np.array([_float_or_nan(v) for v in column], dtype=np.float64)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _parse_iso(column: np.ndarray) -> np.ndarray:
    text = as_text(column) if column.dtype.kind in "SO" else column
    try:
        # numpy parses ISO 8601 without an offset in C; a trailing Z is the only offset
        # our own exporter writes, so strip it and take the fast path first. Other
        # offsets make numpy warn (it would apply them, deprecatedly): take the slow path.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            stamps = np.strings.rstrip(text, "Zz").astype("datetime64[us]")
    except (ValueError, UserWarning, DeprecationWarning):
        return np.array([_iso_or_nan(v) for v in text], dtype=np.float64)
    seconds = stamps.astype(np.int64) / 1e6
    return np.where(np.isnat(stamps), np.nan, seconds)


def _iso_or_nan(value: str) -> float:
    try:
        return parse_timestamp(value).timestamp()
    except (TypeError, ValueError):
        return float("nan")
