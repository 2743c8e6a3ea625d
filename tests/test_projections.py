from __future__ import annotations

import functools
import gc
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lynkr.events.catalog import USER_TEXT_LIMIT, DaemonStopped, RequestReceived, ResponseCompleted, ResponseFailed, UpstreamAttempted
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.pmap import PMap
from lynkr.events.projections import (
    SESSIONS,
    OutOfOrderEvent,
    Projection,
    RequestSummary,
    SessionsState,
    TurnFailure,
    apply_session_event,
    replay,
)
from lynkr.events.records import Event, Recorded


def request(request_id: str, session_id: str = "sess", text: str = "hello", **body: Any) -> RequestReceived:
    request = {"model": "claude-sonnet-4-5", "stream": True, "messages": [{"role": "user", "content": text}], **body}
    return RequestReceived.of(
        request_id=request_id,
        session_id=session_id,
        path="/v1/messages",
        headers={},
        request=request,
        body=orjson.dumps(request),
    )


def completed(request_id: str, session_id: str = "sess", text: str = "hi") -> ResponseCompleted:
    return ResponseCompleted(
        request_id=request_id,
        session_id=session_id,
        provider="ollama",
        model="llama3",
        message={"role": "assistant", "content": [{"type": "text", "text": text}]},
        latency_ms=10.0,
    )


def failed(request_id: str, session_id: str = "sess") -> ResponseFailed:
    return ResponseFailed(
        request_id=request_id, session_id=session_id, status=529, error_type="overloaded_error", message="busy"
    )


def attempted(request_id: str) -> UpstreamAttempted:
    return UpstreamAttempted(
        request_id=request_id, provider="ollama", attempt=1, status=200, latency_ms=1.0, error=None, will_retry=False
    )


def fold(events: list[Event], state: SessionsState | None = None) -> SessionsState:
    state = state or SessionsState()
    for offset, event in enumerate(events, start=state.last_seq + 1):
        state = apply_session_event(state, Recorded(seq=offset, time_ns=offset * 1000, stream="s", event=event))
    return state


# PMap


def test_pmap_set_returns_a_new_map_and_leaves_the_old_one_alone() -> None:
    empty: PMap[str, int] = PMap()
    one = empty.set("a", 1)
    two = one.set("b", 2)
    changed = two.set("a", 10)
    assert (dict(empty), dict(one), dict(two), dict(changed)) == ({}, {"a": 1}, {"a": 1, "b": 2}, {"a": 10, "b": 2})
    assert len(changed) == 2
    assert changed.get("missing") is None
    with pytest.raises(KeyError):
        changed["missing"]


def test_pmap_holds_many_keys_including_colliding_hashes() -> None:
    m: PMap[int, int] = PMap()
    keys = list(range(5000)) + [n << 12 for n in range(2, 200)]  # same low 12 bits: same leaf
    for key in keys:
        m = m.set(key, key * 2)
    assert len(m) == len(keys)
    assert all(m[key] == key * 2 for key in keys)
    assert sorted(m) == sorted(keys)
    assert m == {key: key * 2 for key in keys}


def test_pmap_delete_returns_a_new_map_without_the_key_and_leaves_the_old_one_alone() -> None:
    m: PMap[int, int] = PMap()
    keys = [1, 2, 3 << 12, 4 << 12]  # the last two share a leaf
    for key in keys:
        m = m.set(key, key)
    smaller = m.delete(3 << 12).delete(1)
    assert dict(smaller) == {2: 2, 4 << 12: 4 << 12} and len(smaller) == 2
    assert len(m) == 4 and m[3 << 12] == 3 << 12
    assert smaller.delete(99) is smaller
    assert len(smaller.delete(2).delete(4 << 12)) == 0 and list(smaller.delete(2).delete(4 << 12)) == []


# Sessions


