"""Every event lynkr records.  Payload fields are plain data (str, int, float, bool, None, list, dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from lynkr.events import transcript
from lynkr.events.records import STORED, Event, Payload, event, upcaster
from lynkr.events.transcript import NO_BLOBS, BlobSource, join

USER_TEXT_LIMIT = 500  # characters of the newest user message kept in a request's brief


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


@event("request.received", version=3)
@attrs.frozen(kw_only=True)
class RequestReceived(Event):
    """A client's request: the exact bytes it sent, content-addressed, plus the brief that replay needs.

    A request as recorded carries its whole body in ``template``.  The log stores it split
    (:meth:`stored_form`): the transcript's messages, system blocks and tools as blobs stored once, and the
    rest as ``template`` plus ``parts`` saying where each blob goes back.  Read back from the log, ``blobs``
    is the store, and :attr:`body` rebuilds the exact bytes through :func:`lynkr.events.transcript.join`
    (``template`` and ``parts`` say how the body is stored, so compare ``whole()`` requests, not stored ones).
    """

    request_id: str
    session_id: str
    path: str
    model: str
    stream: bool
    headers: dict[str, str]  # scrubbed
    messages: int
    tools: tuple[str, ...] = attrs.field(converter=tuple)
    last_user_text: str  # cut to USER_TEXT_LIMIT characters
    template: bytes  # the JSON body as received with known secrets masked, less its content-addressed parts
    parts: bytes = b""  # where the blobs go back into the template (lynkr.events.transcript)
    blobs: BlobSource = attrs.field(default=NO_BLOBS, eq=False, repr=False, metadata={STORED: False})
    # The body as the edge parsed it, while the request is in memory: splitting it for the log need not parse it
    # again (see transcript.split; it only guides the search).  Read-only, like every recorded container.
    parsed: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False, metadata={STORED: False})

    @classmethod
    def of(
        cls, *, request_id: str, session_id: str, path: str, headers: dict[str, str], request: Mapping[str, Any],
        body: bytes,
    ) -> RequestReceived:
        return cls(
            request_id=request_id,
            session_id=session_id,
            path=path,
            model=str(request.get("model", "")),
            stream=bool(request.get("stream", False)),
            headers=headers,
            template=body,
            parsed=request,
            **_brief(request),
        )

    @property
    def body(self) -> bytes:
        """The body exactly as received (known secrets masked); raises ``MissingBlob`` if the log lost a part."""
        return join(self.template, self.parts, self.blobs)

    def request(self) -> dict[str, Any]:
        """The request body, parsed."""
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    def whole(self) -> RequestReceived:
        """This request carrying its whole body, so that it no longer needs the store it was read from."""
        return self if not self.parts else attrs.evolve(self, template=self.body, parts=b"", blobs=NO_BLOBS)

    def stored_form(self) -> tuple[RequestReceived, dict[bytes, bytes]]:
        # A request read back from the log carries no parsed body (and its parts must be joined first).
        split = transcript.split(self.body, request=None if self.parts else self.parsed)
        if not split.parts:
            return (self if not self.parts else attrs.evolve(self, template=split.template, parts=b"", parsed=None)), {}
        stored = attrs.evolve(self, template=split.template, parts=split.parts, blobs=NO_BLOBS, parsed=None)
        return stored, split.blobs


@upcaster("request.received", from_version=1)
def _body_as_bytes(payload: Payload) -> Payload:
    """v1 kept the parsed body; v2 keeps the bytes and a brief of them."""
    body = payload.pop("body")
    return {**payload, **_brief(body), "body": orjson.dumps(body)}


@upcaster("request.received", from_version=2)
def _body_as_template(payload: Payload) -> Payload:
    """v2 kept the body whole; v3 keeps it as a template and content-addressed parts, of which it has none."""
    body = payload.pop("body")
    return {**payload, "template": body}


def _brief(request: Mapping[str, Any]) -> dict[str, Any]:
    """Message count, tool names and the newest user text.  Tolerates any shape: replay must never crash."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        messages = []
    tools = request.get("tools")
    names = [str(tool["name"]) for tool in tools if isinstance(tool, dict) and "name" in tool] if isinstance(
        tools, list
    ) else []
    return {"messages": len(messages), "tools": tuple(names), "last_user_text": _last_user_text(messages)[:USER_TEXT_LIMIT]}


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = []
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "text" and isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif isinstance(block.get("type"), str):
                    parts.append(f"[{block['type']}]")
            return " ".join(parts)
        return ""
    return ""


@event("request.refused")
@attrs.frozen(kw_only=True)
class RequestRefused(Event):
    """A request the edge would not serve because it came from a web page (see lynkr/http/guard.py)."""

    request_id: str
    reason: str  # "origin", "host" or "content-type"
    method: str
    path: str
    origin: str | None  # the request's headers, cut short: a page chooses them
    host: str | None
    content_type: str | None
    unrecorded_before: int = 0  # refusals since the previous record that were answered but not recorded


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


# ``ResponseCompleted.provider`` names an upstream, except for these two, which answered without one more call.
LOOP_PROVIDER = "agent-loop"  # the loop's own completion, the message the client received: its rounds have their own
CACHE_PROVIDER = "prompt-cache"  # a prompt cache hit: the provider that first answered is in the cache entry


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


@event("session.compacted")
@attrs.frozen(kw_only=True)
class SessionCompacted(Event):
    """What stays of a session whose records ``lynkr log compact`` dropped: its totals, in its own stream.

    It is written at the sequence number of the session's last dropped record, so the log's order holds.
    """

    session_id: str
    turns: int
    first_seq: int
    first_time_ns: int
    last_time_ns: int
    # One row per provider and model, as lynkr.events.projections.ModelUse.as_row: [provider, model, answers,
    # input, output, cache read and cache creation tokens, upstream ms].
    uses: list[list[Any]]
    events_dropped: int  # records of this session (and about it in other streams) left out


@event("limit.learned")
@attrs.frozen(kw_only=True)
class LimitLearned(Event):
    """An upstream's refusal named one of its limits for a model: the most output tokens, or the context window."""

    provider: str
    model: str  # the upstream model (or Azure deployment) name
    kind: str  # "output" or "context"
    value: int


def _string_tuple(values: Any) -> tuple[str, ...]:
    """Stored as a list (msgpack has no tuples); held as a tuple so the record stays hashable and frozen."""
    return tuple(str(value) for value in values)


@event("betas.unsupported")
@attrs.frozen(kw_only=True)
class BetasUnsupported(Event):
    """An Anthropic-native upstream refused these ``anthropic-beta`` flags; lynkr no longer sends them there."""

    provider: str
    flags: tuple[str, ...] = attrs.field(converter=_string_tuple)


# Tool events live beside the tools; imported here so every reader of the log knows them.
import lynkr.agent.events  # noqa: E402,F401
import lynkr.cache.events  # noqa: E402,F401
from lynkr.tools import events, task_events, test_events  # noqa: E402,F401
import lynkr.index.events  # noqa: E402,F401
import lynkr.reflect.events  # noqa: E402,F401
import lynkr.upstream.recording  # noqa: E402,F401
