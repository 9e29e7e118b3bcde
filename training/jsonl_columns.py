"""The service's JSONL event log as columns, files parsed in parallel.

:func:`read_log_columns` gives what ``iter_records`` (:mod:`recsvc.eventlog.reader`)
followed by the loader's per-record checks gave, without a dict per event reaching the
caller: :func:`read_file` parses one file into compact columns, in a pool of processes
when the log has several files and enough bytes, and the files' results are merged in
file order. Duplicate ids are dropped across files as the reader drops them (the first
occurrence in file order wins, whatever became of it), and every line is counted:
``lines == kept + malformed + duplicates + bad_records + no_item``.
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from recsvc.eventlog.reader import log_files
from training.columns import parse_times

# A pool costs its start (a fork per worker) and the pickling of every column back to
# this process: below this many bytes of log one process reads faster.
PARALLEL_MIN_BYTES = 32 * 1024 * 1024

# As ``ReadStats``: the first few malformed lines, as ``file:line``.
MAX_EXAMPLES = 5

# Workers forked from this process hash as this process does (the hash secret is
# inherited); the merge checks this value before it relies on that.
_HASH_PROBE = "recsvc training.jsonl_columns"


@dataclass
class LineCounts:
    """What a read kept and dropped, line by line: of one file, or of a whole log.

    Attributes
    ----------
    lines, malformed, duplicates : int
        Non-blank lines, lines that do not parse or have no ``id``, and lines repeating
        an id seen before (in this file, or with a ``seen`` shared by
        :func:`read_file`, in earlier files), as :class:`ReadStats` counts them.
    bad_records, no_item : int
        Records whose ``type``, ``visitor_id`` or ``timestamp`` is missing or not text,
        and records without ``item_id``: the loader's drops.
    malformed_examples : list of str
        Up to :data:`MAX_EXAMPLES` ``file:line`` of malformed lines.
    """

    lines: int = 0
    malformed: int = 0
    duplicates: int = 0
    bad_records: int = 0
    no_item: int = 0
    malformed_examples: list[str] = field(default_factory=list)

    def add(self, other: LineCounts) -> None:
        """Count ``other``'s lines in too (examples up to :data:`MAX_EXAMPLES`)."""
        self.lines += other.lines
        self.malformed += other.malformed
        self.duplicates += other.duplicates
        self.bad_records += other.bad_records
        self.no_item += other.no_item
        room = MAX_EXAMPLES - len(self.malformed_examples)
        self.malformed_examples.extend(other.malformed_examples[:room])


@dataclass
class FileColumns(LineCounts):
    """One log file's records as columns, before the files are merged, with its
    :class:`LineCounts`.

    Attributes
    ----------
    ids : tuple of three lists
        The ``id`` (any JSON value, as the reader) of each record kept (in file order,
        aligned with the columns), bad, and without item; empty once packed.
    hashes : tuple of three ndarray of int64, or None
        ``hash()`` of ``ids`` in a worker, for the merge to compare files cheaply.
    packed_ids : bytes or None
        ``ids`` pickled in a worker: unpickled only where two files' hashes meet.
    hash_probe : int
        ``hash(_HASH_PROBE)`` where ``hashes`` were taken.
    visitor, item, event : ndarray, shape (kept,)
        Text, as ``S`` when every value is ASCII (the common case, and a quarter of the
        bytes to send between processes), else ``U``; ``item`` is ``str(item_id)``.
    time : ndarray, shape (kept,), float64
        The ``timestamp`` as epoch seconds (ISO 8601, UTC without an offset), NaN where
        it does not parse: parsed here, in the worker, rather than after the merge.
    user : list of (str or None), or None
        The ``user_id`` where it is text; ``None`` when not asked for.
    """

    ids: tuple[list[Any], list[Any], list[Any]] = field(default_factory=lambda: ([], [], []))
    hashes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    packed_ids: bytes | None = None
    hash_probe: int = 0
    visitor: np.ndarray = field(default_factory=lambda: np.zeros(0, "S1"))
    item: np.ndarray = field(default_factory=lambda: np.zeros(0, "S1"))
    time: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    event: np.ndarray = field(default_factory=lambda: np.zeros(0, "S1"))
    user: list[str | None] | None = None


@dataclass(kw_only=True)
class LogColumns(LineCounts):
    """A whole log merged: the kept records' columns and every count.

    ``visitor``, ``item`` and ``event`` are ``S`` when every value of the column is
    ASCII, else ``U`` (the loader factorizes short byte ids fastest, and decodes only
    the distinct ones); ``time`` is float64 epoch seconds, NaN where it did not parse.
    ``lines == len(visitor) + malformed + duplicates + bad_records + no_item``.
    """

    visitor: np.ndarray
    item: np.ndarray
    time: np.ndarray
    event: np.ndarray
    user: list[str | None] | None


