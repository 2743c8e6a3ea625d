"""The recorder: the single writer of the event log.

Every actor records through a :class:`Recorder` handle, which queues an :class:`Append` in the recorder's
bounded inbox.  :func:`run` takes the first waiting message, drains whatever else is already queued (up to
``batch_max``) without waiting, scrubs the batch's payloads (on the trio thread), and commits it in one
worker-thread call: encode, one LMDB write transaction, one fsync.  Under load batches grow on their own,
which is what makes durable appends fast; when idle a lone event is committed at once.  While one batch
commits, the next is taken and scrubbed.

Scrubbing copies only what it masks: an event with nothing to mask is stored, and published, as the very
object the actor recorded.  So an actor must not change an event's containers once it has recorded it.

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
    """One waiter's slot: the recorder fills it once with the event's seq or the commit's error.

    Every durable event has one, so it parks and wakes its single waiter directly instead of through a
    ``trio.Event`` and its parking lot.
    """

    __slots__ = ("_result", "_waiter")

    def __init__(self) -> None:
        self._result: outcome.Outcome[int] | None = None
        self._waiter: trio.lowlevel.Task | None = None

    def set(self, result: outcome.Outcome[int]) -> None:
        """Fill the slot (on the trio thread); later calls are ignored."""
        if self._result is None:
            self._result = result
            if self._waiter is not None:
                trio.lowlevel.reschedule(self._waiter)
                self._waiter = None

    async def wait(self) -> int:
        """The event's sequence number once it is on disk; raises what made the commit fail.

        One task waits at a time.
        """
        if self._result is None:
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting for this acknowledgement")
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        else:
            await trio.lowlevel.checkpoint()
        assert self._result is not None
        return self._result.unwrap()

    def _abort(self, _: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED


@attrs.frozen(kw_only=True)
class Append:
    """Record ``event`` on ``stream``; fill ``ack`` once it is durable (or has failed)."""

    stream: str
    event: Event
    ack: Ack | None = None


class Sender(Protocol):
    """The recorder's inbox as producers see it (a trio send channel, or the runtime's ``Mailbox``)."""

    async def send(self, message: Append, /) -> None: ...

    def send_nowait(self, message: Append, /) -> None:
        """Queue ``message`` or raise ``trio.WouldBlock``."""
        ...


@attrs.frozen(kw_only=True)
class RecorderStatistics:
    events: int  # events committed since start-up
    batches: int  # write transactions committed
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

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

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

    def count_batch(self, *, committed: int, failed: int, commit_s: float) -> None:
        now = trio.current_time()
        self._events += committed
        self._failed += failed
        self._batches += 1 if committed else 0
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
            largest_batch=self._largest_batch,
            recent_rate=recent / RATE_WINDOW_S,
            last_commit_ms=self._last_commit_s * 1000.0,
            failed_events=self._failed,
            subscribers=len(self._subscribers),
            dropped_subscribers=self._dropped,
        )


def waiting(records: trio.MemoryReceiveChannel[Recorded]) -> Iterator[Recorded]:
    """The records already queued for a subscriber, taken without a checkpoint.

    A commit publishes its records together: a subscriber woken for the first handles the rest in the same
    step, instead of one pass through the scheduler for each.
    """
    while True:
        try:
            yield records.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return


class Recorder:
    """What other actors hold to record events."""

    def __init__(self, sender: Sender, hub: Hub) -> None:
        self._sender = sender
        self.hub = hub  # give the same hub to run()

    async def record(self, stream: str, event: Event) -> None:
        """Queue ``event``; waits only for room in the recorder's inbox.

        With room to spare this is no checkpoint: the producer keeps running, and a request's few events cost
        no task switches of its own.
        """
        message = Append(stream=stream, event=event)
        try:
            self._sender.send_nowait(message)
        except trio.WouldBlock:
            await self._sender.send(message)

    async def record_durably(self, stream: str, event: Event) -> int:
        """Record ``event`` and return its sequence number once it is on disk; re-raises a failed commit.

        Waits as long as the recorder takes: callers with a deadline put one around this call.
        """
        ack = Ack()
        message = Append(stream=stream, event=event, ack=ack)
        # Waiting for the acknowledgement is this call's checkpoint; a send with room to spare need not
        # yield to the scheduler a second time.
        try:
            self._sender.send_nowait(message)
        except trio.WouldBlock:
            await self._sender.send(message)
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
    commit_delay_s: float = 0.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Commit what arrives in ``inbox`` in batches until it is closed and drained.

    With ``commit_delay_s``, a batch that nobody waits on (only ``record`` calls) waits that long for
    company before it commits: a lightly loaded daemon then syncs once for several requests' events
    instead of once per event.  A durable append ends the wait at once.

    Two stages, so that the CPU work on one batch overlaps the commit of the one before: this task takes a
    batch and scrubs it, then hands it to the committer, which waits for the worker thread.  The hand-over
    channel has no buffer, so at most one batch waits while one commits, and a batch holds what arrived
    during the previous commit.

    When the committer is idle, a batch takes only half of what is queued.  Otherwise producers that wait
    for their acknowledgements (``record_durably``) all land in one batch and all wait for its commit,
    and the two stages never overlap; split, the second half is scrubbed while the first commits, and from
    then on the two halves take turns.
    """
    to_commit, batches = trio.open_memory_channel[_Batch](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_commit_batches, store, batches, hub)
        async with inbox, to_commit:
            task_status.started()
            async for first in inbox:
                limit = batch_max
                if to_commit.statistics().tasks_waiting_receive:
                    queued = 1 + inbox.statistics().current_buffer_used
                    limit = min(batch_max, (queued + 1) // 2)
                messages = [first]
                while len(messages) < limit:
                    try:
                        messages.append(inbox.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                if commit_delay_s > 0 and len(messages) < batch_max and all(m.ack is None for m in messages):
                    await _gather_company(inbox, messages, batch_max, commit_delay_s)
                try:
                    await to_commit.send(_scrub_batch(messages, scrubber))
                except BaseException:
                    # Cancelled or crashed before the committer took the batch: its waiters must not
                    # wait forever for a commit that will not happen.
                    for message in messages:
                        if message.ack is not None:
                            message.ack.set(outcome.Error(RecorderStopped("the recorder stopped first")))
                    raise


async def _gather_company(
    inbox: trio.MemoryReceiveChannel[Append], messages: list[Append], limit: int, delay_s: float
) -> None:
    with trio.move_on_after(delay_s):
        while len(messages) < limit:
            try:
                message = await inbox.receive()
            except trio.EndOfChannel:
                return
            messages.append(message)
            if message.ack is not None:
                return


@attrs.frozen
class _Batch:
    messages: list[Append]
    pairs: list[tuple[str, Event]]  # (stream, scrubbed event) of the messages that scrubbed cleanly, in order
    failed: dict[int, Exception]  # message index -> why it could not be scrubbed
    taken_at: float


def _scrub_batch(messages: list[Append], scrubber: Scrubber) -> _Batch:
    # On the trio thread, so that no other task changes a payload while it is walked.
    pairs: list[tuple[str, Event]] = []
    failed: dict[int, Exception] = {}
    for index, message in enumerate(messages):
        try:
            pairs.append((message.stream, _scrubbed(message.event, scrubber)))
        except Exception as error:
            failed[index] = error
    return _Batch(messages=messages, pairs=pairs, failed=failed, taken_at=trio.current_time())


def _scrubbed(event: Event, scrubber: Scrubber) -> Event:
    payload = payload_of(event)
    scrubbed = scrubber.scrub(payload)
    if scrubbed is payload:
        return event
    # Only the masked fields change: what an event keeps only in memory (a request's parsed body, which saves
    # parsing it again to store it) stays with it.  Stored bytes come from the masked fields alone.
    return attrs.evolve(event, **{name: value for name, value in scrubbed.items() if value is not payload[name]})


async def _commit_batches(store: EventStore, batches: trio.MemoryReceiveChannel[_Batch], hub: Hub) -> None:
    async with batches:
        async for batch in batches:
            await _commit(store, batch, hub)


async def _commit(store: EventStore, batch: _Batch, hub: Hub) -> None:
    # Not cancellable (trio's default): a commit in flight finishes, and its waiters hear about it.
    written = await trio.to_thread.run_sync(_write, store, batch.pairs)
    appended = zip(batch.pairs, written.results)
    publish = hub.has_subscribers
    records: list[Recorded] = []
    committed = 0
    for index, message in enumerate(batch.messages):
        error = batch.failed.get(index) if batch.failed else None
        if error is None:
            (stream, event), result = next(appended)
            if isinstance(result, int):
                committed += 1
                if message.ack is not None:
                    message.ack.set(outcome.Value(result))
                if publish:
                    records.append(Recorded(seq=result, time_ns=written.time_ns, stream=stream, event=event))
                continue
            error = result
        if message.ack is not None:
            message.ack.set(outcome.Error(error))
    failed = len(batch.messages) - committed
    if failed:
        log.error("%d of %d events could not be recorded", failed, len(batch.messages))
    hub.count_batch(
        committed=committed,
        failed=failed,
        commit_s=trio.current_time() - batch.taken_at,
    )
    if records:
        hub.publish(records)


@attrs.frozen
class _Written:
    results: list[int | Exception]  # per pair: its sequence number, or why it could not be stored
    time_ns: int


def _write(store: EventStore, pairs: list[tuple[str, Event]]) -> _Written:
    """Append ``pairs`` in one transaction (in a worker thread); if that fails, one by one.

    One event that cannot be stored (a payload that is not plain data) then fails alone instead of
    taking its whole batch with it.
    """
    time_ns = time.time_ns()
    results: list[int | Exception] = []
    if pairs:
        try:
            results.extend(store.append(pairs, time_ns=time_ns))
        except Exception as error:
            if len(pairs) == 1:
                results.append(error)
            else:
                log.warning("event batch of %d failed (%r); committing its events one by one", len(pairs), error)
                for pair in pairs:
                    try:
                        results.extend(store.append([pair], time_ns=time_ns))
                    except Exception as single_error:
                        results.append(single_error)
    return _Written(results=results, time_ns=time_ns)

