"""``lynkr log compact``: drop the bulk of sessions idle beyond the retention, keep a summary of each.

The log stays append-only: compaction never changes it in place.  It writes a new log beside it and swaps
it in (see :mod:`lynkr.datadir`), under the daemon lock, so it refuses while the daemon runs:

1. fold the sessions (snapshot plus tail, as start-up does) and pick those whose last activity is older than
   the retention;
2. pass over the log once and mark what goes: every record in a dropped session's stream; every record
   elsewhere whose payload names a dropped session (``session_id``: the splice rounds in ``agent``, tool
   runs and edits in ``tools``, cache hits and misses); the prompt cache's entries stored for a dropped
   session's requests, and their evictions; and the blobs only dropped requests and their recorded upstream
   answers refer to;
3. write ``events.compacting`` with the remaining records at their own sequence numbers, and each dropped
   session's ``session.compacted`` summary at the sequence number of its last dropped record (sequence
   numbers stay increasing; the gaps are harmless, since folds need increasing, not consecutive, numbers);
4. rename it ``events.compacted`` (complete), move ``events`` aside as ``events.before-compaction-<time>``,
   and rename ``events.compacted`` to ``events``.

Everything else stays: the daemon's own stream, learned limits, the index, and whatever records name no
dropped session.  Snapshots are not copied; the next start rebuilds them.  The old log is kept aside, never
deleted: remove its folder once the new one has served you.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import attrs

from lynkr.agent.events import AGENT_STREAM, TOOLS_STREAM
from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheStored
from lynkr.datadir import (
    DAEMON_STREAM,
    StartupError,
    compacted_dir,
    compacting_dir,
    daemon_lock,
    events_dir,
    swap_in_compacted,
)
from lynkr.events.catalog import RequestReceived, SessionCompacted
from lynkr.events.codec import encode
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.projections import Session, SessionsState
from lynkr.events.records import Payload
from lynkr.events.snapshots import SESSIONS_STATE, rebuild
from lynkr.events.transcript import reach
from lynkr.index.events import INDEX_STREAM
from lynkr.mcp.events import STREAM as MCP_STREAM
from lynkr.upstream.learned import LIMITS_STREAM
from lynkr.upstream.recording import UpstreamResponded

NS_PER_DAY = 86_400 * 1_000_000_000
SHARED_STREAMS = frozenset(
    {DAEMON_STREAM, LIMITS_STREAM, CACHE_STREAM, AGENT_STREAM, TOOLS_STREAM, INDEX_STREAM, MCP_STREAM}
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@attrs.frozen(kw_only=True)
class Plan:
    """What a compaction drops and what it writes instead."""

    dropped: tuple[str, ...]  # session ids, oldest activity first
    drop_seqs: frozenset[int]
    summaries: dict[int, tuple[str, bytes]]  # seq -> (stream, encoded session.compacted record)
    drop_blobs: frozenset[bytes]


@attrs.frozen(kw_only=True)
class Compacted:
    sessions_compacted: int
    events_before: int
    events_after: int
    bytes_before: int
    bytes_after: int | None  # None for a dry run
    old_log: Path | None  # where the log before compaction was put aside (None: nothing was compacted)


def plan(store: LmdbEventStore, state: SessionsState, *, cutoff_ns: int, progress: Progress | None = None) -> Plan:
    """Which records and blobs go, for the sessions in ``state`` last active before ``cutoff_ns``."""
    old = {
        session_id: session
        for session_id, session in state.sessions.items()
        if session.last_time_ns < cutoff_ns and not _only_a_summary(session)
    }
    if not old:
        return Plan(dropped=(), drop_seqs=frozenset(), summaries={}, drop_blobs=frozenset())
    # A session's own stream goes whole, unless a client named its session after a stream lynkr shares.
    in_their_streams = {
        seq: session_id
        for session_id in old
        if session_id not in SHARED_STREAMS
        for seq, _ in store.read_raw(stream=session_id)
    }
    drop: dict[int, str] = {}  # seq -> the dropped session it concerns
    requests: set[str] = set()
    cache_keys: set[str] = set()
    dropped_refs: set[bytes] = set()
    kept_refs: set[bytes] = set()
    total = store.last_seq()
    next_report = 0
    for seq, _, topic, _stream, payload in store.read_payloads():
        owner = in_their_streams.get(seq)
        if owner is None:
            named = payload.get("session_id")
            if isinstance(named, str) and named in old:
                owner = named
            elif topic == CacheStored.TYPE and payload.get("request_id") in requests:
                cache_keys.add(str(payload.get("key")))
                owner = ""  # about a dropped session's request, though not one of the session's own records
            elif topic == CacheEvicted.TYPE and payload.get("key") in cache_keys:
                owner = ""
        if owner is not None:
            drop[seq] = owner
            if topic == RequestReceived.TYPE:
                requests.add(str(payload.get("request_id")))
                reach(payload.get("parts") or b"", store, dropped_refs)
            elif topic == UpstreamResponded.TYPE:
                dropped_refs.update(_answer_digests(payload))
        elif topic == RequestReceived.TYPE:
            reach(payload.get("parts") or b"", store, kept_refs)
        elif topic == UpstreamResponded.TYPE:
            kept_refs.update(_answer_digests(payload))
        if progress is not None and seq >= next_report:
            progress("planning", seq, total)
            next_report = seq + 8192
    if progress is not None:
        progress("planning", total, total)
    # Records that did not decode were not read above; in a dropped session's stream they go too.
    for seq, owner in in_their_streams.items():
        drop.setdefault(seq, owner)
    last_dropped: dict[str, int] = {}
    dropped_events: dict[str, int] = {}
    for seq, owner in drop.items():
        if owner:
            last_dropped[owner] = max(seq, last_dropped.get(owner, 0))
            dropped_events[owner] = dropped_events.get(owner, 0) + 1
    summaries = {
        last_dropped[session_id]: (session_id, _summary(session, dropped_events[session_id]))
        for session_id, session in old.items()
        if session_id in last_dropped
    }
    ordered = sorted(old.values(), key=lambda s: (s.last_time_ns, s.session_id))
    return Plan(
        dropped=tuple(s.session_id for s in ordered if s.session_id in last_dropped),
        drop_seqs=frozenset(drop),
        summaries=summaries,
        drop_blobs=frozenset(dropped_refs - kept_refs),
    )


def _answer_digests(payload: Payload) -> set[bytes]:
    """The blobs an ``upstream.responded`` record keeps its raw answer and the SSE sent in (shared when equal)."""
    return {digest for digest in (payload.get("digest"), payload.get("sent_digest")) if isinstance(digest, bytes) and digest}


def _only_a_summary(session: Session) -> bool:
    """Compacted before and untouched since: there is nothing left to drop."""
    return session.compacted and not session.turns


def _summary(session: Session, events_dropped: int) -> bytes:
    summary = SessionCompacted(
        session_id=session.session_id,
        turns=session.turn_count,
        first_seq=session.first_seq,
        first_time_ns=session.first_time_ns,
        last_time_ns=session.last_time_ns,
        uses=[use.as_row() for use in session.uses],
        events_dropped=events_dropped,
    )
    return encode(session.last_time_ns, session.session_id, summary)


def compact(
    data_dir: Path, *, retain_days: int, now_ns: int | None = None, progress: Progress | None = None,
    dry_run: bool = False,
) -> Compacted:
    """Compact the log in ``data_dir``; raises :class:`StartupError` while the daemon runs."""
    if retain_days < 1:
        raise ValueError("retain_days must be at least 1")
    now_ns = time.time_ns() if now_ns is None else now_ns
    cutoff_ns = now_ns - retain_days * NS_PER_DAY
    with ExitStack() as stack:
        try:
            stack.enter_context(daemon_lock(data_dir))
        except StartupError as error:
            raise StartupError(f"cannot compact the log while the daemon runs: {error}") from None
        return _compact_locked(data_dir, cutoff_ns=cutoff_ns, progress=progress, dry_run=dry_run)


def _compact_locked(data_dir: Path, *, cutoff_ns: int, progress: Progress | None, dry_run: bool) -> Compacted:
    if not events_dir(data_dir).is_dir():
        raise StartupError(f"no event log in {data_dir}; start the daemon first, or set LYNKR_DATA_DIR")
    with LmdbEventStore.open(events_dir(data_dir), readonly=True) as store:
        state: SessionsState = rebuild(store, (SESSIONS_STATE,)).states[SESSIONS_STATE.name]
        chosen = plan(store, state, cutoff_ns=cutoff_ns, progress=progress)
        before = store.stats()
        if dry_run or not chosen.dropped:
            events_after = before.events - len(chosen.drop_seqs) + len(chosen.summaries)
            return Compacted(sessions_compacted=len(chosen.dropped), events_before=before.events,
                             events_after=events_after, bytes_before=before.bytes_on_disk,
                             bytes_after=None if dry_run else before.bytes_on_disk, old_log=None)
        target_path = compacting_dir(data_dir)
        with LmdbEventStore.open(target_path, map_size=max(64 * 1024 * 1024, before.bytes_used)) as target:
            store.copy_into(
                target,
                drop=chosen.drop_seqs,
                add=chosen.summaries,
                drop_blobs=chosen.drop_blobs,
                progress=None if progress is None else lambda done, total: progress("writing", done, total),
            )
            after = target.stats()
    # Complete on disk (every commit is synchronous): mark it so, then swap it in.
    target_path.rename(compacted_dir(data_dir))
    old_log = swap_in_compacted(data_dir)
    return Compacted(
        sessions_compacted=len(chosen.dropped),
        events_before=before.events,
        events_after=after.events,
        bytes_before=before.bytes_on_disk,
        bytes_after=after.bytes_on_disk,
        old_log=old_log,
    )
