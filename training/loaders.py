"""Interaction logs in, columnar :class:`Interactions` out.

Three sources, one result:

- the service's own exported JSONL, by the reader's rules (:mod:`recsvc.eventlog.reader`:
  duplicate event ids and malformed lines dropped and counted) but straight into
  columns, files in parallel (:mod:`training.jsonl_columns`);
- the public RetailRocket ``events.csv`` (``timestamp,visitorid,event,itemid
  [,transactionid]``, epoch milliseconds), gzipped or not;
- any CSV, TSV or Parquet file described by a :class:`ColumnMap`.

Every row read is either kept or counted under a reason in :class:`LoadReport`
(``rows == kept + sum(dropped.values())``); nothing is dropped silently. Event names
are normalised to the service's vocabulary (:data:`EVENT_ALIASES`).
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recsvc.core.events import EVENT_TYPES, format_timestamp
from training.columns import (
    LoadError,
    TimeUnit,
    as_text,
    factorize,
    few_unique,
    missing,
    parse_times,
    time_order,
    to_float,
)
from training.delimited import read_columns, read_header
from training.interactions import EVENT_CODES, Interactions
from training.jsonl_columns import read_log_columns

logger = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"]
Identity = Literal["visitor", "user", "stitched"]

# Names other logs use for the service's event types; matching ignores case.
EVENT_ALIASES: dict[str, str] = {name: name for name in EVENT_TYPES} | {
    "view": "product_view",  # RetailRocket
    "addtocart": "add_to_cart",  # RetailRocket
    "transaction": "purchase",  # RetailRocket
    "click": "product_view",
    "detail": "product_view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "buy": "purchase",
    "order": "purchase",
}


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a CSV, TSV or Parquet file hold what.

    Attributes
    ----------
    user, item : str
        Columns of the user (or visitor) id and the item id. Required.
    time : str or None
        Column of the event time. ``None``: the row order is the time order, and row
        ``i`` gets time ``i`` seconds.
    event : str or None
        Column of the event type; names go through :data:`EVENT_ALIASES` and
        ``event_aliases``. ``None``: every row is a ``default_event``.
    weight : str or None
        Column of a per-row multiplier of the event type's weight (a quantity, a
        rating). ``None``: 1.
    min_weight : float or None
        Rows whose weight is below this are dropped (counted as ``below_min_weight``):
        ratings of 4 and up as the positives of a 1-5 ratings log. Needs ``weight``.
    id : str or None
        Column of a unique event id; rows repeating an earlier id are dropped.
    time_unit : {"auto", "s", "ms", "iso"}
        Epoch seconds, epoch milliseconds or ISO 8601 text (UTC when it has no
        offset). ``"auto"``: ISO when most values are not numbers, else milliseconds
        when the median is at least 1e11, else seconds.
    default_event : str
        The event type of every row when there is no event column.
    event_aliases : mapping of str to str
        Extra source name to service event type mappings, over :data:`EVENT_ALIASES`.
    """

    user: str = "user"
    item: str = "item"
    time: str | None = "timestamp"
    event: str | None = "event"
    weight: str | None = None
    min_weight: float | None = None
    id: str | None = None
    time_unit: TimeUnit = "auto"
    default_event: str = "product_view"
    event_aliases: Mapping[str, str] = field(default_factory=dict)

    def wanted(self) -> list[str]:
        """The columns to read, in a fixed order."""
        return [name for name in self.roles().values() if name is not None]

    def roles(self) -> dict[str, str | None]:
        """Role (``user``, ``item``, ...) to the column that fills it, None where none."""
        return {
            "user": self.user,
            "item": self.item,
            "time": self.time,
            "event": self.event,
            "weight": self.weight,
            "id": self.id,
        }


RETAILROCKET_COLUMNS = ColumnMap(
    user="visitorid", item="itemid", time="timestamp", event="event", time_unit="ms"
)


