"""The prompt cache's events, all recorded under :data:`CACHE_STREAM` so start-up folds just these."""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event

CACHE_STREAM = "cache"


@event("cache.stored")
@attrs.frozen(kw_only=True)
class CacheStored(Event):
    """A complete answer kept under ``key``; recorded durably before it is ever served."""

    key: str
    request_id: str  # the request whose upstream answer this is
    provider: str
    model: str  # the upstream model the key names
    message: dict[str, Any]  # the assembled Anthropic message as the client received it
    size: int  # bytes of the message as JSON, counted against PROMPT_CACHE_MAX_BYTES
    expires_at_ms: int  # unix time: wall clock, so the TTL holds across restarts


@event("cache.hit")
@attrs.frozen(kw_only=True)
class CacheHit(Event):
    key: str
    request_id: str
    session_id: str


@event("cache.miss")
@attrs.frozen(kw_only=True)
class CacheMiss(Event):
    key: str
    request_id: str
    session_id: str


@event("cache.evicted")
@attrs.frozen(kw_only=True)
class CacheEvicted(Event):
    key: str
    reason: str  # "expired", "entries" (PROMPT_CACHE_MAX_ENTRIES) or "bytes" (PROMPT_CACHE_MAX_BYTES)
