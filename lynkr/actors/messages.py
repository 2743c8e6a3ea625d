"""Messages between the edge, the session actor, the provider pool and the tool worker.

A turn carries its own reply channel (streaming replies: Anthropic stream events as dicts, or one
``ErrorReply``) and a cancel scope the edge cancels when the client goes away, so the upstream request ends
with it however many actors it passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from lynkr.actors.runtime import ReplyTo
from lynkr.wire.types import StreamEvent

if TYPE_CHECKING:
    from lynkr.tools.runner import Outcome


@attrs.frozen(kw_only=True)
class ErrorReply:
    """An error for the client: ours, rendered, or an upstream's own Anthropic error passed through unmodified."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


# The events converted from one upstream read travel together; an error ends the stream.
StreamItem = list[StreamEvent] | ErrorReply


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