def test_a_request_and_its_response_make_one_turn() -> None:
    state = fold([request("r1", text="what is 2+2?", tools=[{"name": "Read"}, {"name": "Bash"}]), completed("r1")])
    (turn,) = state.sessions["sess"].turns
    assert turn.request_id == "r1"
    assert turn.seq == 1
    assert turn.request == RequestSummary(
        model="claude-sonnet-4-5", stream=True, messages=1, tools=("Read", "Bash"), last_user_text="what is 2+2?"
    )
    assert turn.message == {"role": "assistant", "content": [{"type": "text", "text": "hi"}]}
    assert turn.provider == "ollama"
    assert turn.finished


def test_a_failure_ends_its_turn() -> None:
    state = fold([request("r1"), failed("r1")])
    (turn,) = state.sessions["sess"].turns
    assert turn.failure == TurnFailure(status=529, error_type="overloaded_error", message="busy")
    assert turn.message is None


def test_turns_are_ordered_by_request_and_answers_find_their_turn() -> None:
    state = fold([request("r1"), request("r2"), completed("r2", text="second"), completed("r1", text="first")])
    turns = state.sessions["sess"].turns
    assert [t.request_id for t in turns] == ["r1", "r2"]
    assert [t.message and t.message["content"][0]["text"] for t in turns] == ["first", "second"]


def test_sessions_are_kept_apart() -> None:
    state = fold([request("r1", "a"), request("r2", "b"), completed("r1", "a")])
    assert set(state.sessions) == {"a", "b"}
    assert state.sessions["a"].turns[0].finished
    assert not state.sessions["b"].turns[0].finished
    assert (state.sessions["a"].first_seq, state.sessions["a"].last_seq) == (1, 3)


def test_an_answer_without_its_request_still_becomes_a_turn() -> None:
    (turn,) = fold([completed("lost")]).sessions["sess"].turns
    assert turn.request is None and turn.finished


def test_other_events_leave_the_state_as_it_was() -> None:
    before = fold([request("r1")])
    after = fold([attempted("r1"), DaemonStopped(reason="x")], before)
    assert after is before
    assert after.last_seq == 1


def test_summary_tolerates_odd_bodies_and_cuts_long_text() -> None:
    odd_body = {"model": "m", "messages": "not a list", "tools": [1, {"no": "name"}]}
    odd = RequestReceived.of(
        request_id="r", session_id="s", path="/v1/messages", headers={}, request=odd_body, body=orjson.dumps(odd_body)
    )
    long_blocks = request("r2", text="", messages=[
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}, {"type": "text", "text": "x" * 2000}]}
    ])
    state = fold([odd, long_blocks])
    first, second = (turn.request for turn in state.sessions["s"].turns + state.sessions["sess"].turns)
    assert first is not None and (first.messages, first.tools, first.last_user_text) == (0, (), "")
    assert second is not None and second.last_user_text.startswith("[tool_result] xxx")
    assert len(second.last_user_text) == USER_TEXT_LIMIT


def test_an_event_out_of_order_is_refused_and_the_state_is_unchanged() -> None:
    state = fold([request("r1"), completed("r1")])
    snapshot = state.sessions["sess"]
    with pytest.raises(OutOfOrderEvent, match="event 2 arrived after event 2"):
        apply_session_event(state, Recorded(seq=2, time_ns=0, stream="s", event=request("r9")))
    assert state.sessions["sess"] is snapshot
    assert state.last_seq == 2


def test_older_states_stay_valid_after_newer_ones_are_made() -> None:
    early = fold([request("r1")])
    later = fold([completed("r1"), request("r2")], early)
    assert len(early.sessions["sess"].turns) == 1 and not early.sessions["sess"].turns[0].finished
    assert len(later.sessions["sess"].turns) == 2 and later.sessions["sess"].turns[0].finished


def test_answering_an_older_turn_leaves_every_earlier_state_as_it_was() -> None:
    states = [SessionsState()]
    for event in [request("r1"), request("r2"), request("r3"), completed("r1", text="late"), failed("r3")]:
        states.append(fold([event], states[-1]))
    seen = [[(t.request_id, t.finished) for t in state.sessions["sess"].turns] for state in states[1:]]
    assert seen == [
        [("r1", False)],
        [("r1", False), ("r2", False)],
        [("r1", False), ("r2", False), ("r3", False)],
        [("r1", True), ("r2", False), ("r3", False)],
        [("r1", True), ("r2", False), ("r3", True)],
    ]
    assert states[4].sessions["sess"].turns[0].message == {"role": "assistant", "content": [{"type": "text", "text": "late"}]}
    assert states[3].sessions["sess"].turns[0].message is None


