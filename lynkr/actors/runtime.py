"""The actor runtime: mailboxes, a one-for-one supervisor, and request/reply.

An actor is an ``async def run(..., task_status=trio.TASK_STATUS_IGNORED)`` that calls
``task_status.started()`` once it is ready.  The supervisor starts actors in order with ``nursery.start``, so
start-up order and readiness are explicit, and restarts an actor that crashes, with backoff.  More than
``max_restarts`` crashes inside ``window_s`` escalates: :class:`ActorEscalation` leaves the supervisor's nursery
and stops the daemon with a clear message.

Mailboxes belong to the supervisor, not to the actor, so messages queued for a crashed actor wait for its
successor instead of being lost.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import attrs
import outcome
import trio

log = logging.getLogger("lynkr.actors")

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")

ReplyTo = trio.MemorySendChannel[outcome.Outcome[R]]


@attrs.frozen(kw_only=True)
class MailboxStatistics:
    capacity: int
    depth: int
    peak_depth: int
    received: int


class Mailbox(Generic[T]):
    """A bounded channel that remembers how full it has been."""

    def __init__(self, capacity: int) -> None:
        self._send, self._receive = trio.open_memory_channel[T](capacity)
        self._capacity = capacity
        self._peak = 0
        self._sent = 0

    async def send(self, message: T) -> None:
        """Queue ``message``, waiting for room.  With room to spare this is no checkpoint (no task switch)."""
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            await self._send.send(message)
        self._note_sent()

    def send_nowait(self, message: T) -> None:
        """Queue ``message`` or raise ``trio.WouldBlock`` when the mailbox is full."""
        self._send.send_nowait(message)
        self._note_sent()

    def _note_sent(self) -> None:
        self._sent += 1
        depth = self._receive.statistics().current_buffer_used
        if depth > self._peak:
            self._peak = depth

    def receiver(self) -> trio.MemoryReceiveChannel[T]:
        """A fresh receiving endpoint for one incarnation of the actor; close it with ``async with``."""
        return self._receive.clone()

    def close(self) -> None:
        """No more messages: the actor drains what is queued and its ``async for`` ends."""
        self._send.close()

    def statistics(self) -> MailboxStatistics:
        depth = self._receive.statistics().current_buffer_used
        return MailboxStatistics(
            capacity=self._capacity, depth=depth, peak_depth=self._peak, received=self._sent - depth
        )


async def ask(mailbox: Mailbox[M], make: Callable[[ReplyTo[R]], M]) -> R:
    """Send the message ``make(reply_to)`` and wait for its single reply.

    An error raised by the other actor arrives here as itself, with its original type.
    """
    reply_to, replies = trio.open_memory_channel[outcome.Outcome[R]](1)
    async with replies:
        await mailbox.send(make(reply_to))
        try:
            result = await replies.receive()
        except trio.EndOfChannel:
            raise ActorGone("the actor closed the reply channel without answering") from None
    return result.unwrap()


async def answer(reply_to: ReplyTo[R], compute: Callable[[], Awaitable[R]]) -> None:
    """Run ``compute`` and send its value or its error to ``reply_to``.

    Only errors travel: when ``compute`` is cancelled (the answering actor crashed or stopped) the channel
    just closes, and the asker gets :class:`ActorGone` rather than a ``Cancelled`` that is not its own.
    """
    async with reply_to:
        result: outcome.Outcome[R]
        try:
            result = outcome.Value(await compute())
        except Exception as error:
            result = outcome.Error(error)
        try:
            reply_to.send_nowait(result)
        except (trio.BrokenResourceError, trio.WouldBlock):
            log.debug("nobody waits for this reply any more")


class ActorGone(Exception):
    """The actor that was asked ended without answering."""


class ActorEscalation(Exception):
    """An actor crashed too often; the daemon stops rather than thrash."""

    def __init__(self, actor: str, crashes: int, window_s: float) -> None:
        super().__init__(
            f"actor {actor!r} crashed {crashes} times within {window_s:g} s; stopping lynkr. "
            f"See `python -m lynkr log --type actor.crashed` for the tracebacks."
        )
        self.actor = actor
        self.crashes = crashes
        self.window_s = window_s


@attrs.frozen(kw_only=True)
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0

    def backoff_s(self, recent_crashes: int) -> float:
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, recent_crashes - 1))


@attrs.frozen(kw_only=True)
class Crash:
    actor: str
    error: BaseException
    traceback: str
    restarts: int


@attrs.frozen(kw_only=True)
class ActorStatistics:
    name: str
    running: bool
    restarts: int
    mailbox: MailboxStatistics | None


CrashHandler = Callable[[Crash], Awaitable[None]]
EscalationHandler = Callable[[ActorEscalation], Awaitable[None]]


@attrs.define
class _Slot:
    name: str
    mailbox: Mailbox[Any] | None
    running: bool = False
    restarts: int = 0
    crash_times: deque[float] = attrs.Factory(deque)
    finished: trio.Event = attrs.Factory(trio.Event)  # the actor returned for good, or its supervision ended


class _Readiness:
    """Passes the first ``started()`` on to ``nursery.start`` and remembers that it happened."""

    def __init__(self, outer: trio.TaskStatus[Any] | None) -> None:
        self._outer = outer

    @property
    def caller_waiting(self) -> bool:
        """``nursery.start`` still waits: a crash now is a failure to start, not one to restart from.

        Only the first incarnation has a caller; a successor that fails before it is ready is a crash like
        any other, counted towards escalation.
        """
        return self._outer is not None

    def started(self, value: Any = None) -> None:
        if self._outer is not None:
            outer, self._outer = self._outer, None
            outer.started(value)


class Supervisor:
    """Starts actors inside ``nursery`` and restarts them one for one when they crash."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        policy: RestartPolicy,
        on_crash: CrashHandler | None = None,
        on_escalation: EscalationHandler | None = None,
    ) -> None:
        self._nursery = nursery
        self._policy = policy
        self._on_crash = on_crash
        self._on_escalation = on_escalation
        self._slots: dict[str, _Slot] = {}

    async def start(
        self,
        name: str,
        run: Callable[..., Awaitable[None]],
        *args: Any,
        mailbox: Mailbox[Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start ``run(*args, **kwargs, task_status=...)`` and wait until it reports ready; return what it reported.

        With a ``mailbox``, each incarnation also gets ``inbox=`` a fresh receiving endpoint of it.
        A crash before the first readiness is a start-up failure and propagates to the caller.
        """
        if name in self._slots:
            raise ValueError(f"an actor named {name!r} is already supervised")
        slot = _Slot(name=name, mailbox=mailbox)
        self._slots[name] = slot
        return await self._nursery.start(self._supervise, slot, functools.partial(run, *args, **kwargs))

    async def _supervise(
        self,
        slot: _Slot,
        run: Callable[..., Awaitable[None]],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await self._supervise_until_done(slot, run, task_status)
        finally:
            slot.finished.set()

    async def _supervise_until_done(
        self, slot: _Slot, run: Callable[..., Awaitable[None]], task_status: trio.TaskStatus[Any]
    ) -> None:
        readiness = _Readiness(task_status)
        while True:
            slot.running = True
            try:
                if slot.mailbox is None:
                    await run(task_status=readiness)
                else:
                    await run(inbox=slot.mailbox.receiver(), task_status=readiness)
                return
            except Exception as error:
                if readiness.caller_waiting:
                    raise
                await self._crashed(slot, error)
            finally:
                slot.running = False
            await trio.sleep(self._policy.backoff_s(len(slot.crash_times)))
            slot.restarts += 1
            log.warning("restarting actor %s (restart %d)", slot.name, slot.restarts)
            readiness = _Readiness(None)

    async def _crashed(self, slot: _Slot, error: Exception) -> None:
        now = trio.current_time()
        slot.crash_times.append(now)
        while slot.crash_times and now - slot.crash_times[0] > self._policy.window_s:
            slot.crash_times.popleft()
        text = "".join(traceback.format_exception(error))
        log.error("actor %s crashed: %r", slot.name, error)
        if self._on_crash is not None:
            await self._on_crash(Crash(actor=slot.name, error=error, traceback=text, restarts=slot.restarts))
        if len(slot.crash_times) > self._policy.max_restarts:
            escalation = ActorEscalation(slot.name, len(slot.crash_times), self._policy.window_s)
            if self._on_escalation is not None:
                await self._on_escalation(escalation)
            raise escalation from error

    async def wait_finished(self, name: str) -> None:
        """Wait until actor ``name`` has returned (a clean exit, not a crash followed by a restart)."""
        await self._slots[name].finished.wait()

    def statistics(self) -> list[ActorStatistics]:
        return [
            ActorStatistics(
                name=slot.name,
                running=slot.running,
                restarts=slot.restarts,
                mailbox=slot.mailbox.statistics() if slot.mailbox is not None else None,
            )
            for slot in self._slots.values()
        ]

