"""Derived state rebuilt from the log at start-up, fast: snapshots are a cache of a fold.

A :class:`DerivedState` names a projection, the schema version of its state, and how to encode and decode
that state.  :func:`rebuild` gives every registered one its state as of the log's end: it loads the
projection's newest snapshot when that snapshot is valid, and folds only the events after it; otherwise it
folds the whole log.  All projections share one pass over the log.

A snapshot is derived data and is never trusted:

* a missing one is simply rebuilt;
* a *corrupt* one (checksum, shape, or a state that does not decode) is ignored;
* one of another schema version (an older lynkr's) is ignored;
* a *stale* one, which claims to have folded records this log does not hold (a log restored from a backup or
  replaced), is ignored: it stores the checksum of the last record it folded, and that record must be there
  with the same checksum.

Deleting every snapshot changes nothing but start-up time.  The stored bytes are (big-endian)::

    b"LKS2" | crc32 of the rest (4) | schema (4) | last_seq (8) | crc32 of the record at last_seq (4) | state

The state is the projection's own encoding, left at the end so that loading it copies nothing more.
"""

from __future__ import annotations

import logging
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from lynkr.agent.splice import SPLICES, decode_splices, encode_splices
from lynkr.cache.lru import PROMPT_CACHE, CacheFold, decode_cache, encode_cache
from lynkr.events.projections import (
    SESSIONS,
    Progress,
    Projection,
    SessionsState,
    decode_sessions,
    encode_sessions,
    replay,
)
from lynkr.events.store import EventStore
from lynkr.reflect.skills import SKILLS, decode_skills, describe_skills, encode_skills
from lynkr.upstream.learned import LEARNED_LIMITS, decode_limits, describe_limits, encode_limits

log = logging.getLogger("lynkr.events")

S = TypeVar("S")

_MAGIC = b"LKS2"
_HEADER = struct.Struct(">4sI")
_META = struct.Struct(">IQI")


class SnapshotStore(Protocol):
    """Where snapshots are kept: bytes by projection name, apart from the log (LMDB: its own database)."""

    def save_snapshot(self, name: str, data: bytes) -> None: ...

    def load_snapshot(self, name: str) -> bytes | None: ...


class SnapshottingStore(EventStore, SnapshotStore, Protocol):
    """An event log that also keeps snapshots of what is derived from it."""


@attrs.frozen(kw_only=True)
class DerivedState(Generic[S]):
    """A projection whose state is rebuilt at start-up and snapshotted.

    Bump ``schema`` whenever the state's shape or the fold's meaning changes: snapshots of another schema
    are then rebuilt from the log instead of being misread.
    """

    name: str
    schema: int
    projection: Projection[S]
    encode: Callable[[S], bytes]
    decode: Callable[[memoryview], S]
    describe: Callable[[S], str]  # what the state holds, in a few words ("12 sessions, 340 turns")


def _describe_sessions(state: SessionsState) -> str:
    turns = sum(session.turn_count for session in state.sessions.values())
    return f"{len(state.sessions):,} sessions, {turns:,} turns"


SESSIONS_STATE: DerivedState[Any] = DerivedState(
    name="sessions",
    schema=3,  # 2: each session's turns zlib-compressed; 3: turn counts, per-model usage, compaction summaries
    projection=SESSIONS,
    encode=encode_sessions,
    decode=decode_sessions,
    describe=_describe_sessions,
)


def _describe_cache(state: CacheFold) -> str:
    return f"{len(state.entries):,} cached answers, {state.hits:,} hits, {state.misses:,} misses"


# The prompt cache's table as the log has it; the daemon turns it into the cache actor's table (lru.restored).
PROMPT_CACHE_STATE: DerivedState[Any] = DerivedState(
    name="prompt_cache",
    schema=1,
    projection=PROMPT_CACHE,
    encode=encode_cache,
    decode=decode_cache,
    describe=_describe_cache,
)

LEARNED_LIMITS_STATE: DerivedState[Any] = DerivedState(
    name="limits",
    schema=1,
    projection=LEARNED_LIMITS,
    encode=encode_limits,
    decode=decode_limits,
    describe=describe_limits,
)

SPLICES_STATE: DerivedState[Any] = DerivedState(
    name="splices",
    schema=1,
    projection=SPLICES,
    encode=encode_splices,
    decode=decode_splices,
    describe=lambda table: f"{len(table):,} spliced rounds",
)

