from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import orjson
import outcome
import pytest
import trio
import trio.testing

from lynkr.actors.recorder import Ack, Append, Hub, Recorder, RecorderStopped, run, waiting
from lynkr.events.catalog import DaemonStarted, DaemonStopped, RequestReceived
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Event, Recorded
from lynkr.events.scrub import MASK, Scrubber
from lynkr.events.store import StoreStats

SECRET = "sk-ant-api03-very-secret-value"
OTHER_TOKEN = "bearer-only-known-by-header-name"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbEventStore]:
    with LmdbEventStore.open(tmp_path / "events") as store:
        yield store


@asynccontextmanager
async def running_recorder(
    store: LmdbEventStore, *, secrets: tuple[str, ...] = (), batch_max: int = 256, commit_delay_s: float = 0.0
) -> AsyncIterator[Recorder]:
    """A recorder actor; leaving the block closes its inbox, and waits until it has flushed and returned."""
    send, receive = trio.open_memory_channel[Append](1024)
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                run, store, receive, scrubber=Scrubber(secrets), hub=hub, batch_max=batch_max,
                commit_delay_s=commit_delay_s,
            )
        )
        async with send:
            yield Recorder(send, hub)


def stopped(n: int) -> DaemonStopped:
    return DaemonStopped(reason=f"reason {n}")


async def test_record_durably_returns_the_seq_of_the_stored_event(store: LmdbEventStore) -> None:
    async with running_recorder(store) as recorder:
        assert await recorder.record_durably("daemon", stopped(1)) == 1
        assert await recorder.record_durably("daemon", stopped(2)) == 2
        assert [(r.seq, r.stream, r.event) for r in store.read()] == [(1, "daemon", stopped(1)), (2, "daemon", stopped(2))]


async def test_concurrent_durable_records_share_commits(store: LmdbEventStore) -> None:
    seqs: list[int] = []
    async with running_recorder(store) as recorder:

        async def produce(n: int) -> None:
            seqs.append(await recorder.record_durably(f"session-{n % 7}", stopped(n)))

        async with trio.open_nursery() as producers:
            for n in range(300):
                producers.start_soon(produce, n)
        stats = recorder.statistics()
    assert sorted(seqs) == list(range(1, 301))
    assert stats.events == 300
    assert stats.batches < 300
    assert stats.largest_batch > 1
    assert store.stats().events == 300


async def test_batches_never_exceed_batch_max(store: LmdbEventStore) -> None:
    send, receive = trio.open_memory_channel[Append](100)
    acks = [Ack() for _ in range(35)]
    for n, ack in enumerate(acks):
        send.send_nowait(Append(stream="s", event=stopped(n), ack=ack))
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run, store, receive, scrubber=Scrubber(), hub=hub, batch_max=10))
        assert [await ack.wait() for ack in acks] == list(range(1, 36))
        send.close()
    stats = Recorder(send, hub).statistics()
    assert (stats.batches, stats.largest_batch) == (4, 10)


async def test_an_idle_committer_gets_half_the_queue_so_the_rest_is_scrubbed_while_it_commits(
    store: LmdbEventStore,
) -> None:
    send, receive = trio.open_memory_channel[Append](100)
    acks = [Ack() for _ in range(64)]
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run, store, receive, scrubber=Scrubber(), hub=hub, batch_max=256))
        await trio.testing.wait_all_tasks_blocked()  # both stages idle
        for n, ack in enumerate(acks):
            send.send_nowait(Append(stream="s", event=stopped(n), ack=ack))
        assert [await ack.wait() for ack in acks] == list(range(1, 65))
        send.close()
    stats = hub.statistics()
    assert (stats.batches, stats.largest_batch) == (2, 32)


async def test_an_ack_set_before_anyone_waits_answers_at_once() -> None:
    ack = Ack()
    ack.set(outcome.Value(7))
    ack.set(outcome.Value(8))  # only the first result counts
    with trio.fail_after(1):
        assert await ack.wait() == 7


async def test_an_ack_has_one_waiter_and_survives_a_cancelled_one() -> None:
    ack = Ack()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ack.wait)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="already waiting"):
            await ack.wait()
        nursery.cancel_scope.cancel()
    ack.set(outcome.Value(3))
    with trio.fail_after(1):
        assert await ack.wait() == 3


