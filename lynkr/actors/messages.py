"""Messages between the edge, the session actor and the provider pool.

A turn carries its own reply channel (streaming replies: Anthropic stream events as dicts, or one
``ErrorReply``) and a cancel scope the edge cancels when the client goes away, so the upstream request ends
with it however many actors it passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import trio

from lynkr.actors.runtime import ReplyTo
from lynkr.wire.types import StreamEvent


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