def test_a_long_session_folds_in_linear_time_and_compares_by_its_turns() -> None:
    events: list[Event] = []
    for n in range(5000):
        events += [request(f"r{n}"), completed(f"r{n}")]
    started = time.perf_counter()
    state = fold(events)
    elapsed = time.perf_counter() - started
    session = state.sessions["sess"]
    assert len(session.turns) == 5000 and all(turn.finished for turn in session.turns)
    assert session == fold(events).sessions["sess"]  # deep turn lists compare without recursing
    assert session != fold(events[:-1]).sessions["sess"]
    assert elapsed < 2.0  # ~0.05 s here; copying every turn per event (quadratic) took seconds


def test_sessions_fold_names_the_topics_it_reads() -> None:
    assert SESSIONS.topics == frozenset(
        {"request.received", "response.completed", "response.failed", "session.compacted"}
    )


# Replay


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbEventStore]:
    with LmdbEventStore.open(tmp_path / "events") as store:
        yield store


def count_events(state: int, recorded: Recorded) -> int:
    return state + 1


def test_replay_folds_the_whole_log_into_every_projection(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", attempted("r1")), ("a", completed("r1", "a"))])
    store.append([("b", request("r2", "b")), ("b", failed("r2", "b"))])
    states = replay(store, {"sessions": SESSIONS, "count": Projection(initial=0, apply=count_events)})
    assert states["count"] == 5
    sessions: SessionsState = states["sessions"]
    assert sessions.last_seq == 5
    assert sessions.sessions["a"].turns[0].message is not None
    assert sessions.sessions["b"].turns[0].failure is not None
    assert sessions == functools.reduce(apply_session_event, store.read(), SessionsState())


def test_replay_skipping_other_topics_matches_folding_every_event(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", attempted("r1")), ("a", completed("r1", "a"))])
    store.append([("b", request("r2", "b")), ("b", attempted("r2")), ("d", DaemonStopped(reason="x"))])
    seen: list[str] = []

    def note(state: int, recorded: Recorded) -> int:
        seen.append(recorded.event.TYPE)
        return state + 1 if recorded.event.TYPE == "upstream.attempted" else state

    states = replay(
        store,
        {"sessions": SESSIONS, "attempts": Projection(initial=0, apply=note, topics=frozenset({"upstream.attempted"}))},
    )
    assert states["sessions"] == functools.reduce(apply_session_event, store.read(), SessionsState())
    assert states["sessions"].last_seq == 4
    assert states["attempts"] == 2
    assert seen == ["upstream.attempted"] * 2  # each fold is handed only the records of its own topics


def test_a_fold_without_topics_sees_every_event(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", attempted("r1")), ("d", DaemonStopped(reason="x"))])
    states = replay(store, {"sessions": SESSIONS, "count": Projection(initial=0, apply=count_events)})
    assert states["count"] == 3


def test_replay_of_one_stream_rebuilds_only_that_session(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("b", request("r2", "b")), ("a", completed("r1", "a"))])
    sessions: SessionsState = replay(store, {"sessions": SESSIONS}, stream="a")["sessions"]
    assert set(sessions.sessions) == {"a"}
    assert sessions.sessions["a"].turns[0].finished


def test_replay_continues_from_a_snapshot(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", completed("r1", "a")), ("a", request("r2", "a"))])
    snapshot = replay(store, {"sessions": SESSIONS})["sessions"]
    store.append([("a", completed("r2", "a"))])
    resumed = replay(store, {"sessions": Projection(initial=snapshot, apply=apply_session_event)}, start=4)
    assert [t.finished for t in resumed["sessions"].sessions["a"].turns] == [True, True]


def test_replay_reports_progress_and_finishes_at_total(store: LmdbEventStore) -> None:
    for start in range(0, 20000, 1000):
        store.append([("s", attempted(f"r{n}")) for n in range(start, start + 1000)])
    calls: list[tuple[int, int]] = []
    replay(store, {"count": Projection(initial=0, apply=count_events)}, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 20000)
    assert calls[-1] == (20000, 20000)
    assert len(calls) > 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


class ScrambledStore:
    """A store that breaks its promise of order, to show that replay notices."""

    def __init__(self, inner: LmdbEventStore) -> None:
        self.inner = inner

    def last_seq(self) -> int:
        return self.inner.last_seq()

    def read(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[Recorded]:
        return iter(sorted(self.inner.read(start, stream=stream, topics=topics), key=lambda r: -r.seq))

    def read_payloads(
        self, start: int = 1, *, stream: str | None = None, topics: Collection[str] | None = None
    ) -> Iterator[tuple[int, int, str, str, dict[str, Any]]]:
        return iter(sorted(self.inner.read_payloads(start, stream=stream, topics=topics), key=lambda r: -r[0]))


def test_replay_refuses_events_out_of_order(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", completed("r1", "a"))])
    with pytest.raises(OutOfOrderEvent):
        replay(ScrambledStore(store), {"count": Projection(initial=0, apply=count_events)})  # type: ignore[arg-type]


def test_replay_over_payloads_builds_the_same_sessions_as_over_events(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", attempted("r1")), ("a", completed("r1", "a"))])
    store.append([("b", request("r2", "b")), ("b", failed("r2", "b")), ("a", request("r3", "a"))])
    store.append([("a", completed("r3", "a")), ("c", completed("orphan", "c"))])
    over_events = Projection(initial=SessionsState(), apply=apply_session_event, topics=SESSIONS.topics)
    by_events = replay(store, {"sessions": over_events})["sessions"]
    by_payloads = replay(store, {"sessions": SESSIONS})["sessions"]
    assert by_payloads == by_events
    assert [s.turns for s in by_payloads.sessions.values()] == [s.turns for s in by_events.sessions.values()]
    assert len(by_payloads.sessions["a"].turns) == 2


def test_a_payload_without_its_fields_changes_nothing() -> None:
    from lynkr.events.projections import apply_session_payload

    state = SessionsState()
    assert apply_session_payload(state, 1, 1, "request.received", {"session_id": "s"}) is state
    assert apply_session_payload(state, 2, 1, "response.completed", {"request_id": "r"}) is state


def test_replay_leaves_the_garbage_collector_as_it_found_it(store: LmdbEventStore) -> None:
    store.append([("a", request("r1", "a")), ("a", completed("r1", "a"))])
    assert gc.isenabled()
    replay(store, {"sessions": SESSIONS})
    assert gc.isenabled()
    with pytest.raises(OutOfOrderEvent):
        replay(ScrambledStore(store), {"sessions": SESSIONS})  # type: ignore[arg-type]
    assert gc.isenabled()


def test_a_fold_over_events_beside_folds_over_payloads_gets_events_of_its_topics_only(store: LmdbEventStore) -> None:
    from lynkr.events.catalog import RequestReceived
    from tests.eventstore_conformance import claude_code_requests

    requests = claude_code_requests(3)  # bodies large enough to be stored content-addressed
    store.append([("sess", requests[0]), ("sess", attempted("req_0")), ("other", requests[1])])
    store.append([("sess", requests[2]), ("d", DaemonStopped(reason="x"))])
    bodies: list[tuple[str, bytes]] = []

    def note(state: int, recorded: Recorded) -> int:
        assert isinstance(recorded.event, RequestReceived)
        bodies.append((recorded.stream, recorded.event.body))  # joined from the store's blobs
        return state + 1

    requests_only = Projection(initial=0, apply=note, topics=frozenset({RequestReceived.TYPE}), stream="sess")
    states = replay(store, {"sessions": SESSIONS, "requests": requests_only})
    assert states["requests"] == 2
    assert bodies == [("sess", requests[0].body), ("sess", requests[2].body)]
    assert states["sessions"] == functools.reduce(apply_session_event, store.read(), SessionsState())
