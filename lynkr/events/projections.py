"""Pure folds over the event log: ``apply(state, recorded) -> state``.

The same functions serve live updates (the recorder's subscribers) and replay.  States are frozen attrs
records over immutable containers (tuples, :class:`~lynkr.events.pmap.PMap`, cons lists), so an older state
stays valid after a newer one is made from it.  Dicts that come straight from a payload (an assembled
message) are shared, not copied: treat them as read-only.

Every fold refuses an event whose sequence number is not above the last one it applied, before it changes
anything (:class:`OutOfOrderEvent`).  Sequence numbers must increase, not be consecutive: replaying one
stream through the by-stream index skips the others' numbers, and replay hands a fold that names its
``topics`` only the events of those topics.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import attrs
import msgpack  # type: ignore[import-untyped]

from lynkr.events.catalog import (
    CACHE_PROVIDER,
    LOOP_PROVIDER,
    RequestReceived,
    ResponseCompleted,
    ResponseFailed,
    SessionCompacted,
)
from lynkr.events.codec import CorruptRecord, event_of, payload_of
from lynkr.events.pmap import PMap
from lynkr.events.records import Payload, Recorded
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
    """A fold: the state to start from and the function that applies one recorded event to a state.

    ``topics``, when given, names every event topic that ``apply`` does anything with: ``apply`` must
    return the state it was given for any other event.  Replay and the projector then hand the fold only
    records of those topics, and replay skips the other topics' records without decoding them.

    ``stream``, when given, restricts the fold to that stream's records (the prompt cache's events, say, are
    lessons only under the ``cache`` stream): replay and the projector hand it nothing recorded elsewhere.
    """

    initial: S
    apply: Callable[[S, Recorded], S]
    topics: frozenset[str] | None = None
    # The same fold over ``(state, seq, time_ns, topic, payload)``, the record's upcast payload: replay uses it
    # when every fold has one, and then builds no event objects at all.
    apply_payload: Callable[[S, int, int, str, Payload], S] | None = None
    stream: str | None = None


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


# A session's turns as a persistent list, newest first: each node is
# (request_id, seq, time_ns, request brief or None, completion or None, failure or None, older node or None),
# where the brief is (model, stream, messages, tools, last_user_text) and the completion and failure are the
# payloads of ``response.completed`` and ``response.failed`` (plain dicts, shared with the event: read-only).
# A new turn is one new node in front; an answer, which nearly always belongs to one of the newest turns,
# copies only the nodes in front of its turn.  Everything older is shared between the states before and
# after.  Turn records are built only when someone reads ``Session.turns``.
_Brief = tuple[str, bool, int, "Sequence[str]", str]
_Node = tuple[str, int, int, "_Brief | None", "Payload | None", "Payload | None", "_Node | None"]


class PackedTurns:
    """A session's turns as a snapshot stored them, unpacked when first read or folded into.

    Loading a snapshot then costs a copy of bytes per session, not an object per turn: start-up with a
    large log stays fast, and sessions nobody touches are never unpacked.  The bytes are zlib-compressed
    msgpack: assembled messages shrink several times over, so a snapshot is read (and held) in a fraction
    of the bytes.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def unpack(self) -> _Node | None:
        newest: _Node | None = None
        for request_id, seq, time_ns, brief, completion, failure in msgpack.unpackb(zlib.decompress(self.data)):
            newest = (
                request_id,
                seq,
                time_ns,
                None if brief is None else (brief[0], brief[1], brief[2], brief[3], brief[4]),
                completion,
                failure,
                newest,
            )
        return newest


def pack_turns(newest: _Node | PackedTurns | None) -> bytes:
    """The bytes :class:`PackedTurns` unpacks: each turn, oldest first, with its answer's payload."""
    if isinstance(newest, PackedTurns):
        return newest.data
    turns: list[list[Any]] = []
    node = newest
    while node is not None:
        request_id, seq, time_ns, brief, completion, failure, node = node
        turns.append([request_id, seq, time_ns, brief, completion, failure])
    turns.reverse()
    return zlib.compress(msgpack.packb(turns, use_bin_type=True), 1)


def _nodes(newest: _Node | PackedTurns | None) -> _Node | None:
    return newest.unpack() if isinstance(newest, PackedTurns) else newest


def _turns_of(newest: _Node | PackedTurns | None) -> tuple[Turn, ...]:
    turns: list[Turn] = []
    node = _nodes(newest)
    while node is not None:
        request_id, seq, time_ns, brief, completion, failure, node = node
        turns.append(
            Turn(
                request_id=request_id,
                seq=seq,
                time_ns=time_ns,
                request=None if brief is None else RequestSummary(
                    model=brief[0], stream=brief[1], messages=brief[2], tools=tuple(brief[3]),
                    last_user_text=brief[4],
                ),
                message=None if completion is None else completion["message"],
                provider=None if completion is None else completion["provider"],
                latency_ms=None if completion is None else completion["latency_ms"],
                failure=None if failure is None else TurnFailure(
                    status=failure["status"], error_type=failure["error_type"], message=failure["message"]
                ),
            )
        )
    turns.reverse()
    return tuple(turns)