@dataclass
class LoadReport:
    """What a load read, kept and dropped, and why.

    ``rows == kept + sum(dropped.values())``. Reasons: ``malformed`` (unparseable line or
    record, wrong field count), ``duplicate`` (a repeated event id, or without ids an
    exact repeat of a row), ``no_item`` (a JSONL event that concerns no product, such as
    ``page_view``: expected, not an error), ``missing_user``, ``missing_item``,
    ``bad_time``, ``bad_weight``, ``below_min_weight`` (under
    :attr:`ColumnMap.min_weight`), ``unknown_event`` (names in ``unknown_events``).
    ``columns`` says which column filled each role (None: no such column: every row is
    then a ``default_event``, or weighs 1); ``examples`` holds one dropped value per
    reason, to say in an error what did not parse.
    """

    source: str
    format: str
    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    unknown_events: dict[str, int] = field(default_factory=dict)
    events_read: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    users: int = 0
    items: int = 0
    first_time: str | None = None
    last_time: str | None = None
    malformed_examples: list[str] = field(default_factory=list)
    columns: dict[str, str | None] = field(default_factory=dict)
    min_weight: float | None = None
    examples: dict[str, str] = field(default_factory=dict)
    # Set by the caller that decides it (recsvc train): the event types that are test
    # targets, or "all".
    target_events: list[str] | str | None = None
    seconds: float = 0.0

    def drop(self, reason: str, count: int) -> None:
        """Count ``count`` rows dropped for ``reason`` (zero counts are not recorded)."""
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def roles_line(self) -> str:
        """What the kept rows became, in words: the event and weight columns' part."""
        event, weight = self.columns.get("event"), self.columns.get("weight")
        if event:
            kinds = ", ".join(f"{name} {n:,}" for name, n in self.events.items())
            parts = [f"event column {event!r}: {kinds}"]
        else:
            parts = ["no event column: every row is one interaction"]
        if weight:
            bar = "" if self.min_weight is None else f", rows under {self.min_weight:g} dropped"
            parts.append(f"weight column {weight!r} multiplies each row's weight{bar}")
        return "; ".join(parts)