async def test_an_event_with_nothing_to_mask_is_stored_and_published_as_recorded(store: LmdbEventStore) -> None:
    clean = DaemonStarted(version="1", pid=1, config={"port": 8081})
    secret = DaemonStarted(version="1", pid=1, config={"api_key": SECRET})
    async with running_recorder(store, secrets=(SECRET,)) as recorder:
        with recorder.subscribe(max_buffer=10) as live:
            await recorder.record_durably("daemon", clean)
            await recorder.record_durably("daemon", secret)
            published = [await live.receive() for _ in range(2)]
    assert published[0].event is clean
    assert published[1].event == DaemonStarted(version="1", pid=1, config={"api_key": MASK})
    assert secret.config == {"api_key": SECRET}  # the recorder masked a copy


async def test_queued_events_are_flushed_when_the_inbox_closes(store: LmdbEventStore) -> None:
    async with running_recorder(store) as recorder:
        for n in range(200):
            await recorder.record("s", stopped(n))
    assert [r.event for r in store.read()] == [stopped(n) for n in range(200)]


async def test_a_failed_commit_reaches_its_waiter_and_spares_the_rest_of_its_batch(store: LmdbEventStore) -> None:
    send, receive = trio.open_memory_channel[Append](10)
    unencodable = DaemonStarted(version="1", pid=1, config={"when": {1, 2}})
    good, bad, later = Ack(), Ack(), Ack()
    send.send_nowait(Append(stream="s", event=stopped(1), ack=good))
    send.send_nowait(Append(stream="s", event=unencodable, ack=bad))
    send.send_nowait(Append(stream="s", event=stopped(3), ack=later))
    hub = Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run, store, receive, scrubber=Scrubber(), hub=hub))
        assert await good.wait() == 1
        with pytest.raises(ValueError, match="not plain data"):
            await bad.wait()
        assert await later.wait() == 2
        send.close()
    assert [r.event for r in store.read()] == [stopped(1), stopped(3)]
    assert hub.statistics().failed_events == 1


async def test_record_durably_reraises_a_commit_failure(store: LmdbEventStore) -> None:
    async with running_recorder(store) as recorder:
        with pytest.raises(ValueError, match="not plain data"):
            await recorder.record_durably("s", DaemonStarted(version="1", pid=1, config={"x": object()}))
        assert await recorder.record_durably("s", stopped(1)) == 1


async def test_subscribers_receive_committed_records_in_order(store: LmdbEventStore) -> None:
    async with running_recorder(store) as recorder:
        with recorder.subscribe(max_buffer=10) as live:
            for n in range(3):
                await recorder.record_durably("s", stopped(n))
            received = [await live.receive() for _ in range(3)]
    assert [(r.seq, r.event) for r in received] == [(1, stopped(0)), (2, stopped(1)), (3, stopped(2))]
    assert received == list(store.read())