def read_log_columns(
    path: Path | str, *, users: bool = False, processes: int | None = None
) -> LogColumns:
    """Read a log folder (or one file) into columns, files in parallel where it pays.

    Parameters
    ----------
    path : Path or str
        A log folder (date-partitioned ``part-*.jsonl[.gz]`` files) or one file.
    users : bool
        Also return the ``user_id`` column (a list; ``None`` where it is not text).
    processes : int, optional
        Worker processes, at most one per file; 1 reads in this process. ``None``: one
        per usable core, and 1 for a single file, a log under
        :data:`PARALLEL_MIN_BYTES`, or when this process runs other threads.

    Returns
    -------
    LogColumns
    """
    files = log_files(Path(path))
    if processes is None:
        processes = _default_processes(files)
    workers = min(processes, len(files))
    if workers <= 1:
        # One id set across the files, as the reader: nothing to compare afterwards.
        seen: set[Any] = set()
        return merge([read_file(file, users, seen) for file in files], users)
    # fork: the workers start at once with this module already imported, they hash as
    # this process does, and no script calling this needs an ``if __name__ ==
    # "__main__"`` guard (spawn and forkserver re-import the main module). A fork copies
    # no other thread, so the default stays in this process when one runs.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            parts = list(pool.map(_read_packed, files, [users] * len(files)))
        except BaseException:
            # A file that fails fails the load: do not parse the rest first.
            pool.shutdown(cancel_futures=True)
            raise
    return merge(parts, users)


def _default_processes(files: list[Path]) -> int:
    if len(files) < 2 or threading.active_count() > 1:
        return 1
    try:
        size = sum(file.stat().st_size for file in files)
    except OSError:
        size = 0
    if size < PARALLEL_MIN_BYTES:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return min(cores, len(files))


def _open(path: Path) -> IO[bytes]:
    # As the reader: bytes straight to orjson, which validates the UTF-8 itself.
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def read_file(file: Path, users: bool = False, seen: set[Any] | None = None) -> FileColumns:
    """One log file's records as columns (see :class:`FileColumns`).

    The line rules are the reader's (``recsvc.eventlog.reader._file_records``): blank
    lines are skipped, a line that does not parse or has no ``id`` is malformed, a
    repeated id is a duplicate; then the loader's: ``type``, ``visitor_id`` and
    ``timestamp`` must be text, and an event without ``item_id`` concerns no product.

    Parameters
    ----------
    file : Path
    users : bool
        Also collect the ``user_id`` column.
    seen : set, optional
        Ids of earlier files, updated here: a repeat of one is a duplicate. ``None``: a
        set of this file's own (a worker's case; :func:`merge` compares the files).

    Returns
    -------
    FileColumns
    """
    part = FileColumns()
    seen = set() if seen is None else seen
    ids: list[Any] = []
    bad_ids: list[Any] = []
    no_item_ids: list[Any] = []
    visitors: list[str] = []
    items: list[str] = []
    times: list[str] = []
    kinds: list[str] = []
    user_ids: list[str | None] = []
    # Bound methods and locals, not look-ups: this loop runs per line, millions of times.
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    add_seen, add_id = seen.add, ids.append
    add_visitor, add_item, add_time, add_kind = (
        visitors.append,
        items.append,
        times.append,
        kinds.append,
    )
    malformed = duplicates = blank = number = 0
    with _open(file) as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = loads(line)
                event_id = record["id"]
            except (decode_error, KeyError, TypeError):
                # Blank lines are skipped, not counted: tested only here, as no blank
                # line parses (testing each line up front costs more).
                if len(line) < 3 and not line.strip():
                    blank += 1
                    continue
                malformed += 1
                if len(part.malformed_examples) < MAX_EXAMPLES:
                    part.malformed_examples.append(f"{file}:{number}")
                continue
            if event_id in seen:
                duplicates += 1
                continue
            add_seen(event_id)
            # ``record`` is a dict here: only a dict takes a str key without TypeError.
            # Subscripts, not ``get`` calls: cheaper, and the three are nearly always there.
            try:
                kind, visitor, stamp = record["type"], record["visitor_id"], record["timestamp"]
            except KeyError:
                bad_ids.append(event_id)
                continue
            if type(kind) is not str or type(visitor) is not str or type(stamp) is not str:
                bad_ids.append(event_id)
                continue
            item = record.get("item_id")
            if item is None:
                no_item_ids.append(event_id)
                continue
            add_id(event_id)
            add_visitor(visitor)
            add_item(item if type(item) is str else str(item))
            add_time(stamp)
            add_kind(kind)
            if users:
                user = record.get("user_id")
                user_ids.append(user if type(user) is str else None)
    part.lines, part.malformed, part.duplicates = number - blank, malformed, duplicates
    part.bad_records, part.no_item = len(bad_ids), len(no_item_ids)
    part.ids = (ids, bad_ids, no_item_ids)
    part.visitor, part.item = _text(visitors), _text(items)
    part.time, part.event = parse_times(np.array(times, dtype=str), "iso"), _text(kinds)
    part.user = user_ids if users else None
    return part