@dataclass
class _RawColumns:
    """One source's columns before validation; arrays of bytes, str, objects or numbers,
    all of the same length."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    weight: np.ndarray | None = None
    ids: np.ndarray | None = None


def load_events(
    path: Path | str,
    format: Format = "auto",
    columns: ColumnMap | Mapping[str, Any] | None = None,
    *,
    identity: Identity = "visitor",
    drop_duplicate_rows: bool = True,
) -> tuple[Interactions, LoadReport]:
    """Load an interaction log into columnar arrays.

    Parameters
    ----------
    path : Path or str
        A file, or for ``jsonl`` a log folder and for ``parquet`` a dataset folder.
    format : {"auto", "jsonl", "retailrocket", "csv", "tsv", "parquet"}
        ``"auto"`` decides by :func:`detect_format`.
    columns : ColumnMap or mapping, optional
        For ``csv``, ``tsv`` and ``parquet``: which column holds what (a mapping is
        passed to :class:`ColumnMap`). ``retailrocket`` uses
        :data:`RETAILROCKET_COLUMNS` (``auto`` with ``columns`` reads a RetailRocket
        file as CSV with them); ``jsonl`` takes none (a :class:`LoadError`).
    identity : {"visitor", "user", "stitched"}
        JSONL only: whose interactions a row is. ``visitor``: the ``visitor_id``;
        ``user``: the ``user_id``, rows without one dropped as ``missing_user``;
        ``stitched``: the last ``user_id`` a visitor was seen logged in with, else the
        ``visitor_id`` (user and visitor ids must not collide).
    drop_duplicate_rows : bool
        Without an id column, drop rows equal to another in user, item, time, event and
        weight (RetailRocket has 460), counted as ``duplicate``.

    Returns
    -------
    interactions : Interactions
        Sorted by time.
    report : LoadReport
    """
    started = clock.perf_counter()
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "retailrocket" and format == "auto" and columns is not None:
        fmt = "csv"  # RetailRocket's header, but the caller's own column map
    if fmt == "jsonl" and columns is not None:
        raise LoadError(
            f"{path.name} is the service's JSONL log: column flags apply to CSV, TSV and "
            "Parquet only; leave them out"
        )
    report = LoadReport(source=str(path), format=fmt)
    if fmt == "jsonl":
        mapping = ColumnMap(time_unit="s")  # read_log_columns parses the ISO stamps
        raw = _read_jsonl(path, identity, report)
    else:
        mapping = _column_map(fmt, columns)
        _check_columns(path, fmt, mapping)
        raw = _read_table(path, fmt, mapping, report)
    report.columns, report.min_weight = mapping.roles(), mapping.min_weight
    interactions = _assemble(raw, mapping, report, drop_duplicate_rows and raw.ids is None)
    _describe(interactions, report)
    if report.rows and (not report.kept or _mostly_broken(report)):
        raise _nothing_kept(path, mapping, report)
    report.seconds = round(clock.perf_counter() - started, 3)
    return interactions, report


def detect_format(path: Path) -> Format:
    """The format of ``path`` by name, and for ``.csv`` by header.

    A folder is a JSONL log folder unless it holds ``.parquet`` files; ``.jsonl`` and
    ``.jsonl.gz`` are JSONL; ``.parquet`` and ``.pq`` Parquet; ``.tsv`` TSV; other files
    CSV, and RetailRocket when the header has its four columns.
    """
    path = Path(path)
    if path.is_dir():
        return "parquet" if any(path.rglob("*.parquet")) else "jsonl"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    header = set(read_header(path, ","))
    if {"timestamp", "visitorid", "event", "itemid"} <= header:
        return "retailrocket"
    return "csv"


def _column_map(fmt: str, columns: ColumnMap | Mapping[str, Any] | None) -> ColumnMap:
    if fmt == "retailrocket":
        return RETAILROCKET_COLUMNS
    if columns is None:
        return ColumnMap()
    return columns if isinstance(columns, ColumnMap) else ColumnMap(**columns)


def header_of(path: Path, fmt: str) -> list[str]:
    """The column names of a CSV, TSV or Parquet file (a Parquet folder: its schema)."""
    if fmt == "parquet":
        import pyarrow.dataset as ds

        return list(ds.dataset(path, format="parquet").schema.names)
    return read_header(path, "\t" if fmt == "tsv" else ",")


def _check_columns(path: Path, fmt: str, mapping: ColumnMap) -> None:
    """Every mapped column in the file, else a :class:`LoadError` naming the role."""
    if mapping.min_weight is not None and mapping.weight is None:
        raise LoadError("a minimum weight needs a weight column", role="min_weight")
    header = header_of(path, fmt)
    if not header:
        raise LoadError(f"{path} is empty: no header line")
    for role, name in mapping.roles().items():
        if name is not None and name not in header:
            hint = " or no event column" if role == "event" else ""
            raise LoadError(
                f"{role} column {name!r} is not in {path.name} (columns: {', '.join(header)}); "
                f"name one of those{hint}",
                role=role,
            )


# Why every row of a log was dropped, per reason: the role at fault and what would work.
NOTHING_KEPT_HINTS = {
    "bad_time": ("time", "the column holds no times (epoch s or ms, or ISO 8601)"),
    "unknown_event": ("event", "name an event column of view/cart/purchase-like names, or none"),
    "bad_weight": ("weight", "the weight column must hold numbers >= 0"),
    "below_min_weight": ("min_weight", "lower the minimum weight"),
    "missing_user": ("user", "name the column of user ids"),
    "missing_item": ("item", "name the column of item ids"),
    "no_item": (None, "no event in the log names a product (page views, searches)"),
    "malformed": (None, "every line has another field count than the header: wrong delimiter?"),
}


# Reasons that say the column flags or the file are wrong when they drop most rows (a
# minimum weight, duplicates or JSONL events without a product may drop many by design).
BROKEN = ("bad_time", "bad_weight", "unknown_event", "missing_user", "missing_item", "malformed")


def _mostly_broken(report: LoadReport) -> bool:
    return any(report.dropped.get(reason, 0) * 2 > report.rows for reason in BROKEN)


def _nothing_kept(path: Path, mapping: ColumnMap, report: LoadReport) -> LoadError:
    """The error for a log none (or a minority) of whose rows could be kept, naming the
    main reason."""
    reason = max(report.dropped, key=report.dropped.__getitem__)
    role, hint = NOTHING_KEPT_HINTS.get(reason, (None, "check the column flags"))
    column = mapping.roles().get(role or "") if role != "min_weight" else mapping.weight
    about = f" of column {column!r}" if column else ""
    example = report.examples.get(reason)
    seen = f" (e.g. {example})" if example else ""
    if reason == "bad_time" and mapping.time_unit != "auto":
        role, about, seen = "time_unit", f" of column {mapping.time!r}", ""
        hint = f"values like {example} are not {mapping.time_unit!r} times; try auto"
    if reason == "unknown_event":
        seen = f" ({', '.join(list(report.unknown_events)[:5])})"
    return LoadError(
        f"{report.kept:,} rows of {path.name} kept: {report.dropped[reason]:,} of "
        f"{report.rows:,} dropped as "
        f"{reason}{about}{seen}; {hint}",
        role=role,
    )


def _read_table(path: Path, fmt: str, mapping: ColumnMap, report: LoadReport) -> _RawColumns:
    if fmt == "parquet":
        ids = [name for name in (mapping.user, mapping.item, mapping.id) if name]
        data = _read_parquet(path, mapping.wanted(), as_text=ids)
        report.rows = len(data[mapping.user])
    elif fmt in ("csv", "tsv", "retailrocket"):
        table = read_columns(path, mapping.wanted(), delimiter="\t" if fmt == "tsv" else ",")
        data = table.data
        report.rows = table.lines
        report.drop("malformed", table.malformed)
        report.malformed_examples = table.malformed_examples
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return _RawColumns(
        user=data[mapping.user],
        item=data[mapping.item],
        time=data.get(mapping.time) if mapping.time else None,
        event=data.get(mapping.event) if mapping.event else None,
        weight=data.get(mapping.weight) if mapping.weight else None,
        ids=data.get(mapping.id) if mapping.id else None,
    )


def _read_parquet(path: Path, wanted: list[str], as_text: list[str]) -> dict[str, np.ndarray]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as missing:  # pragma: no cover - depends on the environment
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from missing
    table = pq.read_table(path, columns=wanted)
    columns = {}
    for name in wanted:
        column = table.column(name)
        if name in as_text:
            # Ids become text in arrow: an integer id column with nulls would otherwise
            # come out as floats, and 7 as "7.0".
            column = column.cast(pa.string())
        columns[name] = column.to_numpy(zero_copy_only=False)
    return columns


def _read_jsonl(path: Path, identity: Identity, report: LoadReport) -> _RawColumns:
    # Columns straight from the files (in parallel where the log is large), not a dict
    # per event: the reader's rules and counts, see training.jsonl_columns.
    log = read_log_columns(path, users=identity != "visitor")
    report.rows = log.lines
    report.drop("malformed", log.malformed + log.bad_records)
    report.drop("duplicate", log.duplicates)
    report.drop("no_item", log.no_item)
    report.malformed_examples = log.malformed_examples
    if log.malformed:
        # As iter_records, which this replaces here: say so once per load.
        logger.warning("skipped malformed log lines", extra={"count": log.malformed})
    return _RawColumns(
        user=_identities(log.visitor, log.user, identity),
        item=log.item,
        time=log.time,
        event=log.event,
    )


def _identities(
    visitors: np.ndarray, users: list[str | None] | None, identity: Identity
) -> np.ndarray:
    if identity == "visitor":
        return visitors
    if identity not in ("user", "stitched"):
        raise ValueError(f"unknown identity {identity!r}")
    assert users is not None  # read_log_columns(users=True) for these identities
    visitors = as_text(visitors)  # bytes when ASCII; user ids are str
    if identity == "user":
        return np.array(users, dtype=object)
    login: dict[str, str] = {}
    for visitor, user in zip(visitors.tolist(), users, strict=True):
        if user is not None:
            login[visitor] = user
    return np.array([login.get(v, v) for v in visitors.tolist()], dtype=str)


def _assemble(
    raw: _RawColumns, mapping: ColumnMap, report: LoadReport, drop_duplicate_rows: bool
) -> Interactions:
    n = len(raw.user)
    missing_user = missing(raw.user)
    report.drop("missing_user", np.count_nonzero(missing_user))
    keep = ~missing_user
    missing_item = missing(raw.item) & keep
    report.drop("missing_item", np.count_nonzero(missing_item))
    keep &= ~missing_item
    times = (
        np.arange(n, dtype=np.float64)
        if raw.time is None
        else parse_times(raw.time, mapping.time_unit)
    )
    bad_time = ~np.isfinite(times) & keep
    _drop_rows(report, "bad_time", bad_time, raw.time)
    keep &= ~bad_time
    values = np.ones(n, np.float32) if raw.weight is None else to_float(raw.weight)
    bad_weight = ~(np.isfinite(values) & (values >= 0)) & keep
    _drop_rows(report, "bad_weight", bad_weight, raw.weight)
    keep &= ~bad_weight
    if mapping.min_weight is not None:
        below = (values < mapping.min_weight) & keep
        _drop_rows(report, "below_min_weight", below, raw.weight)
        keep &= ~below
    events = _event_codes(raw.event, n, mapping, keep, report)
    keep &= events >= 0
    if raw.ids is not None:
        keep &= _first_occurrences(raw.ids, keep, report)

    user, users = factorize(raw.user[keep])
    item, items = factorize(raw.item[keep])
    times, events, values = times[keep], events[keep], values[keep].astype(np.float32)
    order = time_order(times, (values, events, item, user))
    result = Interactions(user, item, times, events, values, users, items).subset(order)
    report.events_read = result.event_counts()
    if drop_duplicate_rows:
        result = _drop_repeated_rows(result, report)
    return result


def _drop_rows(
    report: LoadReport, reason: str, rows: np.ndarray, column: np.ndarray | None
) -> None:
    """Count ``rows`` (bool mask) dropped for ``reason``, keeping the first one's value."""
    count = np.count_nonzero(rows)
    report.drop(reason, count)
    if count and column is not None:
        value = column[np.argmax(rows)]
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        report.examples[reason] = repr(text)


