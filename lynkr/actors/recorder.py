"""The recorder: the single writer of the event log.

Every actor records through a :class:`Recorder` handle, which queues an :class:`Append` in the recorder's
bounded inbox.  :func:`run` takes the first waiting message, drains whatever else is already queued (up to
``batch_max``) without waiting, scrubs the batch's payloads (copying them, on the trio thread), and commits
it in one worker-thread call: encode, one LMDB write transaction, one fsync.  Under load batches grow on
their own, which is what makes durable appends fast; when idle a lone event is committed at once.  The
payload is read when its batch is taken, so an actor must not change an event's containers once recorded.
While one batch commits, the next is taken and scrubbed.

After the commit each waiter is acknowledged with its sequence number (or the commit's error) and each
:class:`~lynkr.events.records.Recorded` is published on the :class:`Hub` to live subscribers.  A subscriber
that falls behind by more than its buffer is dropped, never waited for: the writer must not stall.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import attrs
import outcome
import trio

from lynkr.events.codec import payload_of
from lynkr.events.records import Event, Recorded
from lynkr.events.scrub import Scrubber
from lynkr.events.store import EventStore

log = logging.getLogger("lynkr.events")

RATE_WINDOW_S = 60.0  # recent_rate averages over this much recent time


class RecorderStopped(Exception):
    """The recorder stopped before this event was committed."""


class Ack:
    """One waiter's slot: the recorder fills it once with the event's seq or the commit's error."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._result: outcome.Outcome[int] | None = None

    def set(self, result: outcome.Outcome[int]) -> None:
        if self._result is None:
            self._result = result
            self._done.set()

    async def wait(self) -> int:
        """The event's sequence number once it is on disk; raises what made the commit fail."""
        await self._done.wait()
        assert self._result is not None
        return self._result.unwrap()


@attrs.frozen(kw_only=True)
class Append:
    """Record ``event`` on ``stream``; fill ``ack`` once it is durable (or has failed)."""

    stream: str
    event: Event
    ack: Ack | None = None


class Sender(Protocol):
    """The recorder's inbox as producers see it (a trio send channel, or the runtime's ``Mailbox``)."""

    async def send(self, message: Append, /) -> None: ...


@attrs.frozen(kw_only=True)
class RecorderStatistics:
    events: int  # events committed since start-up
    batches: int  # write transactions committed
    log_bytes: int  # bytes the log occupies after the latest commit
    largest_batch: int
    recent_rate: float  # events committed per second over the last RATE_WINDOW_S
    last_commit_ms: float  # from taking the batch off the inbox to acknowledging it
    failed_events: int  # events whose commit failed
    subscribers: int
    dropped_subscribers: int


class Hub:
    """Where committed records go out: live subscribers, and the totals for ``statistics()``."""

    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel[Recorded]] = set()
        self._events = 0
        self._batches = 0
        self._log_bytes = 0
        self._largest_batch = 0
        self._last_commit_s = 0.0
        self._failed = 0
        self._dropped = 0
        self._recent: deque[tuple[float, int]] = deque()  # (when, events) per batch in the rate window

    @contextmanager
    def subscribe(self, max_buffer: int) -> Iterator[trio.MemoryReceiveChannel[Recorded]]:
        """Receive every record committed from now on, until the block ends.

        The channel ends early (``EndOfChannel`` after what is buffered) if this subscriber falls more
        than ``max_buffer`` records behind.
        """
        send, receive = trio.open_memory_channel[Recorded](max_buffer)
        self._subscribers.add(send)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    def publish(self, records: Sequence[Recorded]) -> None:
        for send in list(self._subscribers):
            try:
                for recorded in records:
                    send.send_nowait(recorded)
            except trio.WouldBlock:
                self._subscribers.discard(send)
                send.close()
                self._dropped += 1
                log.warning("dropped a live event subscriber that fell behind (buffer full)")
            except trio.BrokenResourceError:
                self._subscribers.discard(send)

    def count_batch(self, *, committed: int, failed: int, log_bytes: int | None, commit_s: float) -> None:
        now = trio.current_time()
        self._events += committed
        self._failed += failed
        self._batches += 1 if committed else 0
        if log_bytes is not None:
            self._log_bytes = log_bytes
        self._largest_batch = max(self._largest_batch, committed)
        self._last_commit_s = commit_s
        self._recent.append((now, committed))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def statistics(self) -> RecorderStatistics:
        recent = sum(events for _, events in self._recent)
        return RecorderStatistics(
            events=self._events,
            batches=self._batches,
            log_bytes=self._log_bytes,
            largest_batch=self._largest_batch,
            recent_rate=recent / RATE_WINDOW_S,
            last_commit_ms=self._last_commit_s * 1000.0,
            failed_events=self._failed,
            subscribers=len(self._subscribers),
            dropped_subscribers=self._dropped,
        )


class Recorder:
    """What other actors hold to record events."""

    def __init__(self, sender: Sender, hub: Hub) -> None:
        self._sender = sender
        self.hub = hub  # give the same hub to run()

    async def record(self, stream: str, event: Event) -> None:
        """Queue ``event``; waits only for room in the recorder's inbox."""
        await self._sender.send(Append(stream=stream, event=event))

    async def record_durably(self, stream: str, event: Event) -> int:
        """Record ``event`` and return its sequence number once it is on disk; re-raises a failed commit.

        Waits as long as the recorder takes: callers with a deadline put one around this call.
        """
        ack = Ack()
        await self._sender.send(Append(stream=stream, event=event, ack=ack))
        return await ack.wait()

    def subscribe(self, max_buffer: int) -> AbstractContextManager[trio.MemoryReceiveChannel[Recorded]]:
        return self.hub.subscribe(max_buffer)

    def statistics(self) -> RecorderStatistics:
        return self.hub.statistics()


