"""Conversation sessions: every turn is recorded under its session's stream, and the agent loop runs here.

In client mode with none of lynkr's tools offered, the session only gives each turn its place in the log and
hands it to the providers as it came: no extra hop, no copy.  When lynkr offers tools of its own (server mode,
or families switched on in client mode), the turn runs as a loop, in a task of its own:

1. the request goes upstream with lynkr's tools beside the client's;
2. the round streams to the client through a :class:`~lynkr.agent.relay.TurnRelay` (one message for the whole
   turn, lynkr's tool calls held back);
3. the calls lynkr owns run through the tool worker, one after another, with SSE pings meanwhile;
4. with only lynkr's calls in the round, their results go upstream in the next round; with calls for the
   client too, the turn ends there and the client answers its own; a bound (``POLICY_MAX_STEPS``,
   ``POLICY_MAX_TOOL_CALLS``) ends it with a message saying so.

The rounds the client never saw are recorded as ``agent.rounds`` (keyed by a hash of the message the client
received) and spliced back into its next request; the table is derived state, rebuilt from the log at start-up
(:data:`lynkr.agent.splice.SPLICES`) and handed over by the daemon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import attrs
import orjson
import trio

from lynkr.actors.messages import CacheMessage, ErrorReply, Events, Frames, RunTool, StreamItem, Turn, Whole
from lynkr.actors.providers import Message as ProviderMessage
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import Mailbox, ReplyTo, ask
from lynkr.agent.events import AGENT_STREAM, LoopEnded, RoundRan, RoundsKept
from lynkr.agent.loop import (
    Call,
    Limits,
    calls_of,
    not_run,
    stop_message,
    tool_calls_refusal,
    tool_note,
    tool_result_block,
)
from lynkr.agent.offer import Offer, OfferBook, offered_request
from lynkr.agent.relay import TurnRelay
from lynkr.agent.splice import SpliceTable, apply_splice_event, message_key, splice
from lynkr.config import Config
from lynkr.errors import LynkrError
from lynkr.events.catalog import LOOP_PROVIDER, RequestReceived, ResponseCompleted
from lynkr.events.store import EventStore
from lynkr.tools.base import ToolResult, ToolSpec
from lynkr.tools.runner import Outcome, Toolbox
from lynkr.wire.anthropic import MessageAssembler
from lynkr.wire.sse import encode_events
from lynkr.wire.types import StreamEvent

log = logging.getLogger("lynkr.session")

ROUND_REPLY_BUFFER = 32
PING_INTERVAL_S = 5.0


@attrs.frozen(kw_only=True)
class AgentSetup:
    """What the loop needs beyond the hot path: the tool worker, the tools it runs, and the settings."""

    config: Config
    tools: Mailbox[RunTool]
    specs: tuple[ToolSpec, ...]
    store: EventStore
    # The splice table rebuilt from the log (the projector's, live) and the last sequence number it has folded.
    splices: Callable[[], tuple[SpliceTable, int]]
    # The live toolbox, when tools come and go (the MCP bridge's): its specs are read again after each change.
    toolbox: Toolbox | None = None
    # Adds context to each request before it goes anywhere (the repo map, when LYNKR_REPO_MAP_IN_REQUESTS is on;
    # the skills block, when LYNKR_SKILLS_IN_REQUESTS is on); see ``chained``.
    context: Callable[[Turn], Awaitable[Turn]] | None = None


Context = Callable[[Turn], Awaitable[Turn]]


def chained(*steps: Context | None) -> Context | None:
    """One ``AgentSetup.context`` that runs each of ``steps`` given, in order (None when none is)."""
    present = [step for step in steps if step is not None]
    if len(present) <= 1:
        return present[0] if present else None

    async def context(turn: Turn) -> Turn:
        for step in present:
            turn = await step(turn)
        return turn

    return context


async def run(
    inbox: trio.MemoryReceiveChannel[Turn],
    *,
    providers: Mailbox[ProviderMessage],
    recorder: Recorder,
    agent: AgentSetup,
    cache: Mailbox[CacheMessage] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """With ``cache`` (the prompt cache is on), direct-path turns go there first; it hands misses to the pool."""
    sessions = _Sessions(providers=providers, recorder=recorder, agent=agent, cache=cache)
    table, folded = agent.splices()
    # The projector may not have folded the newest rounds yet (they are recorded durably just before this
    # incarnation's predecessor crashed, say): the agent stream after its position is read from the log.
    sessions.splices = await trio.to_thread.run_sync(load_splices, agent.store, table, folded)
    async with inbox, trio.open_nursery() as loops:
        task_status.started()
        async for turn in inbox:
            try:
                await sessions.take(turn, loops)
            except BaseException:
                turn.reply.close()  # the edge then answers "lost" at once instead of waiting for ever
                raise


def load_splices(store: EventStore, table: SpliceTable, folded: int) -> SpliceTable:
    """``table`` (the fold of the log up to ``folded``) with the splices recorded after it."""
    for recorded in store.read(folded + 1, stream=AGENT_STREAM, topics=(RoundsKept.TYPE,)):
        table = apply_splice_event(table, recorded.event)
    return table


class _Sessions:
    def __init__(
        self,
        *,
        providers: Mailbox[ProviderMessage],
        recorder: Recorder,
        agent: AgentSetup,
        cache: Mailbox[CacheMessage] | None,
    ) -> None:
        self.providers = providers
        self.cache = cache
        self.recorder = recorder
        self.agent = agent
        self.splices = SpliceTable()
        server_mode = agent.config.tool_execution_mode == "server"
        tools_config = agent.config.tools
        families = tools_config.server_mode_families if server_mode else tools_config.client_mode_families
        self.families = families
        self.server_mode = server_mode
        self.generation = agent.toolbox.registry.generation if agent.toolbox is not None else 0
        self._choose(agent.specs)

    def _choose(self, specs: Iterable[ToolSpec]) -> None:
        # The tools this mode may offer, chosen once per change: when there are none, turns take the hot path.
        self.mode_specs = tuple(spec for spec in specs if spec.family in self.families)
        self.offers = OfferBook(self.mode_specs, families=self.families, server_mode=self.server_mode)

    def _follow_the_toolbox(self) -> None:
        toolbox = self.agent.toolbox
        if toolbox is not None and toolbox.registry.generation != self.generation:
            self.generation = toolbox.registry.generation
            self._choose(toolbox.specs())

    async def take(self, turn: Turn, loops: trio.Nursery) -> None:
        await self.recorder.record(
            turn.session_id,
            RequestReceived.of(
                request_id=turn.request_id,
                session_id=turn.session_id,
                path="/v1/messages",
                headers=dict(turn.headers),
                request=turn.request,
                body=turn.body,
            ),
        )
        self._follow_the_toolbox()
        if self.agent.context is not None:
            turn = await self.agent.context(turn)
        if not self.mode_specs and not self.splices:
            await self._direct(turn)
            return
        request = turn.request
        spliced = splice(request.get("messages") or (), self.splices)
        if spliced is not None:
            request = {**request, "messages": spliced}
        offer = self.offers.offer(request.get("tools") or ())
        if offer.empty:
            await self._direct(turn if spliced is None else attrs.evolve(turn, request=request))
            return
        loops.start_soon(_AgentTurn(self, self.agent, turn, offered_request(request, offer), offer).run)

    async def _direct(self, turn: Turn) -> None:
        """A turn without lynkr's tools: the prompt cache answers it or hands it on (the loop's are never kept)."""
        if self.cache is not None:
            await self.cache.send(turn)
        else:
            await self.providers.send(turn)


class _AgentTurn:
    """One looping turn: its rounds, the tools lynkr runs for it, and the one message the client sees."""

    def __init__(self, sessions: _Sessions, agent: AgentSetup, turn: Turn, request: dict[str, Any], offer: Offer) -> None:
        self.sessions = sessions
        self.agent = agent
        self.turn = turn
        self.request = request
        self.offer = offer
        self.relay = TurnRelay(offer.owned)
        # A non-streaming client gets the relayed events folded into one message at the end.
        self.whole = None if turn.request.get("stream") else MessageAssembler()
        self.limits = Limits(
            max_steps=agent.config.policy.max_steps, max_tool_calls=agent.config.policy.max_tool_calls
        )
        self.canonical: list[dict[str, Any]] = []  # the turn's rounds as the upstream saw them
        self.pending: list[dict[str, Any]] = []  # lynkr's results for the client's next user message
        self.steps = 0
        self.tool_calls = 0

    async def run(self) -> None:
        turn = self.turn
        reason = "cancelled"
        async with turn.reply:
            with turn.cancel:
                try:
                    reason = await self._loop()
                except trio.BrokenResourceError:
                    turn.cancel.cancel()  # the edge stopped listening: same as a disconnect
                except LynkrError as error:  # a round the loop cannot go on from (a tool call's input not JSON)
                    reason = "error"
                    await self._send_error(error)
                except Exception as error:  # one turn's fault must not end the other turns in flight
                    log.exception("the agent loop of %s failed", turn.request_id)
                    reason = "error"
                    await self._send_error(LynkrError(f"lynkr's agent loop failed: {type(error).__name__}: {error}"))
            with trio.CancelScope(shield=True):
                await self.sessions.recorder.record(
                    turn.session_id,
                    LoopEnded(
                        session_id=turn.session_id,
                        request_id=turn.request_id,
                        steps=self.steps,
                        tool_calls=self.tool_calls,
                        reason=reason,
                    ),
                )

    async def _loop(self) -> str:
        while True:
            self.steps += 1
            self.relay.start_round()
            failure = await self._round()
            if failure is not None:
                await self._send(failure)
                return "error"
            message = self.relay.round_message()
            calls = calls_of(message, self.offer.owned)
            self.canonical.append({"role": "assistant", "content": message["content"]})
            stop_reason = message.get("stop_reason")
            if not calls.lynkr:
                await self._round_ran(calls.client, (), stop_reason)
                return await self._finish(stop_reason, "client_tools" if calls.client else "end_turn")
            over_budget = self.limits.over_tool_calls(self.tool_calls, len(calls.lynkr))
            if over_budget:
                results = [not_run(call, tool_calls_refusal(self.limits)) for call in calls.lynkr]
            else:
                results = [await self._run_tool(call) for call in calls.lynkr]
            await self._round_ran(calls.client, calls.lynkr, stop_reason)
            if calls.client:
                self.pending = results  # the client answers its own calls; ours join its answer
                return await self._finish("tool_use", "client_tools")
            if over_budget or self.limits.out_of_steps(self.steps):
                self.pending = results
                why = "max_tool_calls" if over_budget else "max_steps"
                await self._send(self.relay.note(stop_message(why, self.limits, self.steps, self.tool_calls)))
                return await self._finish("end_turn", why)
            self.canonical.append({"role": "user", "content": results})

    async def _round(self) -> ErrorReply | None:
        """Stream one model round to the client; an error reply when it failed."""
        # Rounds always stream from the pool: the loop must see each block as it comes to hold lynkr's back.
        request = {**self.request, "messages": [*self.request["messages"], *self.canonical], "stream": True}
        reply, replies = trio.open_memory_channel[StreamItem](ROUND_REPLY_BUFFER)
        cancel = trio.CancelScope()  # the pool enters it; cancelling it ends this round's upstream request
        try:
            async with replies:
                # Timed from now, so each round's completion records that round's upstream time, not the turn's.
                round_turn = attrs.evolve(
                    self.turn, request=request, reply=reply, cancel=cancel, events=True, received_ns=time.time_ns()
                )
                await self.sessions.providers.send(round_turn)
                finished = False
                async for item in replies:
                    if isinstance(item, ErrorReply):
                        return item
                    if not isinstance(item, Events):
                        raise LynkrError(f"the provider pool answered a loop round with {type(item).__name__}")
                    finished = finished or any(event["type"] == "message_stop" for event in item.events)
                    forwarded = self.relay.feed(item.events)
                    if forwarded:
                        await self._send(forwarded)
        finally:
            cancel.cancel()
        if not finished:
            error = LynkrError("lynkr lost this request: the provider pool stopped before answering; retry the request")
            return ErrorReply(status=error.status, body=orjson.dumps(error.body(self.turn.request_id)))
        return None

    async def _run_tool(self, call: Call) -> dict[str, Any]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_alive)
            result = await self._ask_tool(call)
            nursery.cancel_scope.cancel()
        self.tool_calls += 1
        if self.agent.config.tools.tool_notes:
            await self._send(self.relay.note(tool_note(call, result)))
        return tool_result_block(call.tool_use_id, result)

    async def _ask_tool(self, call: Call) -> ToolResult:
        turn = self.turn
        cancel = trio.CancelScope()

        def message(reply_to: ReplyTo[Outcome]) -> RunTool:
            return RunTool(
                session_id=turn.session_id,
                request_id=turn.request_id,
                model=str(turn.request.get("model", "")),
                tool_use_id=call.tool_use_id,
                name=call.name,
                arguments=call.arguments,
                reply_to=reply_to,
                cancel=cancel,
            )

        try:
            outcome: Outcome = await ask(self.agent.tools, message)
        except Exception as error:  # ActorGone when the worker crashed mid-call: the turn goes on regardless
            log.warning("tool call %s (%s) got no answer: %r", call.tool_use_id, call.name, error)
            return ToolResult(
                content=(
                    f"Error: lynkr's tool worker stopped while running {call.name} ({type(error).__name__}: "
                    f"{error}) and is being restarted. The call may have partly run: check its effect before "
                    "calling it again."
                ),
                is_error=True,
            )
        finally:
            cancel.cancel()  # a no-op once the call has answered; stops the tool if this turn went away first
        return outcome.result

    async def _keep_alive(self) -> None:
        """SSE pings while a tool runs: one at once, then every few seconds, so no proxy drops the stream."""
        while True:
            await self._send(cast(list[StreamEvent], [{"type": "ping"}]))
            await trio.sleep(PING_INTERVAL_S)

    async def _round_ran(self, client: tuple[Call, ...], lynkr: tuple[Call, ...], stop_reason: object) -> None:
        await self.sessions.recorder.record(
            self.turn.session_id,
            RoundRan(
                session_id=self.turn.session_id,
                request_id=self.turn.request_id,
                step=self.steps,
                tools=[call.name for call in lynkr],
                client_tools=[call.name for call in client],
                stop_reason=None if stop_reason is None else str(stop_reason),
            ),
        )

    async def _finish(self, stop_reason: object, reason: str) -> str:
        final = self.relay.finish(None if stop_reason is None else str(stop_reason))
        kept = None
        if len(self.canonical) > 1 or self.pending:
            # The client will echo back what it received; the canonical rounds stand for it.
            kept = RoundsKept(
                session_id=self.turn.session_id,
                request_id=self.turn.request_id,
                key=message_key(self._client_last_message(), self.relay.client_message()["content"]),
                messages=self.canonical,
                results=self.pending,
            )
            self.sessions.splices = apply_splice_event(self.sessions.splices, kept)
        # Each round's completion is recorded by the pool; this one is the message the client received, and the
        # last word for the request in replay.
        await self.sessions.recorder.record(
            self.turn.session_id,
            ResponseCompleted(
                request_id=self.turn.request_id,
                session_id=self.turn.session_id,
                provider=LOOP_PROVIDER,
                model=str(self.turn.request.get("model", "")),
                message=dict(self.relay.client_message()),
                latency_ms=(time.time_ns() - self.turn.received_ns) / 1e6,
            ),
        )
        if kept is not None:
            await self.sessions.recorder.record_durably(AGENT_STREAM, kept)
        # Last: a non-streaming client's edge answers as soon as the message is whole, and ends the turn's scope.
        await self._send(final)
        return reason

    def _client_last_message(self) -> object:
        """The message the client's copy of this turn's answer follows, as the client sent it (not spliced)."""
        messages = self.turn.request.get("messages") or [{}]
        return messages[-1].get("content")

    async def _send(self, events: list[StreamEvent] | ErrorReply) -> None:
        if isinstance(events, ErrorReply):
            await self.turn.reply.send(events)
        elif self.whole is None:
            await self.turn.reply.send(Frames(encode_events(events), events[-1]["type"] == "message_stop"))
        else:
            for event in events:
                self.whole.feed(event)
            if events[-1]["type"] == "message_stop":
                await self.turn.reply.send(Whole(self.whole.message()))

    async def _send_error(self, error: LynkrError) -> None:
        try:
            await self._send(ErrorReply(status=error.status, body=orjson.dumps(error.body(self.turn.request_id))))
        except trio.BrokenResourceError:
            pass

