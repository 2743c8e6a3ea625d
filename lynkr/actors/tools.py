"""The tool worker: runs every tool call lynkr makes, records what happened, and keeps the folded tool state.

Each incarnation builds the toolbox (built-in tools, plugins, policy), then rebuilds the :class:`ToolState`
from the log.  Tool events are recorded under their own stream (``tools``), so start-up reads only those through
the store's by-stream index.  A durable ``tools.worker_started`` marker comes first: the recorder commits in
order, so once the marker is on disk every tool event an earlier incarnation recorded is too, and the fold up
to the marker misses none of them.

Calls run concurrently, each in its own task (a turn asks for its calls one at a time, so a turn's calls keep
their order).  A call sees the state as it was when it started; its events are folded when it ends.  The reply
channel of every call is owned by its task, so if the worker crashes the waiting turn gets ``ActorGone`` at
once, and the supervisor starts a successor that serves what is still queued.  A call runs inside the cancel
scope its message carries: a turn whose client went away cancels it, and the tool stops with it.
"""

from __future__ import annotations

import itertools
import time
from functools import partial

import attrs
import orjson
import trio

from lynkr.actors.messages import ErrorReply, RunTool, StreamItem, Turn, Whole
from lynkr.actors.providers import Message as ProviderMessage
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import Mailbox, answer
from lynkr.agent.events import TOOLS_STREAM, ToolWorkerStarted
from lynkr.config import Config
from lynkr.events.store import EventStore
from lynkr.tools.base import Projection, ToolContext, ToolSpec, ToolState, WorkspaceIndex
from lynkr.tools.runner import Outcome, Toolbox, run_call
from lynkr.tools.toolbox import build_toolbox, tool_context
from lynkr.wire.types import Message

SUMMARY_STREAM = "tools.summaries"  # the provider pool records summary requests here, apart from any session
SUMMARY_MAX_TOKENS = 1024
SUMMARY_REPLY_BUFFER = 32


async def run(
    config: Config,
    inbox: trio.MemoryReceiveChannel[RunTool],
    *,
    store: EventStore,
    recorder: Recorder,
    providers: Mailbox[ProviderMessage],
    toolbox: Toolbox | None = None,
    index: WorkspaceIndex | None = None,
    task_status: trio.TaskStatus[tuple[ToolSpec, ...]] = trio.TASK_STATUS_IGNORED,
) -> None:
    # The daemon passes its toolbox, whose registry the MCP bridge adds tools to and takes them from.
    toolbox = toolbox if toolbox is not None else build_toolbox(config)
    marker = await recorder.record_durably(TOOLS_STREAM, ToolWorkerStarted(tools=len(toolbox.specs())))
    state = await trio.to_thread.run_sync(fold_tool_state, store, toolbox.projections, marker)
    # Built the one way tools-core builds it (workspace resolved, environment scrubbed) once per incarnation;
    # each call gets a copy with its session, its summarizer and the state as of its start.
    worker = _Worker(
        base=tool_context(config, toolbox, state=state, index=index),
        toolbox=toolbox,
        recorder=recorder,
        providers=providers,
        state=state,
    )
    async with inbox, trio.open_nursery() as nursery:
        task_status.started(tuple(toolbox.specs()))
        async for message in inbox:
            nursery.start_soon(answer, message.reply_to, partial(worker.call, message))


def fold_tool_state(store: EventStore, projections: tuple[Projection, ...], up_to: int) -> ToolState:
    """The tool state as of sequence number ``up_to``: every tool event before it, folded in order."""
    state = ToolState.empty(projections)
    for recorded in store.read(stream=TOOLS_STREAM):
        if recorded.seq > up_to:
            break
        state = state.apply(recorded.event)
    return state


@attrs.define(kw_only=True)
class _Worker:
    """What one incarnation owns."""

    base: ToolContext
    toolbox: Toolbox
    recorder: Recorder
    providers: Mailbox[ProviderMessage]
    state: ToolState
    summaries: itertools.count[int] = attrs.field(factory=itertools.count)

    async def call(self, message: RunTool) -> Outcome:
        context = attrs.evolve(
            self.base, state=self.state, session_id=message.session_id, summarize=partial(self.summarize, message)
        )
        with message.cancel:
            outcome = await run_call(
                name=message.name,
                tool_use_id=message.tool_use_id,
                arguments=message.arguments,
                toolbox=self.toolbox,
                context=context,
            )
            state = self.state
            for event in outcome.events:
                await self.recorder.record(TOOLS_STREAM, event)
                state = state.apply(event)
            self.state = state
            return outcome
        raise CallCancelled(f"{message.name} was stopped: the turn that asked for it went away")

    async def summarize(self, message: RunTool, prompt: str) -> str:
        """A short answer from the turn's model through the provider pool, which records it like any turn."""
        request = {
            "model": message.model,
            "max_tokens": SUMMARY_MAX_TOKENS,
            "messages": [{"role": "user", "content": prompt}],
            "stream": False,
        }
        body = orjson.dumps(request)
        reply, replies = trio.open_memory_channel[StreamItem](SUMMARY_REPLY_BUFFER)
        summary: Message | None = None
        cancel = trio.CancelScope()  # the pool enters it; cancelling it ends the summary's upstream request
        turn = Turn(
            request_id=f"{message.request_id}-summary-{next(self.summaries)}",
            session_id=SUMMARY_STREAM,
            request=request,
            body=body,
            headers={},
            reply=reply,
            cancel=cancel,
            received_ns=time.time_ns(),
        )
        try:
            async with replies:
                await self.providers.send(turn)
                async for item in replies:
                    if isinstance(item, ErrorReply):
                        raise SummaryFailed(item.body.decode("utf-8", "replace")[:500])
                    if isinstance(item, Whole):  # a non-streaming request gets its answer in one piece
                        summary = item.message
        finally:
            cancel.cancel()
        if summary is None:
            raise SummaryFailed("the provider pool stopped before the summary was complete")
        return "".join(str(block.get("text", "")) for block in summary["content"] if block.get("type") == "text")


class CallCancelled(Exception):
    """The asker cancelled the call; nobody reads this answer."""


class SummaryFailed(Exception):
    """The provider could not write the summary a tool asked for; the tool reports it as its error."""
