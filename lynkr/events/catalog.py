"""Every event lynkr records.  Payload fields are plain data (str, int, float, bool, None, list, dict)."""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event


@event("daemon.started")
@attrs.frozen(kw_only=True)
class DaemonStarted(Event):
    version: str
    pid: int
    config: dict[str, Any]  # the effective configuration, secrets masked


@event("daemon.stopped")
@attrs.frozen(kw_only=True)
class DaemonStopped(Event):
    reason: str


@event("actor.crashed")
@attrs.frozen(kw_only=True)
class ActorCrashed(Event):
    actor: str
    error_type: str
    message: str
    traceback: str
    restarts: int


@event("actor.escalated")
@attrs.frozen(kw_only=True)
class ActorEscalated(Event):
    actor: str
    crashes: int
    window_s: float


@event("request.received")
@attrs.frozen(kw_only=True)
class RequestReceived(Event):
    request_id: str
    session_id: str
    path: str
    model: str
    stream: bool
    headers: dict[str, str]  # scrubbed
    body: dict[str, Any]  # scrubbed


@event("upstream.attempted")
@attrs.frozen(kw_only=True)
class UpstreamAttempted(Event):
    request_id: str
    provider: str
    attempt: int
    status: int | None  # None when no response arrived (connect error, timeout)
    latency_ms: float
    error: str | None
    will_retry: bool


@event("response.completed")
@attrs.frozen(kw_only=True)
class ResponseCompleted(Event):
    request_id: str
    session_id: str
    provider: str
    model: str
    message: dict[str, Any]  # the assembled Anthropic message, as the client received it
    latency_ms: float


@event("response.failed")
@attrs.frozen(kw_only=True)
class ResponseFailed(Event):
    request_id: str
    session_id: str
    status: int
    error_type: str
    message: str
