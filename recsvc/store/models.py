"""Model versions in Redis: publish, make current, roll back, read.

Publishing writes a version under its own keys with pipelined, chunked writes, verifies
what landed, records it as published, and only then (optionally) makes it current with one
atomic pointer change. A publish killed halfway leaves the current version untouched; its
partial keys are overwritten by the next publish of the same version, or removed by
``delete_version``.

User vectors are grouped in buckets of about ``USERS_PER_BUCKET`` users (by CRC32 of the
user id): one small HASH maps each user id to a row, one string holds the bucket's vectors
back to back. Small hashes use Redis' compact listpack encoding, so a user costs little
more than their 4 × factors bytes (the target: at most 0.4 GiB for a million users of 64
factors). One Lua call reads a user's vector in one round trip.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from tqdm import tqdm

from recsvc.keys import KeySpace
from recsvc.scoring.artifact import ModelArtifact

CHUNK_ROWS = 8192  # item rows per string: 2 MiB at 64 factors, cheap to move in one reply
SESSION_CHUNK_BYTES = 4 << 20  # session-model arrays are cut in strings of this size
USERS_PER_BUCKET = 64  # well under the 128 entries where a hash stops being a listpack
PIPELINE_COMMANDS = 512
HISTORY_LENGTH = 50

# KEYS: rows hash, vectors string; ARGV: user id, bytes per vector.
_USER_VECTOR = """
local row = redis.call('HGET', KEYS[1], ARGV[1])
if not row then return false end
local width = tonumber(ARGV[2])
return redis.call('GETRANGE', KEYS[2], row * width, row * width + width - 1)
"""

# KEYS: history, current. Pops the current version; the next one becomes current.
_ROLLBACK = """
local current = redis.call('LPOP', KEYS[1])
local previous = redis.call('LINDEX', KEYS[1], 0)
if not previous then
  if current then redis.call('LPUSH', KEYS[1], current) end
  return false
