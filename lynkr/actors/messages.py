"""Messages between the edge, the session actor and the provider pool.

A turn carries its own reply channel and a cancel scope the edge cancels when the client goes away, so the
upstream request ends with it however many actors it passed through.  On the reply channel a streaming client
gets ``Frames`` (SSE bytes ready to write), a non-streaming client one ``Whole`` message, and either may get one
``ErrorReply`` instead of, or after, them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import trio

from lynkr.actors.runtime import ReplyTo
from lynkr.wire.types import Message


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


# An error ends the reply, before or after frames.
StreamItem = Frames | Whole | ErrorReply


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
