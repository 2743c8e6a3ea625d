"""What every EventStore must do, as one abstract test class.

An engine's test module subclasses :class:`EventStoreConformance` and provides ``open_store(path)``, which
opens (creating if needed) the engine's log at ``path``; the same path must reopen the same log.  The
LMDB store runs it in ``test_lmdb_store.py``.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import orjson

from lynkr.events.catalog import DaemonStopped, RequestReceived, UpstreamAttempted
from lynkr.events.codec import payload_of
from lynkr.events.records import Recorded
from lynkr.events.store import EventStore
from lynkr.events.transcript import split
from tests.claude_session import session


def stopped(reason: str) -> DaemonStopped:
    return DaemonStopped(reason=reason)


def attempted(request_id: str, attempt: int = 1) -> UpstreamAttempted:
    return UpstreamAttempted(
        request_id=request_id,
        provider="ollama",
        attempt=attempt,
        status=200,
        latency_ms=12.5,
        error=None,
        will_retry=False,
    )


def claude_code_requests(turns: int) -> list[RequestReceived]:
    return [
        RequestReceived.of(
            request_id=f"req_{n}", session_id="sess", path="/v1/messages", headers={}, request=exchange.request,
            body=exchange.body,
        )
        for n, exchange in enumerate(session(turns))
    ]


class EventStoreConformance(abc.ABC):
    @abc.abstractmethod
    def open_store(self, path: Path) -> EventStore:
        """Open, creating it, the store under test at ``path``."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        store = self.open_store(tmp_path / "log")
        try:
            yield store
        finally:
            store.close()

    def test_empty_log_has_no_events(self, store: EventStore) -> None:
        assert store.last_seq() == 0
        assert list(store.read()) == []
        assert list(store.iter_streams()) == []
        assert store.stats().events == 0

    def test_append_numbers_events_from_one_in_batch_order(self, store: EventStore) -> None:
        assert store.append([("a", stopped("1")), ("b", stopped("2"))]) == [1, 2]
        assert store.append([("a", stopped("3"))]) == [3]
        assert store.append([]) == []
        assert store.last_seq() == 3

    def test_read_returns_events_with_their_envelope(self, store: EventStore) -> None:
        store.append([("a", stopped("first")), ("b", attempted("req_1"))], time_ns=1_700_000_000_000_000_000)
        assert list(store.read()) == [
            Recorded(seq=1, time_ns=1_700_000_000_000_000_000, stream="a", event=stopped("first")),
            Recorded(seq=2, time_ns=1_700_000_000_000_000_000, stream="b", event=attempted("req_1")),
        ]

    def test_append_stamps_the_time_when_not_given(self, store: EventStore) -> None:
        before = time.time_ns()
        store.append([("a", stopped("now"))])
        (recorded,) = store.read()
        assert before <= recorded.time_ns <= time.time_ns()

    def test_read_starts_at_the_given_seq(self, store: EventStore) -> None:
        store.append([("s", stopped(str(n))) for n in range(10)])
        assert [r.seq for r in store.read(7)] == [7, 8, 9, 10]
        assert list(store.read(11)) == []
        assert [r.seq for r in store.read(0)][:1] == [1]

    def test_read_by_stream_returns_only_that_stream_in_order(self, store: EventStore) -> None:
        store.append([(f"session-{n % 3}", stopped(str(n))) for n in range(30)])
        one = list(store.read(stream="session-1"))
        assert [r.seq for r in one] == list(range(2, 31, 3))
        assert {r.stream for r in one} == {"session-1"}
        assert [r.seq for r in store.read(20, stream="session-1")] == [20, 23, 26, 29]
        assert list(store.read(stream="session-9")) == []

    def test_stream_names_that_prefix_each_other_stay_apart(self, store: EventStore) -> None:
        store.append([("ab", stopped("1")), ("a", stopped("2")), ("abc", stopped("3"))])
        assert [r.seq for r in store.read(stream="a")] == [2]
        assert [r.seq for r in store.read(stream="ab")] == [1]

    def test_reading_spans_many_chunks(self, store: EventStore) -> None:
        for start in range(0, 5000, 1000):
            store.append([("s", attempted(f"req_{n}")) for n in range(start, start + 1000)])
        seqs = [r.seq for r in store.read()]
        assert seqs == list(range(1, 5001))
        assert [seq for seq, _ in store.read_raw(4990)] == list(range(4990, 5001))

    def test_read_by_topic_returns_only_those_topics_in_order(self, store: EventStore) -> None:
        store.append([("a", stopped("1")), ("a", attempted("r1")), ("b", stopped("3")), ("b", attempted("r2"))])
        assert [(r.seq, r.event.TYPE) for r in store.read(topics={"daemon.stopped"})] == [
            (1, "daemon.stopped"),
            (3, "daemon.stopped"),
        ]
        assert [r.seq for r in store.read(2, topics={"upstream.attempted", "no.such.topic"})] == [2, 4]
        assert [r.seq for r in store.read(stream="b", topics={"upstream.attempted"})] == [4]
        assert list(store.read(topics=set())) == []

    def test_iter_streams_counts_each_stream(self, store: EventStore) -> None:
        store.append([("x", stopped("1")), ("y", stopped("2")), ("x", stopped("3"))])
        summaries = {s.stream: s for s in store.iter_streams()}
        assert summaries["x"].events == 2 and summaries["x"].first_seq == 1 and summaries["x"].last_seq == 3
        assert summaries["y"].events == 1 and summaries["y"].first_seq == 2

    def test_stats_count_events_and_bytes(self, store: EventStore) -> None:
        store.append([("s", attempted(f"req_{n}")) for n in range(100)])
        stats = store.stats()
        assert stats.events == 100
        assert stats.last_seq == 100
        assert stats.bytes_used > 0

    def test_appended_events_survive_reopening(self, tmp_path: Path) -> None:
        store = self.open_store(tmp_path / "log")
        store.append([("s", stopped("kept"))])
        store.close()
        store = self.open_store(tmp_path / "log")
        try:
            assert [r.event for r in store.read()] == [stopped("kept")]
            assert store.append([("s", stopped("next"))]) == [2]
        finally:
            store.close()

    def test_a_batch_that_cannot_be_stored_leaves_nothing_behind(self, store: EventStore) -> None:
        store.append([("s", stopped("before"))])
        unencodable = DaemonStopped(reason={"not", "plain", "data"})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not plain data"):
            store.append([("s", stopped("good")), ("s", unencodable)])
        assert store.last_seq() == 1
        assert store.append([("s", stopped("after"))]) == [2]

    # Blobs: the content-addressed parts of request bodies

    def test_request_bodies_read_back_exactly_and_their_parts_are_blobs(self, store: EventStore) -> None:
        requests = claude_code_requests(3)
        store.append([("sess", request) for request in requests[:2]])
        store.append([("sess", requests[2])])
        read = [record.event for record in store.read()]
        assert [event.body for event in read if isinstance(event, RequestReceived)] == [r.body for r in requests]
        assert [event.whole() for event in read if isinstance(event, RequestReceived)] == requests
        for digest, data in split(requests[2].body).blobs.items():
            assert store.blob(digest) == data
        assert store.blob(b"\x00" * 32) is None

    def test_blobs_survive_reopening(self, tmp_path: Path) -> None:
        (request,) = claude_code_requests(1)
        store = self.open_store(tmp_path / "log")
        store.append([("sess", request)])
        store.close()
        store = self.open_store(tmp_path / "log")
        try:
            (recorded,) = store.read()
            assert isinstance(recorded.event, RequestReceived)
            assert recorded.event.body == request.body
            assert orjson.loads(recorded.event.body) == recorded.event.request()
        finally:
            store.close()

    def test_a_batch_that_cannot_be_stored_leaves_no_blobs_behind(self, store: EventStore) -> None:
        (request,) = claude_code_requests(1)
        unencodable = DaemonStopped(reason={"not", "plain", "data"})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not plain data"):
            store.append([("sess", request), ("s", unencodable)])
        assert all(store.blob(digest) is None for digest in split(request.body).blobs)

    def test_read_payloads_matches_read_without_building_events(self, store: EventStore) -> None:
        store.append([("a", stopped("1")), ("b", attempted("r1")), ("a", stopped("3"))], time_ns=5)
        assert list(store.read_payloads()) == [
            (1, 5, "daemon.stopped", "a", {"reason": "1"}),
            (2, 5, "upstream.attempted", "b", payload_of(attempted("r1"))),
            (3, 5, "daemon.stopped", "a", {"reason": "3"}),
        ]
        assert [seq for seq, *_ in store.read_payloads(2, topics={"daemon.stopped"})] == [3]
        assert [seq for seq, *_ in store.read_payloads(stream="b")] == [2]
