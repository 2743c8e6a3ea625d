"""The prompt cache's table as a fold: the live decisions, replayed, give the same entries."""

from __future__ import annotations

import functools

import pytest

from lynkr.cache.events import CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.cache.lru import PROMPT_CACHE, CacheFold, CacheState, decode_cache, encode_cache, restored
from lynkr.cache.settings import PromptCacheConfig
from lynkr.events.projections import OutOfOrderEvent
from lynkr.events.records import Event, Recorded


def stored(key: str, *, size: int = 100, expires_at_ms: int = 10_000) -> CacheStored:
    message = {"type": "message", "content": [{"type": "text", "text": key}], "stop_reason": "end_turn"}
    return CacheStored(
        key=key, request_id=f"req_{key}", provider="p", model="m", message=message, size=size,
        expires_at_ms=expires_at_ms,
    )


def records(events: list[Event]) -> list[Recorded]:
    return [Recorded(seq=seq, time_ns=seq, stream="cache", event=event) for seq, event in enumerate(events, 1)]


def fold(records: list[Recorded], *, max_entries: int, max_bytes: int, now_ms: int) -> CacheState:
    """What a restarted daemon's cache actor holds: the derived fold, restored, then its start-up evictions."""
    folded = functools.reduce(PROMPT_CACHE.apply, records, PROMPT_CACHE.initial)
    state = restored(folded, PromptCacheConfig(max_entries=max_entries, max_bytes=max_bytes))
    for evicted in state.evictions(now_ms):
        state.apply(evicted)
    return state


def live(events: list[Event], *, max_entries: int, max_bytes: int, now_ms: int) -> tuple[CacheState, list[Event]]:
    """Apply ``events`` as the actor does: each store followed by the evictions it causes, which are logged."""
    state = CacheState(max_entries=max_entries, max_bytes=max_bytes)
    log: list[Event] = []
    for event in events:
        state.apply(event)
        log.append(event)
        if isinstance(event, CacheStored):
            for evicted in state.evictions(now_ms):
                state.apply(evicted)
                log.append(evicted)
    return state, log


def test_the_least_recently_used_goes_first_and_replay_agrees() -> None:
    hit = CacheHit(key="a", request_id="r", session_id="s")
    state, log = live([stored("a"), stored("b"), hit, stored("c")], max_entries=2, max_bytes=10_000, now_ms=0)
    assert list(state.entries) == ["a", "c"]
    assert [e for e in log if isinstance(e, CacheEvicted)] == [CacheEvicted(key="b", reason="entries")]
    replayed = fold(records(log), max_entries=2, max_bytes=10_000, now_ms=0)
    assert list(replayed.entries) == list(state.entries)
    assert (replayed.bytes, replayed.hits) == (state.bytes, 1) == (200, 1)


def test_the_byte_budget_evicts_until_the_new_answer_fits() -> None:
    state, log = live(
        [stored("a", size=400), stored("b", size=400), stored("c", size=500)], max_entries=10, max_bytes=1000, now_ms=0
    )
    assert list(state.entries) == ["b", "c"] and state.bytes == 900
    assert [(e.key, e.reason) for e in log if isinstance(e, CacheEvicted)] == [("a", "bytes")]
    assert not state.fits(1001)


def test_expired_entries_go_first_and_never_come_back_after_a_restart() -> None:
    state, log = live(
        [stored("old", expires_at_ms=50), stored("new", expires_at_ms=500), stored("newer", expires_at_ms=900)],
        max_entries=2,
        max_bytes=10_000,
        now_ms=100,
    )
    assert [(e.key, e.reason) for e in log if isinstance(e, CacheEvicted)] == [("old", "expired")]
    assert state.fresh("new", 100) is not None and state.fresh("new", 500) is None
    assert list(fold(records(log), max_entries=2, max_bytes=10_000, now_ms=600).entries) == ["newer"]


def test_a_fold_fits_budgets_that_shrank_and_counts_hits_and_misses() -> None:
    events: list[Event] = [stored("a"), stored("b"), CacheMiss(key="x", request_id="r", session_id="s")]
    replayed = fold(records(events), max_entries=1, max_bytes=10_000, now_ms=0)
    assert list(replayed.entries) == ["b"]
    assert (replayed.hits, replayed.misses) == (0, 1)


def test_storing_a_key_again_replaces_its_entry_and_its_bytes() -> None:
    state, _ = live([stored("a", size=100), stored("a", size=300)], max_entries=5, max_bytes=10_000, now_ms=0)
    assert len(state.entries) == 1 and state.bytes == 300


def test_the_fold_keeps_the_live_tables_recency_order_and_totals() -> None:
    hit_a, hit_b = (CacheHit(key=k, request_id="r", session_id="s") for k in "ab")
    events: list[Event] = [stored("a"), stored("b"), stored("c"), hit_a, stored("b", size=50), hit_b, hit_a,
                           CacheMiss(key="x", request_id="r", session_id="s"), CacheEvicted(key="c", reason="entries")]
    state, log = live(events, max_entries=5, max_bytes=10_000, now_ms=0)
    folded = functools.reduce(PROMPT_CACHE.apply, records(log), CacheFold())
    back = restored(folded, PromptCacheConfig(max_entries=5, max_bytes=10_000))
    assert list(back.entries) == list(state.entries) == ["b", "a"]
    assert list(back.entries.values()) == list(state.entries.values())
    assert (back.bytes, back.hits, back.misses) == (state.bytes, state.hits, state.misses) == (150, 3, 1)
    # The fold is immutable: an older state is untouched by the events folded after it.
    earlier = functools.reduce(PROMPT_CACHE.apply, records(log)[:3], CacheFold())
    assert sorted(earlier.entries) == ["a", "b", "c"] and earlier.hits == 0


def test_the_fold_survives_its_snapshot_encoding_and_refuses_events_out_of_order() -> None:
    hit = CacheHit(key="a", request_id="r", session_id="s")
    folded = functools.reduce(PROMPT_CACHE.apply, records([stored("a"), stored("b"), hit]), CacheFold())
    decoded = decode_cache(encode_cache(folded))
    assert decoded == folded
    assert [k.used for k in decoded.entries.values()] == [k.used for k in folded.entries.values()]
    with pytest.raises(OutOfOrderEvent):
        PROMPT_CACHE.apply(decoded, Recorded(seq=3, time_ns=3, stream="cache", event=hit))