async def run(
    store: EventStore,
    inbox: trio.MemoryReceiveChannel[Append],
    *,
    scrubber: Scrubber,
    hub: Hub,
    batch_max: int = 256,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Commit what arrives in ``inbox`` in batches until it is closed and drained.

    Two stages, so that the CPU work on one batch overlaps the fsync of the one before: this task takes a
    batch and scrubs it, then hands it to the committer, which waits for the worker thread.  The hand-over
    channel has no buffer, so at most one batch waits while one commits, and a batch holds what arrived
    during the previous commit.
    """
    to_commit, batches = trio.open_memory_channel[_Batch](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_commit_batches, store, batches, hub)
        async with inbox, to_commit:
            task_status.started()
            async for first in inbox:
                messages = [first]
                while len(messages) < batch_max:
                    try:
                        messages.append(inbox.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                try:
                    await to_commit.send(_scrub_batch(messages, scrubber))
                except BaseException:
                    # Cancelled or crashed before the committer took the batch: its waiters must not
                    # wait forever for a commit that will not happen.
                    for message in messages:
                        if message.ack is not None:
                            message.ack.set(outcome.Error(RecorderStopped("the recorder stopped first")))
                    raise


@attrs.frozen
class _Batch:
    messages: list[Append]
    scrubbed: list[outcome.Outcome[tuple[str, Event]]]  # per message: (stream, scrubbed event) or the error
    taken_at: float


def _scrub_batch(messages: list[Append], scrubber: Scrubber) -> _Batch:
    # On the trio thread: the walk copies each payload while no other task can be changing it, and the
    # worker thread then encodes copies that nobody else holds.
    return _Batch(
        messages=messages,
        scrubbed=[outcome.capture(_scrubbed, message, scrubber) for message in messages],
        taken_at=trio.current_time(),
    )


async def _commit_batches(store: EventStore, batches: trio.MemoryReceiveChannel[_Batch], hub: Hub) -> None:
    async with batches:
        async for batch in batches:
            await _commit(store, batch, hub)


async def _commit(store: EventStore, batch: _Batch, hub: Hub) -> None:
    # Not cancellable (trio's default): a commit in flight finishes, and its waiters hear about it.
    results, log_bytes = await trio.to_thread.run_sync(_write, store, batch.scrubbed)
    committed = [result.value for result in results if isinstance(result, outcome.Value)]
    for message, result in zip(batch.messages, results):
        if message.ack is None:
            continue
        if isinstance(result, outcome.Value):
            message.ack.set(outcome.Value(result.value.seq))
        elif isinstance(result, outcome.Error):
            message.ack.set(outcome.Error(result.error))
    failed = len(results) - len(committed)
    if failed:
        log.error("%d of %d events could not be recorded", failed, len(results))
    hub.count_batch(
        committed=len(committed),
        failed=failed,
        log_bytes=log_bytes,
        commit_s=trio.current_time() - batch.taken_at,
    )
    hub.publish(committed)


def _write(
    store: EventStore, prepared: list[outcome.Outcome[tuple[str, Event]]]
) -> tuple[list[outcome.Outcome[Recorded]], int | None]:
    """Append the scrubbed events in one transaction (in a worker thread); outcomes in batch order."""
    results: dict[int, outcome.Outcome[Recorded]] = {}
    ready: list[tuple[int, tuple[str, Event]]] = []
    for index, scrubbed in enumerate(prepared):
        if isinstance(scrubbed, outcome.Value):
            ready.append((index, scrubbed.value))
        elif isinstance(scrubbed, outcome.Error):
            results[index] = outcome.Error(scrubbed.error)
    for (index, _), result in zip(ready, _append_all(store, [pair for _, pair in ready])):
        results[index] = result
    return [results[index] for index in range(len(prepared))], _log_bytes(store)


def _append_all(store: EventStore, pairs: list[tuple[str, Event]]) -> list[outcome.Outcome[Recorded]]:
    """Append ``pairs`` in one transaction; if that fails, one by one.

    One event that cannot be stored (a payload that is not plain data) then fails alone instead of
    taking its whole batch with it.
    """
    if not pairs:
        return []
    try:
        return _append(store, pairs)
    except Exception as error:
        if len(pairs) == 1:
            return [outcome.Error(error)]
        log.warning("event batch of %d failed (%r); committing its events one by one", len(pairs), error)
    results: list[outcome.Outcome[Recorded]] = []
    for pair in pairs:
        try:
            results.extend(_append(store, [pair]))
        except Exception as error:
            results.append(outcome.Error(error))
    return results


def _scrubbed(message: Append, scrubber: Scrubber) -> tuple[str, Event]:
    event = message.event
    return message.stream, type(event).from_payload(scrubber.scrub(payload_of(event)))


def _append(store: EventStore, pairs: list[tuple[str, Event]]) -> list[outcome.Outcome[Recorded]]:
    time_ns = time.time_ns()
    seqs = store.append(pairs, time_ns=time_ns)
    return [
        outcome.Value(Recorded(seq=seq, time_ns=time_ns, stream=stream, event=event))
        for seq, (stream, event) in zip(seqs, pairs)
    ]


def _log_bytes(store: EventStore) -> int | None:
    try:
        return store.stats().bytes_used
    except Exception as error:
        # Only a figure for /metrics; the batch itself is committed and its waiters must hear so.
        log.warning("could not read the event log's size: %r", error)
        return None
