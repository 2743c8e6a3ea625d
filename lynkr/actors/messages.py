"""Messages between the edge, the session actor, the provider pool and the tool worker.

A turn carries its own reply channel and a cancel scope the edge cancels when the client goes away, so the
upstream request ends with it however many actors it passed through.  On the reply channel a streaming client
gets ``Frames`` (SSE bytes ready to write), a non-streaming client one ``Whole`` message, and either may get one
``ErrorReply`` instead of, or after, them.  A round of the agent loop asks for ``Events`` instead of frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.actors.runtime import ReplyTo
from lynkr.wire.types import Message, StreamEvent

if TYPE_CHECKING:
    from lynkr.tools.runner import Outcome


@attrs.frozen(kw_only=True)
class ErrorReply:
    """An error for the client: ours, rendered, or an upstream's own Anthropic error passed through unmodified."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


@attrs.frozen
class Frames:
    """SSE bytes for a streaming client, written as they are: the upstream's own bytes when it speaks Anthropic
    SSE, otherwise the events lynkr converted from one upstream read, framed together."""

    data: bytes
    last: bool  # ``message_stop`` is in ``data``: the stream is complete


@attrs.frozen
class Whole:
    """The assembled answer for a non-streaming client."""

    message: Message


@attrs.frozen
class Events:
    """The parsed events of one upstream read, for a consumer inside lynkr (the agent loop), which must see the
    blocks before deciding what reaches the client."""

    events: list[StreamEvent]


# An error ends the reply, before or after frames.
StreamItem = Frames | Whole | Events | ErrorReply


@attrs.frozen(kw_only=True)
class Turn:
    request_id: str
    session_id: str
    request: dict[str, Any]
    body: bytes  # as the client sent it
    headers: Mapping[str, str]
    reply: trio.MemorySendChannel[StreamItem]
    cancel: trio.CancelScope
    received_ns: int
    events: bool = False  # reply with parsed ``Events`` rather than ``Frames`` (a round of the agent loop)


@attrs.frozen(kw_only=True)
class CountTokens:
    request_id: str
    request: dict[str, Any]
    headers: Mapping[str, str]
    reply_to: ReplyTo[int]


@attrs.frozen(kw_only=True)
class RunTool:
    """Run one tool call for a turn; the reply is its :class:`~lynkr.tools.runner.Outcome` (never an error for
    tool trouble: unknown tools, bad input and refusals are results too)."""

    session_id: str
    request_id: str
    model: str  # the turn's model, for a tool that asks the provider for a summary
    tool_use_id: str
    name: str
    arguments: Mapping[str, Any]
    reply_to: ReplyTo[Outcome]
    # The asker cancels it when it stops waiting (its client went away): the tool stops with it.
    cancel: trio.CancelScope = attrs.field(factory=trio.CancelScope)
