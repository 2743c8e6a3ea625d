"""The prompt cache's table, learned limits and the splice table as derived state: each rebuilt from its snapshot
and the log's tail exactly as a full replay has it, each folded only from its own stream, and each snapshot
ignored and rebuilt when it is corrupt, of an older schema, stale, or does not decode."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import attrs
import lmdb
import pytest

from lynkr.agent.events import AGENT_STREAM, RoundsKept
from lynkr.agent.splice import Splice
from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.events.catalog import BetasUnsupported, LimitLearned
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.projections import replay
from lynkr.events.records import Event
from lynkr.events.snapshots import (
    DERIVED_STATE,
    LEARNED_LIMITS_STATE,
    PROMPT_CACHE_STATE,
    SPLICES_STATE,
    DerivedState,
    rebuild,
    save_snapshots,
)
from lynkr.upstream.learned import LIMITS_STREAM
from tests.test_snapshots import conversation

KiB = 1024
NEW_STATES = [PROMPT_CACHE_STATE, LEARNED_LIMITS_STATE, SPLICES_STATE]
by_name = pytest.mark.parametrize("derived", NEW_STATES, ids=[d.name for d in NEW_STATES])


def stored(key: str, size: int = 100) -> CacheStored:
    message = {"type": "message", "content": [{"type": "text", "text": key}], "stop_reason": "end_turn"}
    return CacheStored(key=key, request_id=f"req_{key}", provider="p", model="m", message=message, size=size,
                       expires_at_ms=2_000_000_000_000)


def kept(key: str) -> RoundsKept:
    return RoundsKept(
        session_id="s", request_id=f"req_{key}", key=key,
        messages=[{"role": "assistant", "content": [{"type": "text", "text": key}]}],
        results=[{"type": "tool_result", "tool_use_id": f"toolu_{key}", "content": "ok"}],
    )


def derived_events(part: int) -> list[tuple[str, Event]]:
    """Events for each new state, with decoys of the same topics on other streams (which must change nothing)."""
    n = str(part)
    return [
        (CACHE_STREAM, stored(f"a{n}")),
        (CACHE_STREAM, stored(f"b{n}", size=300)),
        (CACHE_STREAM, CacheHit(key=f"a{n}", request_id="r", session_id="s")),
        (CACHE_STREAM, CacheMiss(key="x", request_id="r", session_id="s")),
        (CACHE_STREAM, CacheEvicted(key="b0", reason="entries")),
        ("session-1", stored(f"decoy{n}")),
        (LIMITS_STREAM, LimitLearned(provider="azure", model=f"m{n}", kind="output", value=1000 + part)),
        (LIMITS_STREAM, BetasUnsupported(provider="foundry", flags=[f"flag-{n}"])),
        ("session-1", LimitLearned(provider="decoy", model="m", kind="context", value=1)),
        (AGENT_STREAM, kept(f"k{n}")),
        ("session-1", kept(f"decoy{n}")),
    ]


def full(store: LmdbEventStore) -> dict[str, Any]:
    return replay(store, {d.name: d.projection for d in DERIVED_STATE})


@pytest.fixture
def log_with_snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "log"
    with LmdbEventStore.open(path, map_size=1024 * KiB) as store:
        store.append([*conversation(2, 2), *derived_events(0)])
        rebuilt = rebuild(store)
        save_snapshots(store, DERIVED_STATE, rebuilt.states, rebuilt.last_seq)
        store.append([*derived_events(1), *conversation(2, 1, start=2)])
    return path


def put_snapshot(path: Path, name: str, data: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=5)
    try:
        with env.begin(write=True) as txn:
            txn.put(name.encode(), data, db=env.open_db(b"snapshots", txn=txn))
    finally:
        env.close()


def origin_of(store: LmdbEventStore, name: str) -> tuple[int | None, str | None, dict[str, Any]]:
    rebuilt = rebuild(store)
    (origin,) = [origin for origin in rebuilt.origins if origin.name == name]
    return origin.snapshot_seq, origin.ignored, rebuilt.states


def test_each_state_folds_only_its_own_stream(log_with_snapshot: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        states = rebuild(store, use_snapshots=False).states
    cache = states["prompt_cache"]
    assert sorted(cache.entries) == ["a0", "a1", "b1"]  # b0 evicted, the decoys on session-1 never stored
    assert (cache.hits, cache.misses, cache.bytes) == (2, 2, 500)
    limits = states["limits"]
    assert limits.output == {("azure", "m0"): 1000, ("azure", "m1"): 1001} and limits.context == {}
    assert limits.betas_to_drop("foundry") == {"flag-0", "flag-1"}
    splices = states["splices"]
    assert sorted(splices) == ["k0", "k1"]
    assert splices["k1"] == Splice(messages=tuple(kept("k1").messages), results=tuple(kept("k1").results))


@by_name
def test_start_up_folds_only_the_tail_after_a_valid_snapshot(derived: DerivedState[Any], log_with_snapshot: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        snapshot_seq, ignored, states = origin_of(store, derived.name)
        assert ignored is None and snapshot_seq == len(conversation(2, 2)) + len(derived_events(0))
        assert states[derived.name] == full(store)[derived.name]
        assert derived.decode(memoryview(derived.encode(states[derived.name]))) == states[derived.name]


def _assert_rebuilt(path: Path, name: str, why: str) -> None:
    with LmdbEventStore.open(path) as store:
        snapshot_seq, ignored, states = origin_of(store, name)
        assert snapshot_seq is None and ignored is not None and why in ignored
        assert states == full(store)


def _snapshot(path: Path, name: str) -> bytes:
    with LmdbEventStore.open(path) as store:
        data = store.load_snapshot(name)
    assert data is not None
    return data


@by_name
def test_a_corrupt_snapshot_is_ignored_and_rebuilt(derived: DerivedState[Any], log_with_snapshot: Path) -> None:
    damaged = bytearray(_snapshot(log_with_snapshot, derived.name))
    damaged[-3] ^= 0xFF
    put_snapshot(log_with_snapshot, derived.name, bytes(damaged))
    _assert_rebuilt(log_with_snapshot, derived.name, "corrupt")


def _resealed(data: bytes, *, schema: int | None = None, state: bytes | None = None) -> bytes:
    """The snapshot with another schema number or state, and a checksum that matches again."""
    old_schema, last_seq, record_crc = struct.unpack_from(">IQI", data, 8)
    body = struct.pack(">IQI", old_schema if schema is None else schema, last_seq, record_crc)
    body += data[8 + 16 :] if state is None else state
    return struct.pack(">4sI", b"LKS2", zlib.crc32(body)) + body


@by_name
def test_a_snapshot_from_an_older_schema_is_ignored(derived: DerivedState[Any], log_with_snapshot: Path) -> None:
    older = _resealed(_snapshot(log_with_snapshot, derived.name), schema=derived.schema - 1)
    put_snapshot(log_with_snapshot, derived.name, older)
    _assert_rebuilt(log_with_snapshot, derived.name, f"schema {derived.schema - 1},")


@by_name
def test_a_snapshot_whose_state_does_not_decode_is_ignored(derived: DerivedState[Any], log_with_snapshot: Path) -> None:
    put_snapshot(log_with_snapshot, derived.name, _resealed(_snapshot(log_with_snapshot, derived.name), state=b"\xc1"))
    _assert_rebuilt(log_with_snapshot, derived.name, "does not decode")


@by_name
def test_a_snapshot_of_another_log_is_stale_and_ignored(
    derived: DerivedState[Any], log_with_snapshot: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    with LmdbEventStore.open(other) as store:
        store.append([*derived_events(5), *conversation(3, 3)])  # as long, but not the records it folded
    put_snapshot(other, derived.name, _snapshot(log_with_snapshot, derived.name))
    _assert_rebuilt(other, derived.name, "stale")


def test_a_newer_schema_of_one_state_rebuilds_only_that_one(log_with_snapshot: Path) -> None:
    newer = tuple(attrs.evolve(d, schema=d.schema + 1) if d is SPLICES_STATE else d for d in DERIVED_STATE)
    with LmdbEventStore.open(log_with_snapshot) as store:
        rebuilt = rebuild(store, newer)
        reasons = {origin.name: origin.ignored for origin in rebuilt.origins}
        assert reasons["prompt_cache"] is None and reasons["splices"] is not None
        assert rebuilt.states == full(store)


class ReadsNoted:
    """The real log, noting where each payload read starts and which topics it asks for."""

    def __init__(self, inner: LmdbEventStore) -> None:
        self.inner = inner
        self.reads: list[tuple[int, frozenset[str] | None]] = []

    def last_seq(self) -> int:
        return self.inner.last_seq()

    def read_payloads(
        self, start: int = 1, *, stream: str | None = None, topics: Any = None
    ) -> Any:
        self.reads.append((start, None if topics is None else frozenset(topics)))
        return self.inner.read_payloads(start, stream=stream, topics=topics)


def test_a_state_without_a_snapshot_reads_the_log_under_the_others_snapshots_for_its_own_topics_alone(
    log_with_snapshot: Path,
) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        snapshot = rebuild(store)
        seq = snapshot.origins[0].snapshot_seq
        assert seq is not None
        sessions_only = replay(store, {"sessions": DERIVED_STATE[0].projection}, end=seq)["sessions"]
        noted = ReadsNoted(store)
        folds = {d.name: d.projection for d in DERIVED_STATE}
        states = replay(noted, folds, resume={"sessions": (sessions_only, seq)})  # type: ignore[arg-type]
        assert states == full(store)
        # Every state but the sessions starts without a snapshot here: one read for their topics alone first.
        unsnapshotted = [d for d in DERIVED_STATE if d is not DERIVED_STATE[0]]
        new_topics = frozenset().union(*(d.projection.topics or () for d in unsnapshotted))
        assert noted.reads == [(1, new_topics), (seq + 1, new_topics | DERIVED_STATE[0].projection.topics)]
