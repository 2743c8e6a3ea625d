"""One session's turns, gathered from the log with everything that happened for each request.

A session's own stream holds its requests, upstream attempts, raw answers, completions and agent-loop rounds, so
it is read through the by-stream index alone.  Three kinds of facts live on shared streams, keyed by request id
or tool-use id rather than by session: cache hits (``cache``), tool runs (``tools``) and the server-run rounds
kept for the splice (``agent``).  Each of those is read through its own stream's index, from the session's first
sequence number on (nothing of this session can come earlier) and with a topic filter, so the records of other
kinds on those streams (a cache entry's whole message, a file's bytes before a write) are passed over undecoded.
That costs a walk of those three streams' index since the session began, never a scan of the whole log; a
by-request index would save that walk but add a write to every record of every session, which replay is too
rare to pay for.
"""

from __future__ import annotations

from typing import Any

import attrs

from lynkr.agent.events import AGENT_STREAM, TOOLS_STREAM, LoopEnded, RoundRan, RoundsKept
from lynkr.cache.events import CACHE_STREAM, CacheHit
from lynkr.events.catalog import RequestReceived, ResponseCompleted, ResponseFailed, UpstreamAttempted
from lynkr.events.store import EventStore
from lynkr.tools.events import ToolRan, ToolRefused
from lynkr.upstream.recording import UpstreamResponded


@attrs.define
class TurnLog:
    """Everything the log holds about one request, in the order it was recorded (``seq`` beside each)."""

    request_id: str
    seq: int
    time_ns: int
    request: RequestReceived | None = None
    # each attempt with its raw answer: recorded just before it, by the same task (none for an error status)
    attempts: list[tuple[int, UpstreamAttempted, UpstreamResponded | None]] = attrs.field(factory=list)
    answers: list[tuple[int, UpstreamResponded]] = attrs.field(factory=list)
    last_seq: int = 0  # of this request's newest event read so far
    completions: list[tuple[int, ResponseCompleted]] = attrs.field(factory=list)
    failure: ResponseFailed | None = None
    rounds: list[RoundRan] = attrs.field(factory=list)
    loop: LoopEnded | None = None
    cache_hit: CacheHit | None = None
    tool_runs: list[ToolRan | ToolRefused] = attrs.field(factory=list)
    # lynkr's own tool results by tool_use id, from the rounds kept for the splice (what the model was sent)
    tool_results: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    @property
    def response(self) -> ResponseCompleted | None:
        """The last word on this request: the message the client received."""
        return self.completions[-1][1] if self.completions else None


@attrs.frozen(kw_only=True)
class SessionLog:
    session_id: str
    turns: list[TurnLog]
    events: int  # read from the session's own stream


def gather(store: EventStore, session_id: str) -> SessionLog:
    """The session's turns, oldest first; request bodies and raw answers stay readable while ``store`` is open."""
    turns: dict[str, TurnLog] = {}
    first_seq: int | None = None
    events = 0

    def turn_of(request_id: str, seq: int, time_ns: int) -> TurnLog:
        found = turns.get(request_id)
        if found is None:
            found = turns[request_id] = TurnLog(request_id=request_id, seq=seq, time_ns=time_ns)
        return found

    for recorded in store.read(stream=session_id):
        events += 1
        event = recorded.event
        request_id = getattr(event, "request_id", None)
        if not isinstance(request_id, str):
            continue
        if first_seq is None:
            first_seq = recorded.seq
        turn = turn_of(request_id, recorded.seq, recorded.time_ns)
        previous, turn.last_seq = turn.last_seq, recorded.seq
        if isinstance(event, RequestReceived):
            turn.request = event
        elif isinstance(event, UpstreamAttempted):
            answer = turn.answers[-1][1] if turn.answers and turn.answers[-1][0] == previous else None
            if answer is not None and (answer.provider, answer.attempt) != (event.provider, event.attempt):
                answer = None
            turn.attempts.append((recorded.seq, event, answer))
        elif isinstance(event, UpstreamResponded):
            turn.answers.append((recorded.seq, event))
        elif isinstance(event, ResponseCompleted):
            turn.completions.append((recorded.seq, event))
        elif isinstance(event, ResponseFailed):
            turn.failure = event
        elif isinstance(event, RoundRan):
            turn.rounds.append(event)
        elif isinstance(event, LoopEnded):
            turn.loop = event
    if first_seq is not None:
        _add_shared_facts(store, session_id, first_seq, turns)
    return SessionLog(
        session_id=session_id, turns=sorted(turns.values(), key=lambda turn: turn.seq), events=events
    )


def _add_shared_facts(store: EventStore, session_id: str, first_seq: int, turns: dict[str, TurnLog]) -> None:
    for recorded in store.read(first_seq, stream=CACHE_STREAM, topics=(CacheHit.TYPE,)):
        hit = recorded.event
        if isinstance(hit, CacheHit) and hit.session_id == session_id and hit.request_id in turns:
            turns[hit.request_id].cache_hit = hit
    owner: dict[str, TurnLog] = {}  # tool_use id -> the turn whose answer called it
    for turn in turns.values():
        for _, completion in turn.completions:
            for block in completion.message.get("content") or ():
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    owner[str(block.get("id"))] = turn
    for recorded in store.read(first_seq, stream=AGENT_STREAM, topics=(RoundsKept.TYPE,)):
        kept = recorded.event
        if not isinstance(kept, RoundsKept) or kept.session_id != session_id or kept.request_id not in turns:
            continue
        turn = turns[kept.request_id]
        for message in kept.messages:
            for block in message.get("content") or ():
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    owner[str(block.get("id"))] = turn
                elif block.get("type") == "tool_result":
                    turn.tool_results[str(block.get("tool_use_id"))] = block
        for block in kept.results:
            turn.tool_results[str(block.get("tool_use_id"))] = block
    ordered = sorted(turns.values(), key=lambda turn: turn.seq)
    for recorded in store.read(first_seq, stream=TOOLS_STREAM, topics=(ToolRan.TYPE, ToolRefused.TYPE)):
        run = recorded.event
        if not isinstance(run, (ToolRan, ToolRefused)) or run.session_id != session_id:
            continue
        turn_for_run = owner.get(run.tool_use_id) or _latest_before(ordered, recorded.seq)
        if turn_for_run is not None:
            turn_for_run.tool_runs.append(run)


def _latest_before(turns: list[TurnLog], seq: int) -> TurnLog | None:
    """A run whose call no recorded message names (a round that never completed) goes with the turn under way."""
    latest = None
    for turn in turns:
        if turn.seq > seq:
            break
        latest = turn
    return latest
