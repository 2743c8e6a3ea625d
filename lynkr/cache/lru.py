"""The prompt cache's entries: an LRU with a TTL, an entry budget and a byte budget.  Sans-IO.

Two states, one meaning:

* :class:`CacheState`, the actor's live table, is mutable (an ``OrderedDict`` in recency order) because a hit
  must cost O(1).  The actor decides (a hit, an eviction), records the event, and applies it.
* :class:`CacheFold` is the same table as a pure fold of the ``cache`` stream (:data:`PROMPT_CACHE`), rebuilt
  at start-up with the other derived state and kept live and snapshotted by the projector.  It is immutable,
  so the projector can encode it in a worker thread while folding goes on: entries sit in a persistent map,
  each with the sequence number of the event that last stored or hit it, so a hit copies one path of the map
  instead of the table, and the recency order is the order of those numbers.

At start-up :func:`restored` turns the fold into the actor's table (entries in the order the live table had
them), and the actor records the evictions of whatever expired while the daemon was down (or no longer fits
budgets that shrank), so an expired entry never comes back.  Expiry is judged against wall-clock time passed in
by the caller.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.cache.settings import PromptCacheConfig
from lynkr.events.codec import payload_of
from lynkr.events.pmap import PMap
from lynkr.events.projections import OutOfOrderEvent, Projection
from lynkr.events.records import Event, Payload, Recorded

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


# The fold


@attrs.frozen
class Kept:
    entry: Entry
    used: int  # sequence number of the event that last stored or hit the entry: the recency order


@attrs.frozen
class CacheFold:
    """The cache as the ``cache`` stream left it, before expiry and budgets are judged (they need a clock and
    the settings; :func:`restored` applies them)."""

    entries: PMap[str, Kept] = attrs.field(factory=PMap)
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    last_seq: int = 0


_STORED, _HIT, _MISS, _EVICTED = CacheStored.TYPE, CacheHit.TYPE, CacheMiss.TYPE, CacheEvicted.TYPE


def apply_cache_payload(state: CacheFold, seq: int, time_ns: int, topic: str, payload: Payload) -> CacheFold:
    """:meth:`CacheState.apply`'s meaning as a pure fold over a record's payload."""
    if seq <= state.last_seq:
        raise OutOfOrderEvent(seq, state.last_seq)
    entries, held, hits, misses = state.entries, state.bytes, state.hits, state.misses
    try:
        if topic == _HIT:
            hits += 1
            kept = entries.get(payload["key"])
            if kept is not None:
                entries = entries.set(kept.entry.key, Kept(kept.entry, seq))
        elif topic == _MISS:
            misses += 1
        elif topic == _STORED:
            entry = Entry(
                key=payload["key"],
                provider=payload["provider"],
                model=payload["model"],
                message=payload["message"],
                size=payload["size"],
                expires_at_ms=payload["expires_at_ms"],
            )
            replaced = entries.get(entry.key)
            if replaced is not None:
                held -= replaced.entry.size
            entries = entries.set(entry.key, Kept(entry, seq))
            held += entry.size
        elif topic == _EVICTED:
            gone = entries.get(payload["key"])
            if gone is not None:
                entries = entries.delete(gone.entry.key)
                held -= gone.entry.size
        else:
            return state
    except (KeyError, TypeError):
        return state  # a damaged record that still decoded changes nothing
    return CacheFold(entries, held, hits, misses, seq)


def apply_cache_event(state: CacheFold, recorded: Recorded) -> CacheFold:
    event = recorded.event
    return apply_cache_payload(state, recorded.seq, recorded.time_ns, event.TYPE, payload_of(event))


PROMPT_CACHE: Projection[CacheFold] = Projection(
    initial=CacheFold(),
    apply=apply_cache_event,
    topics=frozenset({_STORED, _HIT, _MISS, _EVICTED}),
    apply_payload=apply_cache_payload,
    stream=CACHE_STREAM,
)


def restored(fold: CacheFold, config: PromptCacheConfig) -> CacheState:
    """The actor's table holding what ``fold`` holds, least recently used first, within ``config``'s budgets
    only once the actor applies :meth:`CacheState.evictions` (it records them)."""
    state = CacheState(max_entries=config.max_entries, max_bytes=config.max_bytes)
    for kept in sorted(fold.entries.values(), key=lambda kept: kept.used):
        state.entries[kept.entry.key] = kept.entry
    state.bytes, state.hits, state.misses = fold.bytes, fold.hits, fold.misses
    return state


def encode_cache(fold: CacheFold) -> bytes:
    """The fold as snapshot bytes: zlib-compressed msgpack (kept answers are JSON-like and shrink well)."""
    entries = [
        [k.entry.key, k.entry.provider, k.entry.model, k.entry.message, k.entry.size, k.entry.expires_at_ms, k.used]
        for k in fold.entries.values()
    ]
    packed = msgpack.packb([fold.last_seq, fold.bytes, fold.hits, fold.misses, entries], use_bin_type=True)
    return zlib.compress(packed, 1)


def decode_cache(data: bytes | memoryview) -> CacheFold:
    """What :func:`encode_cache` encoded; raises ``ValueError`` (or zlib's, msgpack's errors) on bytes it did not."""
    last_seq, held, hits, misses, rows = msgpack.unpackb(zlib.decompress(data))
    entries: PMap[str, Kept] = PMap()
    for key, provider, model, message, size, expires_at_ms, used in rows:
        if not (type(key) is str and type(message) is dict and type(size) is int and type(used) is int):
            raise ValueError("a prompt cache entry in the snapshot has the wrong shape")
        entry = Entry(key=key, provider=provider, model=model, message=message, size=size, expires_at_ms=expires_at_ms)
        entries = entries.set(key, Kept(entry, used))
    if sum(kept.entry.size for kept in entries.values()) != held:
        raise ValueError("the prompt cache snapshot's byte count does not match its entries")
    return CacheFold(entries, int(held), int(hits), int(misses), int(last_seq))