def _read_packed(file: Path, users: bool) -> FileColumns:
    """:func:`read_file` in a worker, ids packed: hashes to compare, the ids as one blob
    (millions of small strings cost more to send and rebuild than their hashes)."""
    part = read_file(file, users)
    kept, bad, no_item = (np.fromiter(map(hash, ids), np.int64, len(ids)) for ids in part.ids)
    part.hashes = (kept, bad, no_item)
    part.packed_ids = pickle.dumps(part.ids, protocol=pickle.HIGHEST_PROTOCOL)
    part.hash_probe = hash(_HASH_PROBE)
    part.ids = ([], [], [])
    return part


def _text(values: list[str]) -> np.ndarray:
    """Bytes where every value is ASCII, else str: the same text either way."""
    try:
        return np.array(values, dtype="S")
    except UnicodeEncodeError:
        return np.array(values, dtype=str)


def merge(parts: list[FileColumns], users: bool = False) -> LogColumns:
    """The files' columns and counts in file order.

    Parts read with a shared ``seen`` (:func:`read_file`) come without repeats of
    earlier files; packed parts (a worker's) are compared here, and a record whose id
    an earlier file had is dropped as a duplicate, whatever became of that record.

    Parameters
    ----------
    parts : list of FileColumns
        One per file, in the reader's file order.
    users : bool
        Whether the parts carry the ``user`` column.

    Returns
    -------
    LogColumns
    """
    packed = [part.packed_ids is not None for part in parts]
    if any(packed):
        assert all(packed), "parts of one log are all packed or none"
        _drop_repeats_across_files(parts)
    out = LogColumns(
        visitor=_concat([p.visitor for p in parts]),
        item=_concat([p.item for p in parts]),
        time=np.concatenate([p.time for p in parts]) if parts else np.zeros(0),
        event=_concat([p.event for p in parts]),
        user=None,
    )
    for part in parts:
        out.add(part)
    if users:
        out.user = [user for part in parts for user in part.user or ()]
    return out


def _drop_repeats_across_files(parts: list[FileColumns]) -> None:
    """Drop, from packed parts (all of a log's), the records whose id an earlier part had.

    Equal ids have equal hashes, so only ids whose hash is in two places can repeat:
    those are found by sorting the hashes, and compared for real, in file order, as
    the reader's ``seen`` set would. Without a shared hash (parts not forked from this
    process) every id is compared.
    """
    probe = hash(_HASH_PROBE)
    shared = all(p.hashes is not None and p.hash_probe == probe for p in parts)
    if shared:
        every = np.concatenate([h for p in parts for h in p.hashes or ()])
        every.sort()
        suspects = np.unique(every[1:][every[1:] == every[:-1]])
        if len(suspects) == 0:
            return  # the common case: no id in two files
    seen: set[Any] = set()
    for part in parts:
        if part.packed_ids is None:
            continue
        ids: tuple[list[Any], ...] = pickle.loads(part.packed_ids)
        if shared:
            assert part.hashes is not None
            # Positions (per list: kept, bad, no item) of the ids that may repeat.
            where = [np.flatnonzero(np.isin(h, suspects)) for h in part.hashes]
        else:
            where = [np.arange(len(i)) for i in ids]
        candidates = [[i[k] for k in w.tolist()] for i, w in zip(ids, where, strict=True)]
        repeated = [
            w[np.fromiter((c in seen for c in cs), bool, len(cs))]
            for w, cs in zip(where, candidates, strict=True)
        ]
        # Ids are distinct within a file: adding them after the test is the same as
        # adding them one by one.
        for cs in candidates:
            seen.update(cs)
        kept_repeats, bad_repeats, no_item_repeats = (len(r) for r in repeated)
        part.duplicates += kept_repeats + bad_repeats + no_item_repeats
        part.bad_records -= bad_repeats
        part.no_item -= no_item_repeats
        if kept_repeats:
            keep = np.ones(len(part.visitor), dtype=bool)
            keep[repeated[0]] = False
            part.visitor, part.item = part.visitor[keep], part.item[keep]
            part.time, part.event = part.time[keep], part.event[keep]
            if part.user is not None:
                part.user = [u for u, k in zip(part.user, keep.tolist(), strict=True) if k]


_EMPTY = np.zeros(0, dtype=str)


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    """The parts' text in one array: ``S`` when every part is ``S``, else ``U``."""
    if not arrays:
        return _EMPTY
    if all(a.dtype.kind == "S" for a in arrays):
        return np.concatenate(arrays)
    return np.concatenate([_widen(a) if a.dtype.kind == "S" else a for a in arrays])


def _widen(ascii_bytes: np.ndarray) -> np.ndarray:
    """ASCII ``S`` to the same text as ``U``: each byte is its code point, so widen the
    bytes to 4-byte code units (numpy's own S to U cast decodes value by value, several
    times slower). Only for arrays :func:`_text` made ``S``, which hold ASCII only."""
    width = ascii_bytes.dtype.itemsize
    codes = np.ascontiguousarray(ascii_bytes).view(np.uint8).astype(np.uint32)
    return codes.view(np.dtype(("U", width))).reshape(ascii_bytes.shape)