end
redis.call('SET', KEYS[2], previous)
return previous
"""


class PublishError(Exception):
    """What was written does not match the artifact; the version was not published."""


def user_bucket(user_id: str, buckets: int) -> int:
    return zlib.crc32(user_id.encode()) % buckets


def bucket_count(n_users: int) -> int:
    return max(1, -(-n_users // USERS_PER_BUCKET))


@dataclass
class ItemSide:
    """What a serving worker holds in memory for one version."""

    version: str
    manifest: dict[str, Any]
    item_ids: list[str]
    item_factors: np.ndarray  # (n_items, factors) float32
    similar_items: np.ndarray  # (n_items, s) int32, -1 padded
    similar_scores: np.ndarray  # (n_items, s) float32
    lists: dict[str, list[str]]
    # The session model's named arrays (recsvc.scoring.artifact.session_arrays); empty without one.
    session: dict[str, np.ndarray] = field(default_factory=dict)


class ModelStore:
    def __init__(self, client: redis.Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        # Public: serving queues it in the same pipeline as the visitor's profile read.
        self.user_vector_script = client.register_script(_USER_VECTOR)
        self._rollback = client.register_script(_ROLLBACK)

    # --- publishing -----------------------------------------------------------------------
    def publish(
        self, artifact: ModelArtifact, make_current: bool = True, progress: bool = False
    ) -> None:
        """Write ``artifact`` under its version's keys, verify, record it as published and,
        with ``make_current``, switch the pointer to it."""
        version = artifact.version
        buckets = bucket_count(len(artifact.user_ids))
        steps = (
            self._item_writes(artifact),
            self._session_writes(artifact),
            self._user_writes(artifact, buckets),
        )
        session_layout = _session_layout(artifact.session)
        total = 2 + _chunks(len(artifact.item_ids)) * 2 + len(session_layout) + buckets
        with tqdm(total=total, desc=f"publish {version}", unit="part", disable=not progress) as bar:
            for writes in steps:
                self._run_pipelined(writes, bar)
        self._verify(artifact, buckets)
        manifest = {
            **artifact.manifest,
            "version": version,
            "arrays": artifact.array_shapes(),
            "session_arrays": session_layout,
            "user_buckets": buckets,
        }
        self.client.hset(self.keys.model_published(), version, json.dumps(manifest, default=str))
        if make_current:
            self.make_current(version)

    def _item_writes(self, artifact: ModelArtifact) -> Iterator[tuple[str, tuple, bool]]:
        version = artifact.version
        # Each write is (command, arguments, whether it completes one unit of the progress bar).
        yield (
            "set",
            (self.keys.model_item_ids(version), json.dumps(artifact.item_ids.tolist())),
            True,
        )
        lists = {
            name: json.dumps(artifact.item_ids[getattr(artifact, name)].tolist())
            for name in ("popular", "trending")
        }
        yield "hset", (self.keys.model_lists(version), lists), True
        for chunk, rows in enumerate(_row_slices(len(artifact.item_ids))):
            factors = artifact.item_factors[rows].tobytes()
            yield "set", (self.keys.model_item_factors(version, chunk), factors), True
            similar = (
                artifact.similar_items[rows].tobytes() + artifact.similar_scores[rows].tobytes()
            )
            yield "set", (self.keys.model_similar(version, chunk), similar), True

    def _session_writes(self, artifact: ModelArtifact) -> Iterator[tuple[str, tuple, bool]]:
        for name, array in artifact.session.items():
            raw = np.ascontiguousarray(array).tobytes()
            for chunk, start in enumerate(range(0, max(len(raw), 1), SESSION_CHUNK_BYTES)):
                key = self.keys.model_session(artifact.version, name, chunk)
                yield "set", (key, raw[start : start + SESSION_CHUNK_BYTES]), False
            yield "noop", (), True

    def _user_writes(
        self, artifact: ModelArtifact, buckets: int
    ) -> Iterator[tuple[str, tuple, bool]]:
        version = artifact.version
        ids = artifact.user_ids.tolist()
        of_user = np.fromiter((user_bucket(u, buckets) for u in ids), np.int64, len(ids))
        order = np.argsort(of_user, kind="stable")
        bounds = np.searchsorted(of_user[order], np.arange(buckets + 1))
        for bucket in range(buckets):
            members = order[bounds[bucket] : bounds[bucket + 1]]
            if not len(members):
                yield "noop", (), True
                continue
            rows = {ids[m]: position for position, m in enumerate(members.tolist())}
            vectors = artifact.user_factors[members].tobytes()
            yield "set", (self.keys.model_user_vectors(version, bucket), vectors), False
            yield "hset", (self.keys.model_user_rows(version, bucket), rows), True

    def _run_pipelined(self, writes: Iterator[tuple[str, tuple, bool]], bar: tqdm) -> None:
        pipe = self.client.pipeline(transaction=False)
        queued = 0
        for command, args, advance in writes:
            if command == "hset":
                key, mapping = args
                pipe.delete(key)  # a rerun must not keep fields of an earlier partial run
                pipe.hset(key, mapping=mapping)
            elif command == "set":
                pipe.set(*args)
            bar.update(int(advance))
            queued += command != "noop"
            if queued >= PIPELINE_COMMANDS:
                pipe.execute()
                pipe = self.client.pipeline(transaction=False)
                queued = 0
        pipe.execute()

    def _verify(self, artifact: ModelArtifact, buckets: int) -> None:
        version = artifact.version
        pipe = self.client.pipeline(transaction=False)
        for bucket in range(buckets):
            pipe.hlen(self.keys.model_user_rows(version, bucket))
        users = sum(pipe.execute())
        for chunk in range(_chunks(len(artifact.item_ids))):
            pipe.strlen(self.keys.model_item_factors(version, chunk))
        item_bytes = sum(pipe.execute())
        if users != len(artifact.user_ids) or item_bytes != artifact.item_factors.nbytes:
            raise PublishError(
                f"{version}: wrote {users} users and {item_bytes} item bytes, expected "
                f"{len(artifact.user_ids)} and {artifact.item_factors.nbytes}"
            )
        for name, layout in _session_layout(artifact.session).items():
            for chunk in range(layout["chunks"]):
                pipe.strlen(self.keys.model_session(version, name, chunk))
            written = sum(pipe.execute())
            if written != layout["bytes"]:
                raise PublishError(
                    f"{version}: session array {name} has {written} bytes, not {layout['bytes']}"
                )

    # --- pointers ---------------------------------------------------------------------------
    def current_version(self) -> str | None:
        value = self.client.get(self.keys.model_current())
        return value.decode() if value else None

    def make_current(self, version: str) -> None:
        """Point readers at ``version`` (one atomic change) and remember it for rollback."""
        if not self.client.hexists(self.keys.model_published(), version):
            raise KeyError(f"version {version!r} is not published")
        if self.current_version() == version:
            return  # already current: a second history entry would make rollback a no-op
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.model_current(), version)
        pipe.lpush(self.keys.model_history(), version)
        pipe.ltrim(self.keys.model_history(), 0, HISTORY_LENGTH - 1)
        pipe.execute()

    def rollback(self) -> str | None:
        """Make the previously current version current again; None when there is none."""
        previous = self._rollback(keys=[self.keys.model_history(), self.keys.model_current()])
        return previous.decode() if previous else None

    def published(self) -> dict[str, dict[str, Any]]:
        """Manifests of every published version."""
        raw = self.client.hgetall(self.keys.model_published())
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def delete_version(self, version: str) -> int:
        """Remove a version's keys (never the current one); returns the keys deleted."""
        if version == self.current_version():
            raise ValueError(f"{version!r} is current: make another version current first")
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.model_published(), version)
        pipe.lrem(self.keys.model_history(), 0, version)
        pipe.execute()
        deleted = 0
        for pattern in self.keys.model_version_patterns(version):
            batch = list(self.client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(batch), 500):
                deleted += self.client.delete(*batch[start : start + 500])
        return deleted

    def prune(self, keep: int) -> list[str]:
        """Delete published versions beyond the ``keep`` most recently made current (the
        current one always stays); returns the versions deleted."""
        history = [v.decode() for v in self.client.lrange(self.keys.model_history(), 0, -1)]
        kept = list(dict.fromkeys(history))[:keep]
        current = self.current_version()
        doomed = [v for v in self.published() if v not in kept and v != current]
        for version in doomed:
            self.delete_version(version)
        return doomed

    # --- reading ----------------------------------------------------------------------------
    def load_item_side(self, version: str) -> ItemSide:
        """Everything a worker keeps in memory for ``version``."""
        manifest = self.published()[version]
        item_ids = json.loads(self.client.get(self.keys.model_item_ids(version)))
        factors = int(manifest["arrays"]["item_factors"][1])
        width = int(manifest["arrays"]["similar_items"][1])
        pipe = self.client.pipeline(transaction=False)
        for chunk in range(_chunks(len(item_ids))):
            pipe.get(self.keys.model_item_factors(version, chunk))
            pipe.get(self.keys.model_similar(version, chunk))
        raw = pipe.execute()
        item_factors = np.frombuffer(b"".join(raw[0::2]), np.float32).reshape(-1, factors)
        similar = [_split_similar(blob, width) for blob in raw[1::2]]
        lists = {
            k.decode(): json.loads(v)
            for k, v in self.client.hgetall(self.keys.model_lists(version)).items()
        }
        return ItemSide(
            session=self._load_session(version, manifest.get("session_arrays") or {}),
            version=version,
            manifest=manifest,
            item_ids=item_ids,
            item_factors=item_factors,
            similar_items=np.concatenate([s[0] for s in similar]),
            similar_scores=np.concatenate([s[1] for s in similar]),
            lists=lists,
        )

    def _load_session(self, version: str, layout: dict[str, dict]) -> dict[str, np.ndarray]:
        pipe = self.client.pipeline(transaction=False)
        for name, entry in layout.items():
            for chunk in range(entry["chunks"]):
                pipe.get(self.keys.model_session(version, name, chunk))
        replies = iter(pipe.execute())
        arrays = {}
        for name, entry in layout.items():
            raw = b"".join(next(replies) or b"" for _ in range(entry["chunks"]))
            if len(raw) != entry["bytes"]:
                raise PublishError(f"{version}: session array {name} is incomplete in Redis")
            arrays[name] = np.frombuffer(raw, entry["dtype"]).reshape(entry["shape"])
        return arrays

    def queue_user_vector(
        self, pipe: redis.client.Pipeline, version: str, buckets: int, factors: int, user_id: str
    ) -> None:
        """Queue the user's vector read on ``pipe`` as a bare EVALSHA. (A registered Script
        on a pipeline makes redis-py send SCRIPT EXISTS before every execute: one more round
        trip on each request.) A reply of ``NoScriptError`` means the script must be loaded
        (``load_user_vector_script``) and the pipeline run again."""
        bucket = user_bucket(user_id, buckets)
        pipe.evalsha(
            self.user_vector_script.sha,
            2,
            self.keys.model_user_rows(version, bucket),
            self.keys.model_user_vectors(version, bucket),
            user_id,
            factors * 4,
        )

    def load_user_vector_script(self) -> None:
        self.client.script_load(_USER_VECTOR)

    def user_vector(
        self, version: str, buckets: int, factors: int, user_id: str
    ) -> np.ndarray | None:
        """The user's float32 vector in ``version``, or None for a user it does not know."""
        bucket = user_bucket(user_id, buckets)
        raw = self.user_vector_script(
            keys=[
                self.keys.model_user_rows(version, bucket),
                self.keys.model_user_vectors(version, bucket),
            ],
            args=[user_id, factors * 4],
        )
        return np.frombuffer(raw, np.float32) if raw else None


def _chunks(rows: int) -> int:
    return max(1, -(-rows // CHUNK_ROWS))


def _row_slices(rows: int) -> Iterator[slice]:
    for start in range(0, max(rows, 1), CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, rows))


def _session_layout(session: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per session-model array: dtype, shape, bytes and the chunks they are cut into."""
    return {
        name: {
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "bytes": int(array.nbytes),
            "chunks": max(1, -(-int(array.nbytes) // SESSION_CHUNK_BYTES)),
        }
        for name, array in session.items()
    }


def _split_similar(blob: bytes, width: int) -> tuple[np.ndarray, np.ndarray]:
    half = len(blob) // 2
    items = np.frombuffer(blob[:half], np.int32).reshape(-1, width)
    scores = np.frombuffer(blob[half:], np.float32).reshape(-1, width)
    return items, scores
