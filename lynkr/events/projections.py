"""Pure folds over the event log: ``apply(state, recorded) -> state``.

The same functions serve live updates (the recorder's subscribers) and replay.  States are frozen attrs
records over immutable containers (tuples, :class:`~lynkr.events.pmap.PMap`), so an older state stays valid
after a newer one is made from it.  Dicts that come straight from a payload (an assembled message) are
shared, not copied: treat them as read-only.

Every fold refuses an event whose sequence number is not above the last one it applied, before it changes
anything (:class:`OutOfOrderEvent`).  Sequence numbers must increase, not be consecutive: replaying one
stream through the by-stream index skips the others' numbers.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from lynkr.events.catalog import RequestReceived, ResponseCompleted, ResponseFailed
from lynkr.events.pmap import PMap
from lynkr.events.records import Recorded
from lynkr.events.store import EventStore

S = TypeVar("S")

Progress = Callable[[int, int], None]

_PROGRESS_EVERY = 8192


class OutOfOrderEvent(Exception):
    """An event arrived whose sequence number is not above the last one applied."""

    def __init__(self, seq: int, last_seq: int) -> None:
        super().__init__(f"event {seq} arrived after event {last_seq}; events must be applied in order")
        self.seq = seq
        self.last_seq = last_seq


@attrs.frozen(kw_only=True)
class Projection(Generic[S]):
    """A fold: the state to start from and the function that applies one recorded event to a state."""

    initial: S
    apply: Callable[[S, Recorded], S]


# Sessions


@attrs.frozen(kw_only=True)
class RequestSummary:
    """What a client asked for, in brief: enough to recognise a turn when replaying it."""

    model: str
    stream: bool
    messages: int
    tools: tuple[str, ...]
    last_user_text: str  # the newest user message's text, cut to USER_TEXT_LIMIT


@attrs.frozen(kw_only=True)
class TurnFailure:
    status: int
    error_type: str
    message: str


@attrs.frozen(kw_only=True)
class Turn:
    """One request and what became of it."""

    request_id: str
    seq: int  # of the request, or of the first event seen for it when the request record is missing
    time_ns: int
    request: RequestSummary | None
    message: dict[str, Any] | None = None  # the assembled message as the client received it
    provider: str | None = None
    latency_ms: float | None = None
    failure: TurnFailure | None = None

    @property
    def finished(self) -> bool:
        return self.message is not None or self.failure is not None


@attrs.frozen(kw_only=True)
class Session:
    session_id: str
    turns: tuple[Turn, ...]
    first_seq: int
    last_seq: int
    first_time_ns: int
    last_time_ns: int


@attrs.frozen(kw_only=True)
class SessionsState:
    sessions: PMap[str, Session] = attrs.field(factory=PMap)
    last_seq: int = 0


def apply_session_event(state: SessionsState, recorded: Recorded) -> SessionsState:
    """Fold requests, completed responses and failures into per-session turns."""
    if recorded.seq <= state.last_seq:
        raise OutOfOrderEvent(recorded.seq, state.last_seq)
    event = recorded.event
    if not isinstance(event, (RequestReceived, ResponseCompleted, ResponseFailed)):
        return SessionsState(sessions=state.sessions, last_seq=recorded.seq)
    session_id = event.session_id
    session = state.sessions.get(session_id)
    turns = _turns_after(session.turns if session is not None else (), event, recorded)
    if session is None:
        session = Session(
            session_id=session_id,
            turns=turns,
            first_seq=recorded.seq,
            last_seq=recorded.seq,
            first_time_ns=recorded.time_ns,
            last_time_ns=recorded.time_ns,
        )
    else:
        session = Session(
            session_id=session_id,
            turns=turns,
            first_seq=session.first_seq,
            last_seq=recorded.seq,
            first_time_ns=session.first_time_ns,
            last_time_ns=recorded.time_ns,
        )
    return SessionsState(sessions=state.sessions.set(session_id, session), last_seq=recorded.seq)


SESSIONS: Projection[SessionsState] = Projection(initial=SessionsState(), apply=apply_session_event)


def _turns_after(
    turns: tuple[Turn, ...],
    event: RequestReceived | ResponseCompleted | ResponseFailed,
    recorded: Recorded,
) -> tuple[Turn, ...]:
    if isinstance(event, RequestReceived):
        turn = Turn(
            request_id=event.request_id,
            seq=recorded.seq,
            time_ns=recorded.time_ns,
            request=summarize_request(event),
        )
        return (*turns, turn)
    if isinstance(event, ResponseCompleted):
        completed = event
        return _replace_turn(
            turns,
            event.request_id,
            recorded,
            lambda turn: Turn(
                request_id=turn.request_id,
                seq=turn.seq,
                time_ns=turn.time_ns,
                request=turn.request,
                message=completed.message,
                provider=completed.provider,
                latency_ms=completed.latency_ms,
                failure=turn.failure,
            ),
        )
    failure = TurnFailure(status=event.status, error_type=event.error_type, message=event.message)
    return _replace_turn(
        turns,
        event.request_id,
        recorded,
        lambda turn: Turn(
            request_id=turn.request_id,
            seq=turn.seq,
            time_ns=turn.time_ns,
            request=turn.request,
            message=turn.message,
            provider=turn.provider,
            latency_ms=turn.latency_ms,
            failure=failure,
        ),
    )


def _replace_turn(
    turns: tuple[Turn, ...], request_id: str, recorded: Recorded, change: Callable[[Turn], Turn]
) -> tuple[Turn, ...]:
    # Answers usually follow their request closely: search from the newest turn.
    for index in range(len(turns) - 1, -1, -1):
        if turns[index].request_id == request_id:
            return (*turns[:index], change(turns[index]), *turns[index + 1 :])
    # The request's record is missing (skipped as corrupt, or before a snapshot): keep the answer anyway.
    orphan = Turn(request_id=request_id, seq=recorded.seq, time_ns=recorded.time_ns, request=None)
    return (*turns, change(orphan))


def summarize_request(event: RequestReceived) -> RequestSummary:
    return RequestSummary(
        model=event.model,
        stream=event.stream,
        messages=event.messages,
        tools=event.tools,
        last_user_text=event.last_user_text,
    )


# Replay


def replay(
    store: EventStore,
    folds: Mapping[str, Projection[Any]],
    *,
    start: int = 1,
    stream: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fold every event from ``start`` up to the log's end at call time into each projection.

    Returns the final state of each fold under its name.  ``progress(done, total)`` is called now and
    then, counted in sequence numbers, and once at the end with ``done == total``.  Events appended while
    replaying are left for live updates, so the result is the state as of one point in the log.
    """
    states = {name: projection.initial for name, projection in folds.items()}
    applies = [(name, projection.apply) for name, projection in folds.items()]
    end = store.last_seq()
    total = max(0, end - start + 1)
    last_seq = start - 1
    next_report = last_seq + _PROGRESS_EVERY
    if progress is not None:
        progress(0, total)
    # A fold builds a great many long-lived objects and no reference cycles; left on, the cyclic garbage
    # collector rescans the growing state again and again, which halves the replay rate.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for recorded in store.read(start, stream=stream):
            seq = recorded.seq
            if seq > end:
                break
            if seq <= last_seq:
                raise OutOfOrderEvent(seq, last_seq)
            for name, apply in applies:
                states[name] = apply(states[name], recorded)
            last_seq = seq
            if progress is not None and seq >= next_report:
                progress(seq - start + 1, total)
                next_report = seq + _PROGRESS_EVERY
    finally:
        if collecting:
            gc.enable()
    if progress is not None:
        progress(total, total)
    return states