SKILLS_STATE: DerivedState[Any] = DerivedState(
    name="skills",
    schema=1,
    projection=SKILLS,
    encode=encode_skills,
    decode=decode_skills,
    describe=describe_skills,
)

# Every projection the daemon rebuilds at start-up and keeps live.  Register one by adding it here.
DERIVED_STATE: tuple[DerivedState[Any], ...] = (
    SESSIONS_STATE,
    PROMPT_CACHE_STATE,
    LEARNED_LIMITS_STATE,
    SPLICES_STATE,
    SKILLS_STATE,
)


@attrs.frozen(kw_only=True)
class Origin:
    """Where a projection's rebuilt state came from."""

    name: str
    snapshot_seq: int | None  # the snapshot's last folded seq, None when the log was folded from the start
    ignored: str | None  # why a snapshot that was there was not used


@attrs.frozen(kw_only=True)
class Rebuilt:
    states: dict[str, Any]
    last_seq: int  # every state has folded the log up to here
    origins: tuple[Origin, ...]
    events_folded: int  # sequence numbers of the log after the earliest snapshot (all of them, without one)
    seconds: float


def rebuild(
    store: SnapshottingStore,
    derived: Sequence[DerivedState[Any]] = DERIVED_STATE,
    *,
    use_snapshots: bool = True,
    progress: Progress | None = None,
) -> Rebuilt:
    """Every projection in ``derived`` folded up to the log's end, from valid snapshots where there are any."""
    started = time.perf_counter()
    end = store.last_seq()
    resume: dict[str, tuple[Any, int]] = {}
    origins: list[Origin] = []
    for state in derived:
        loaded, ignored = _load(store, state, end) if use_snapshots else (None, None)
        if ignored is not None:
            log.warning("ignoring the %s snapshot and rebuilding it from the log: %s", state.name, ignored)
        if loaded is not None:
            resume[state.name] = loaded
        origins.append(Origin(name=state.name, snapshot_seq=None if loaded is None else loaded[1], ignored=ignored))
    earliest = min((resume[d.name][1] if d.name in resume else 0 for d in derived), default=end)
    states = replay(
        store, {d.name: d.projection for d in derived}, resume=resume, end=end, progress=progress
    )
    return Rebuilt(
        states=states,
        last_seq=end,
        origins=tuple(origins),
        events_folded=end - earliest,
        seconds=time.perf_counter() - started,
    )


def save_snapshots(
    store: SnapshottingStore, derived: Sequence[DerivedState[Any]], states: dict[str, Any], last_seq: int
) -> None:
    """Snapshot each state as having folded the log up to ``last_seq``.  Blocks: call it from a worker thread."""
    record_crc = _record_crc(store, last_seq)
    if record_crc is None:
        log.warning("not snapshotting at seq %d: that record is not in the log", last_seq)
        return
    for state in derived:
        meta = _META.pack(state.schema, last_seq, record_crc)
        encoded = state.encode(states[state.name])
        crc = zlib.crc32(encoded, zlib.crc32(meta))
        store.save_snapshot(state.name, b"".join((_HEADER.pack(_MAGIC, crc), meta, encoded)))


def _load(store: SnapshottingStore, state: DerivedState[Any], end: int) -> tuple[tuple[Any, int] | None, str | None]:
    """``((state, last_seq), None)`` from a valid snapshot, or ``(None, why it was not used)``."""
    data = store.load_snapshot(state.name)
    if data is None:
        return None, None
    if len(data) < _HEADER.size + _META.size:
        return None, "it is corrupt (too short)"
    magic, crc = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return None, "it is corrupt (not a snapshot, or an older snapshot format)"
    body = memoryview(data)[_HEADER.size :]
    if zlib.crc32(body) != crc:
        return None, "it is corrupt (checksum mismatch)"
    schema, last_seq, record_crc = _META.unpack_from(body)
    encoded = body[_META.size :]
    if schema != state.schema:
        return None, f"it has schema {schema}, this lynkr uses schema {state.schema}"
    if last_seq > end or _record_crc(store, last_seq) != record_crc:
        return None, f"it is stale: the log does not hold the record {last_seq} it folded"
    try:
        decoded = state.decode(encoded)
    except Exception as error:  # a snapshot is never trusted: any failure to decode means rebuild
        return None, f"its state does not decode ({type(error).__name__}: {error})"
    return (decoded, last_seq), None


def _record_crc(store: EventStore, seq: int) -> int | None:
    if seq == 0:
        return 0
    for found, data in store.read_raw(seq):
        return zlib.crc32(data) if found == seq else None
    return None