def _describe(interactions: Interactions, report: LoadReport) -> None:
    report.kept = len(interactions)
    report.events = interactions.event_counts()
    # Labels are factorized after filtering and duplicates have a kept twin: all used.
    report.users = len(interactions.users)
    report.items = len(interactions.items)
    span = interactions.time_range()
    if span is not None:
        first, last = (format_timestamp(datetime.fromtimestamp(t, UTC)) for t in span)
        report.first_time, report.last_time = first, last


def _event_codes(
    column: np.ndarray | None,
    n: int,
    mapping: ColumnMap,
    keep: np.ndarray,
    report: LoadReport,
) -> np.ndarray:
    """Int8 event codes, -1 for names outside the vocabulary (counted where ``keep``)."""
    if column is None:
        return np.full(n, EVENT_CODES[mapping.default_event], dtype=np.int8)
    aliases = EVENT_ALIASES | {k.lower(): v for k, v in mapping.event_aliases.items()}
    names, inverse = few_unique(column)
    texts = [str(name).strip().lower() for name in as_text(names)]
    lookup = np.array([EVENT_CODES.get(aliases.get(t, ""), -1) for t in texts], dtype=np.int8)
    codes = lookup[inverse]
    unknown = (codes < 0) & keep
    report.drop("unknown_event", np.count_nonzero(unknown))
    per_name = np.bincount(inverse[unknown], minlength=len(names))
    for index in np.flatnonzero(per_name):
        report.unknown_events[texts[index]] = int(per_name[index])
    return codes


def _first_occurrences(ids: np.ndarray, keep: np.ndarray, report: LoadReport) -> np.ndarray:
    """Bool, shape (n,): False for kept rows whose id an earlier kept row has."""
    kept_rows = np.flatnonzero(keep)
    _, first = np.unique(ids[kept_rows], return_index=True)
    unique = np.zeros(len(ids), dtype=bool)
    unique[kept_rows[first]] = True
    report.drop("duplicate", len(kept_rows) - len(first))
    return unique | ~keep


def _drop_repeated_rows(interactions: Interactions, report: LoadReport) -> Interactions:
    """Drop rows equal to the previous one; the sort puts equal rows next to each other."""
    it = interactions
    same = (
        (it.time[1:] == it.time[:-1])
        & (it.user[1:] == it.user[:-1])
        & (it.item[1:] == it.item[:-1])
        & (it.event[1:] == it.event[:-1])
        & (it.value[1:] == it.value[:-1])
    )
    if not same.any():
        return it
    report.drop("duplicate", np.count_nonzero(same))
    return it.subset(np.concatenate(([True], ~same)))