async def test_slow_subscriber_is_dropped_instead_of_stalling_the_writer(
    store: LmdbEventStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_recorder(store) as recorder:
        with recorder.subscribe(max_buffer=2) as slow, caplog.at_level(logging.WARNING, logger="lynkr.events"):
            with trio.fail_after(5):
                for n in range(10):
                    await recorder.record_durably("s", stopped(n))
            buffered: list[Recorded] = [record async for record in slow]  # ends: it was dropped
        stats = recorder.statistics()
    assert [r.seq for r in buffered] == [1, 2]
    assert stats.dropped_subscribers == 1
    assert stats.subscribers == 0
    assert "fell behind" in caplog.text


async def test_secrets_never_reach_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "events"
    request = RequestReceived(
        request_id="req_1",
        session_id="sess",
        path="/v1/messages",
        model="claude-sonnet-4-5",
        stream=False,
        headers={"x-api-key": SECRET, "Authorization": f"Bearer {OTHER_TOKEN}", "content-type": "application/json"},
        messages=1,
        tools=(),
        last_user_text="",
        template=orjson.dumps({"max_tokens": 100, "messages": [{"role": "user", "content": f"use {SECRET} for the call"}]}),
    )
    with LmdbEventStore.open(path) as store:
        async with running_recorder(store, secrets=(SECRET,)) as recorder:
            with recorder.subscribe(max_buffer=10) as live:
                await recorder.record_durably("sess", request)
                published = await live.receive()
        (stored,) = store.read()
        stored = attrs.evolve(stored, event=stored.event.whole()) if isinstance(stored.event, RequestReceived) else stored
    on_disk = b"".join(file.read_bytes() for file in path.iterdir())
    assert SECRET.encode() not in on_disk
    assert OTHER_TOKEN.encode() not in on_disk
    assert b"use *** for the call" in on_disk
    for recorded in (stored, published):
        assert isinstance(recorded.event, RequestReceived)
        assert recorded.event.headers == {"x-api-key": MASK, "Authorization": MASK, "content-type": "application/json"}
        assert recorded.event.request()["max_tokens"] == 100


async def test_statistics_count_events_and_batches(store: LmdbEventStore) -> None:
    async with running_recorder(store) as recorder:
        before = recorder.statistics()
        for n in range(5):
            await recorder.record_durably("s", stopped(n))
        after = recorder.statistics()
    assert (before.events, before.batches) == (0, 0)
    assert (after.events, after.batches) == (5, 5)
    assert after.recent_rate > 0
    assert after.last_commit_ms > 0


class HeldStore:
    """The real store, with appends that wait until the test lets them through."""

    def __init__(self, inner: LmdbEventStore) -> None:
        self.inner = inner
        self.release = threading.Event()

    def append(self, batch: Sequence[tuple[str, Event]], *, time_ns: int | None = None) -> list[int]:
        self.release.wait(timeout=10)
        return self.inner.append(batch, time_ns=time_ns)

    def stats(self) -> StoreStats:
        return self.inner.stats()


async def test_waiters_hear_when_the_recorder_is_cancelled_before_their_commit(store: LmdbEventStore) -> None:
    held = HeldStore(store)
    send, receive = trio.open_memory_channel[Append](100)
    acks = [Ack() for _ in range(3)]
    async with trio.open_nursery() as nursery:
        # A clone, like the runtime's mailboxes: what the recorder never took stays for its successor.
        recorder = partial(
            run, held, receive.clone(), scrubber=Scrubber(), hub=Hub(), batch_max=1  # type: ignore[arg-type]
        )
        await nursery.start(recorder)
        for n, ack in enumerate(acks):
            send.send_nowait(Append(stream="s", event=stopped(n), ack=ack))
        # Now the first batch is committing (held) and the second waits to be handed over.
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
        held.release.set()
    with trio.fail_after(1):
        assert await acks[0].wait() == 1  # its commit was in flight and finished
        with pytest.raises(RecorderStopped):
            await acks[1].wait()  # taken and scrubbed, never committed
    assert receive.receive_nowait().ack is acks[2]  # still queued
    assert [r.seq for r in store.read()] == [1]


async def test_events_nobody_waits_on_share_a_transaction_within_the_commit_delay(store: LmdbEventStore) -> None:
    async with running_recorder(store, commit_delay_s=0.2) as recorder:
        for n in range(3):
            await recorder.record("s", stopped(n))
            await trio.sleep(0.01)  # arriving one by one, as a request's events do
        started = trio.current_time()
        seq = await recorder.record_durably("s", stopped(3))  # a durable append ends the wait at once
        waited = trio.current_time() - started
        statistics = recorder.statistics()
    assert seq == 4
    assert statistics.batches == 1
    assert waited < 0.15


async def test_secrets_are_masked_before_a_transcript_is_split_into_blobs(tmp_path: Path) -> None:
    from tests.claude_session import session

    path = tmp_path / "events"
    exchanges = list(session(3))
    with LmdbEventStore.open(path) as store:
        async with running_recorder(store, secrets=(SECRET,)) as recorder:
            for n, exchange in enumerate(exchanges):
                body = exchange.body.replace(b"Refactor the parser", f"Use {SECRET} to refactor the parser".encode())
                request = RequestReceived.of(
                    request_id=f"req_{n}", session_id="sess", path="/v1/messages", headers={},
                    request=orjson.loads(body), body=body,
                )
                await recorder.record_durably("sess", request)
        bodies = [r.event.body for r in store.read() if isinstance(r.event, RequestReceived)]
    on_disk = b"".join(file.read_bytes() for file in path.iterdir())
    assert SECRET.encode() not in on_disk
    assert all(b"Use *** to refactor the parser" in body for body in bodies)
    assert [body.replace(b"Use *** to refactor", b"Refactor") for body in bodies] == [e.body for e in exchanges]


async def test_a_subscriber_takes_what_a_commit_published_together_without_waiting_again() -> None:
    hub = Hub()
    published = [Recorded(seq=seq, time_ns=seq, stream="s", event=DaemonStopped(reason=str(seq))) for seq in (1, 2, 3)]
    with hub.subscribe(10) as records:
        hub.publish(published)
        first = await records.receive()
        assert [first, *waiting(records)] == published
        assert list(waiting(records)) == []  # nothing queued: it returns at once instead of waiting
    with hub.subscribe(2) as records:
        hub.publish(published)  # one record too many: the hub drops this subscriber, which ends its channel
        first = await records.receive()
        assert [first, *waiting(records)] == published[:2]
