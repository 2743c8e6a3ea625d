"""What the MCP bridge records, under the ``mcp`` stream: each server's lifecycle, and its stderr, bounded."""

from __future__ import annotations

import attrs

from lynkr.events.records import Event, event

STREAM = "mcp"


@event("mcp.server_skipped")
@attrs.frozen(kw_only=True)
class McpServerSkipped(Event):
    """A manifest or a server in it could not be used; the others still start."""

    source: str
    message: str


@event("mcp.server_state")
@attrs.frozen(kw_only=True)
class McpServerState(Event):
    """A server moved to ``state``: starting, ready, crashed, restarting, gave_up or stopped."""

    server: str
    state: str
    attempt: int  # starts so far, this one included
    message: str = ""  # why it crashed or gave up
    tools: tuple[str, ...] = ()  # on ready and on a changed tool list: the tools it offers


@event("mcp.server_stderr")
@attrs.frozen(kw_only=True)
class McpServerStderr(Event):
    """Lines a server wrote to stderr; ``dropped`` counts lines left out before these, over the per-start bound."""

    server: str
    lines: tuple[str, ...]
    dropped: int = 0
