"""The agent loop's events: the rounds the client never saw (for the splice), each server-run round, and how
a looping turn ended.  The tool worker's start marker lives here too: it is the loop's side of the worker.
"""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.events.records import Event, event

AGENT_STREAM = "agent"  # splice records only, so start-up reads just these through the by-stream index
TOOLS_STREAM = "tools"  # every tool event, so the tool worker folds just these at start


@event("agent.rounds")
@attrs.frozen(kw_only=True)
class RoundsKept(Event):
    """What stands, in the canonical transcript, for one assistant message as the client received it.

    ``key`` is :func:`lynkr.agent.splice.message_key` of the client's copy; ``messages`` replace it (server-run
    rounds, the last one an assistant message); ``results`` are lynkr's tool results that belong at the head of
    the client's next user message, among the client's own, in tool_use order.
    """

    session_id: str
    request_id: str
    key: str
    messages: list[dict[str, Any]]
    results: list[dict[str, Any]]


@event("agent.round")
@attrs.frozen(kw_only=True)
class RoundRan(Event):
    """One model round of a looping turn and the tools lynkr ran for it."""

    session_id: str
    request_id: str
    step: int  # 1 for the first round
    tools: list[str]  # the lynkr tools called, in order
    client_tools: list[str]  # the calls that go back to the client
    stop_reason: str | None


@event("agent.loop_ended")
@attrs.frozen(kw_only=True)
class LoopEnded(Event):
    session_id: str
    request_id: str
    steps: int
    tool_calls: int
    # "end_turn" (a final answer), "client_tools" (calls for the client), "max_steps", "max_tool_calls",
    # "error" (an upstream failure mid-loop), "cancelled" (the client went away)
    reason: str


@event("tools.worker_started")
@attrs.frozen(kw_only=True)
class ToolWorkerStarted(Event):
    """A tool worker incarnation began; it folds the tool events recorded before this one."""

    tools: int
