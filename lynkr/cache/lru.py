"""The prompt cache's entries: an LRU with a TTL, an entry budget and a byte budget.  Sans-IO.

The live cache and start-up use the same :meth:`CacheState.apply`: the actor decides (a hit, an eviction), records
the event, and applies it; start-up applies the recorded events in order, so the entries after a restart are the
ones held before it.  Expiry is judged against wall-clock time passed in by the caller, and :func:`fold` drops
what expired while the daemon was down, so an expired entry never comes back.

The state is mutable (an ``OrderedDict`` in recency order) because a hit must cost O(1): copying the table on
every event would make a long log's fold quadratic.  Only ``apply`` and ``fold`` change it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import attrs

from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.cache.settings import PromptCacheConfig
from lynkr.events.records import Event, Recorded
from lynkr.events.store import EventStore

EXPIRED = "expired"
OVER_ENTRIES = "entries"
OVER_BYTES = "bytes"


@attrs.frozen(kw_only=True)
class Entry:
    key: str
    provider: str
    model: str
    message: dict[str, Any]
    size: int
    expires_at_ms: int


class CacheState:
    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entries: OrderedDict[str, Entry] = OrderedDict()  # least recently used first
        self.bytes = 0
        self.hits = 0  # over the whole log, so the hit rate survives a restart
        self.misses = 0

    def apply(self, event: Event) -> None:
        if isinstance(event, CacheHit):
            self.hits += 1
            if event.key in self.entries:
                self.entries.move_to_end(event.key)
        elif isinstance(event, CacheMiss):
            self.misses += 1
        elif isinstance(event, CacheStored):
            self._remove(event.key)
            self.entries[event.key] = Entry(
                key=event.key,
                provider=event.provider,
                model=event.model,
                message=event.message,
                size=event.size,
                expires_at_ms=event.expires_at_ms,
            )
            self.bytes += event.size
        elif isinstance(event, CacheEvicted):
            self._remove(event.key)

    def fresh(self, key: str, now_ms: int) -> Entry | None:
        """The entry under ``key`` if it has not expired; the caller records the hit, or the expiry."""
        entry = self.entries.get(key)
        return entry if entry is not None and entry.expires_at_ms > now_ms else None

    def fits(self, size: int) -> bool:
        """Whether an answer of ``size`` bytes may be kept at all."""
        return self.max_entries > 0 and size <= self.max_bytes

    def evictions(self, now_ms: int) -> list[CacheEvicted]:
        """What must go for the table to be within its budgets: expired entries, then the least recently used."""
        gone = [CacheEvicted(key=e.key, reason=EXPIRED) for e in self.entries.values() if e.expires_at_ms <= now_ms]
        expired = {event.key for event in gone}
        entries = len(self.entries) - len(gone)
        held = self.bytes - sum(self.entries[key].size for key in expired)
        for entry in self.entries.values():
            if entries <= self.max_entries and held <= self.max_bytes:
                break
            if entry.key in expired:
                continue
            gone.append(CacheEvicted(key=entry.key, reason=OVER_ENTRIES if entries > self.max_entries else OVER_BYTES))
            entries -= 1
            held -= entry.size
        return gone

    def _remove(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size


def fold(records: Iterable[Recorded], *, max_entries: int, max_bytes: int, now_ms: int) -> CacheState:
    """The cache as the recorded events left it, without what has expired by ``now_ms`` or no longer fits the
    budgets (they may have shrunk since, or the last evictions were lost with a crash)."""
    state = CacheState(max_entries=max_entries, max_bytes=max_bytes)
    for record in records:
        state.apply(record.event)
    for evicted in state.evictions(now_ms):
        state.apply(evicted)
    return state


def load(store: EventStore, config: PromptCacheConfig, now_ms: int) -> CacheState:
    """The cache as the log left it: only the cache stream is read, through the by-stream index."""
    records = store.read(stream=CACHE_STREAM)
    return fold(records, max_entries=config.max_entries, max_bytes=config.max_bytes, now_ms=now_ms)