def _turns_repr(newest: _Node | PackedTurns | None) -> str:
    return repr(_turns_of(newest))


class ModelUse(NamedTuple):
    """What one model did for a session through one provider: answers, tokens, and time spent upstream.

    ``model`` is the name the upstream answered as (the assembled message's ``model``), which is what prices
    are matched on.  Prompt-cache hits count under the provider ``prompt-cache``: served without an upstream.
    A named tuple: cheap to make, and it reads and compares as the plain row a snapshot stores.
    """

    provider: str
    model: str
    answers: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    upstream_ms: float

    def as_row(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ModelUse:
        provider, model, answers, input_tokens, output_tokens, cache_read, cache_creation, upstream_ms = row
        return cls(str(provider), str(model), int(answers), int(input_tokens), int(output_tokens), int(cache_read),
                   int(cache_creation), float(upstream_ms))


# What a session spent, as a persistent list, newest first: each node is
# (provider, model, usage or None, latency_ms, older), one per upstream answer, and the list ends in the
# aggregated ModelUse tuple of everything older (what a snapshot or a compaction summary stored; () for none).
# The fold only puts a node in front, reusing the payload's own objects; the sums are made when someone reads
# Session.uses, so that counting costs the fold a tuple per answer, not arithmetic and a record.
_Spent = tuple[Any, ...]


def _uses_of(spent: _Spent) -> tuple[ModelUse, ...]:
    nodes: list[_Spent] = []
    while spent and type(spent[0]) is str:
        nodes.append(spent)
        spent = spent[4]
    uses: dict[tuple[str, str], ModelUse] = {(use.provider, use.model): use for use in spent}
    for provider, model, usage, latency_ms, _ in reversed(nodes):
        usage = usage if isinstance(usage, dict) else {}
        use = uses.get((provider, model)) or ModelUse(provider, model, 0, 0, 0, 0, 0, 0.0)
        uses[(provider, model)] = ModelUse(
            provider,
            model,
            use.answers + 1,
            use.input_tokens + _tokens(usage.get("input_tokens")),
            use.output_tokens + _tokens(usage.get("output_tokens")),
            use.cache_read_tokens + _tokens(usage.get("cache_read_input_tokens")),
            use.cache_creation_tokens + _tokens(usage.get("cache_creation_input_tokens")),
            use.upstream_ms + (0.0 if provider == CACHE_PROVIDER else float(latency_ms)),
        )
    return tuple(uses.values())


def _tokens(value: Any) -> int:
    return value if type(value) is int else 0


# Session and SessionsState are not keyword-only: the fold builds one of each per event, and positional
# arguments are cheaper.
@attrs.frozen
class Session:
    """One client session: its turns, what it used, and when.

    ``turn_count`` counts every turn, including those a compaction dropped (``compacted``): then ``turns`` holds
    only the turns recorded since, while ``uses``, ``turn_count`` and the times still cover the whole session.
    """

    session_id: str
    first_seq: int
    last_seq: int
    first_time_ns: int
    last_time_ns: int
    # Compared (and shown) as the turns they make; not hashed, since turns hold dicts.
    newest_turn: _Node | PackedTurns | None = attrs.field(default=None, eq=_turns_of, hash=False, repr=_turns_repr)
    turn_count: int = 0
    # Compared (and shown) as the uses they sum to.
    spent: _Spent = attrs.field(default=(), eq=_uses_of, hash=False, repr=lambda spent: repr(_uses_of(spent)))
    compacted: bool = False

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The session's turns, oldest first (built on each call: keep the result if you need it twice)."""
        return _turns_of(self.newest_turn)

    @property
    def uses(self) -> tuple[ModelUse, ...]:
        """What the session used, by provider and model in the order first used (summed on each call)."""
        return _uses_of(self.spent)


@attrs.frozen
class SessionsState:
    sessions: PMap[str, Session] = attrs.field(factory=PMap)
    last_seq: int = 0  # of the newest request, response or failure applied


_REQUEST, _COMPLETED, _FAILED = RequestReceived.TYPE, ResponseCompleted.TYPE, ResponseFailed.TYPE
_COMPACTED = SessionCompacted.TYPE
_SESSION_TOPICS = frozenset({_REQUEST, _COMPLETED, _FAILED, _COMPACTED})


def apply_session_event(state: SessionsState, recorded: Recorded) -> SessionsState:
    """Fold requests, completed responses and failures into per-session turns; other events change nothing."""
    event = recorded.event
    return apply_session_payload(state, recorded.seq, recorded.time_ns, event.TYPE, payload_of(event))


def apply_session_payload(state: SessionsState, seq: int, time_ns: int, topic: str, payload: Payload) -> SessionsState:
    """:func:`apply_session_event` over a record's upcast payload, as replay reads it (no event object built).

    A payload without the fields its topic has (a damaged record that still decoded) changes nothing.
    """
    if seq <= state.last_seq:
        raise OutOfOrderEvent(seq, state.last_seq)
    if topic not in _SESSION_TOPICS:
        return state
    try:
        session_id = payload["session_id"]
        sessions = state.sessions
        if topic == _COMPACTED:
            return SessionsState(sessions.set(session_id, _summarised(payload, seq)), seq)
        session = sessions.get(session_id)
        spent: _Spent
        if session is None:
            newest, count, spent = None, 0, ()
        else:
            newest, count, spent = session.newest_turn, session.turn_count, session.spent
        if isinstance(newest, PackedTurns):
            newest = newest.unpack()
        if topic == _REQUEST:
            brief = (payload["model"], payload["stream"], payload["messages"], payload["tools"],
                     payload["last_user_text"])
            newest = (payload["request_id"], seq, time_ns, brief, None, None, newest)
            count += 1
        else:
            newest, added = _answered(newest, payload["request_id"], topic == _COMPLETED, payload, seq, time_ns)
            count += added
            if topic == _COMPLETED:
                provider = payload["provider"]
                # The loop's own completion repeats what its rounds (each counted as it came) produced.
                if provider != LOOP_PROVIDER:
                    message = payload["message"]
                    spent = (provider, message.get("model") or payload["model"], message.get("usage"),
                             payload["latency_ms"], spent)
    except (KeyError, TypeError, AttributeError, ValueError):
        return state
    if session is None:
        session = Session(session_id, seq, seq, time_ns, time_ns, newest, count, spent)
    else:
        session = Session(
            session_id, session.first_seq, seq, session.first_time_ns, time_ns, newest, count, spent, session.compacted
        )
    return SessionsState(sessions.set(session_id, session), seq)


def _summarised(summary: Payload, seq: int) -> Session:
    """A compacted session as its ``session.compacted`` summary describes it (it replaces every earlier record)."""
    uses = tuple(ModelUse.from_row(row) for row in summary["uses"])
    return Session(
        summary["session_id"], summary["first_seq"], seq, summary["first_time_ns"], summary["last_time_ns"], None,
        int(summary["turns"]), uses, True,
    )


SESSIONS: Projection[SessionsState] = Projection(
    initial=SessionsState(),
    apply=apply_session_event,
    topics=_SESSION_TOPICS,
    apply_payload=apply_session_payload,
)


def encode_sessions(state: SessionsState) -> bytes:
    """The sessions state as snapshot bytes (a session's turns stay packed if they were never unpacked)."""
    sessions = [
        [s.session_id, s.first_seq, s.last_seq, s.first_time_ns, s.last_time_ns, pack_turns(s.newest_turn),
         s.turn_count, [use.as_row() for use in s.uses], s.compacted]
        for s in state.sessions.values()
    ]
    encoded: bytes = msgpack.packb([state.last_seq, sessions], use_bin_type=True)
    return encoded


def decode_sessions(data: bytes | memoryview) -> SessionsState:
    """What :func:`encode_sessions` encoded; raises ``ValueError`` (or msgpack's errors) on bytes it did not."""
    last_seq, sessions = msgpack.unpackb(data)
    mapping: PMap[str, Session] = PMap()
    for session_id, first_seq, session_last_seq, first_time_ns, last_time_ns, packed, count, uses, compacted in sessions:
        if not (type(session_id) is str and type(packed) is bytes and type(count) is int):
            raise ValueError("a session in the snapshot has the wrong shape")
        mapping = mapping.set(
            session_id,
            Session(
                session_id, first_seq, session_last_seq, first_time_ns, last_time_ns, PackedTurns(packed), count,
                tuple(ModelUse.from_row(row) for row in uses), bool(compacted),
            ),
        )
    return SessionsState(mapping, int(last_seq))


def _answered(
    newest: _Node | None, request_id: str, completed: bool, answer: Payload, seq: int, time_ns: int
) -> tuple[_Node, int]:
    """The turn list with ``answer`` applied to its request's turn (or to a new turn when it has none), and
    the number of turns that added (0 or 1)."""
    newer: list[_Node] = []
    node = newest
    while node is not None and node[0] != request_id:
        newer.append(node)
        node = node[6]
    added = 0
    if node is None:
        # The request's record is missing (skipped as corrupt, or before a snapshot): keep the answer anyway.
        node = (request_id, seq, time_ns, None, None, None, newest)
        newer = []
        added = 1
    if completed:
        changed: _Node = (node[0], node[1], node[2], node[3], answer, node[5], node[6])
    else:
        changed = (node[0], node[1], node[2], node[3], node[4], answer, node[6])
    for above in reversed(newer):
        changed = (above[0], above[1], above[2], above[3], above[4], above[5], changed)
    return changed, added


# Replay


def replay(
    store: EventStore,
    folds: Mapping[str, Projection[Any]],
    *,
    start: int = 1,
    stream: str | None = None,
    progress: Progress | None = None,
    resume: Mapping[str, tuple[Any, int]] | None = None,
    end: int | None = None,
) -> dict[str, Any]:
    """Fold every event from ``start`` up to ``end`` (the log's end at call time) into each projection.

    ``resume`` gives some folds a state to start from and the last sequence number that state has folded
    (a snapshot's): each of those folds only the events after it, and the read starts at the earliest.
    Returns the final state of each fold under its name.  ``progress(done, total)`` is called now and
    then, counted in sequence numbers, and once at the end with ``done == total``.  Events appended while
    replaying are left for live updates, so the result is the state as of one point in the log.  When
    every fold names its topics, records of other topics are not even decoded, and each record goes only
    to the folds of its topic (and stream), so a fold costs nothing for the records it does not read.

    Folds that resume at different points split the read into segments, each reading only the topics of
    the folds that still need it: a state without a snapshot (a new one, or one whose schema changed) reads
    the log from the start for its own topics alone, not the records the other states' snapshots hold.
    """
    resume = resume or {}
    states = {name: resume[name][0] if name in resume else projection.initial for name, projection in folds.items()}
    after = {name: resume[name][1] if name in resume else start - 1 for name in folds}
    if folds:
        start = min(after.values()) + 1
    if end is None:
        end = store.last_seq()
    segments = _segments(folds, after, end)
    total = max(0, end - start + 1)
    last_seq = start - 1
    next_report = last_seq + _PROGRESS_EVERY
    if progress is not None:
        progress(0, total)
    # Per topic, the folds that read it: worked out once per topic, not once per record.  A fold without an
    # ``apply_payload`` is handed an event built from the payload, only for the records of its own topics, so
    # one such fold does not make every other fold pay for event objects.
    routes: dict[str, list[tuple[str, Any, int, str | None, bool]]] = {}

    def route(topic: str) -> list[tuple[str, Any, int, str | None, bool]]:
        found = routes[topic] = [
            (
                name,
                projection.apply if projection.apply_payload is None else projection.apply_payload,
                after[name],
                projection.stream,
                projection.apply_payload is None,
            )
            for name, projection in folds.items()
            if projection.topics is None or topic in projection.topics
        ]
        return found

    # A fold builds a great many long-lived objects and no reference cycles; left on, the cyclic garbage
    # collector rescans the growing state again and again, which halves the replay rate.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for first, last, topics in segments:
            for seq, time_ns, topic, from_stream, payload in store.read_payloads(first, stream=stream, topics=topics):
                if seq > last:
                    break
                if seq <= last_seq:
                    raise OutOfOrderEvent(seq, last_seq)
                targets = routes.get(topic)
                for name, apply, folded, only, over_events in route(topic) if targets is None else targets:
                    if seq > folded and (only is None or only == from_stream):
                        if not over_events:
                            states[name] = apply(states[name], seq, time_ns, topic, payload)
                            continue
                        try:
                            event = event_of(seq, topic, payload, store)
                        except CorruptRecord:
                            continue  # as reading events would: a payload that does not fit its event is skipped
                        states[name] = apply(states[name], Recorded(seq=seq, time_ns=time_ns, stream=from_stream, event=event))
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


def _segments(
    folds: Mapping[str, Projection[Any]], after: Mapping[str, int], end: int
) -> list[tuple[int, int, frozenset[str] | None]]:
    """``(first seq, last seq, topics to read)`` for each stretch of the log read by the same folds."""
    points = sorted(set(after.values()))
    segments: list[tuple[int, int, frozenset[str] | None]] = []
    for position, point in enumerate(points):
        last = points[position + 1] if position + 1 < len(points) else end
        if point + 1 > min(last, end):
            continue
        wanted = [projection.topics for name, projection in folds.items() if after[name] <= point]
        topics = None if None in wanted else frozenset[str]().union(*(t for t in wanted if t is not None))
        segments.append((point + 1, min(last, end), topics))
    return segments
