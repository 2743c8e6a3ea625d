"""The actor runtime: mailboxes, request/reply and the one-for-one supervisor.

Timing tests run on trio's autojump clock, so restart backoffs of seconds take no real time and the times the
test reads are exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from lynkr.actors.runtime import (
    ActorEscalation,
    ActorGone,
    Crash,
    Mailbox,
    MailboxStatistics,
    ReplyTo,
    RestartPolicy,
    Supervisor,
    answer,
    ask,
)

# Test actors


class Refused(Exception):
    """An error of the test's own type, to see that it crosses the reply channel as itself."""


@attrs.frozen
class Divide:
    numerator: float
    denominator: float
    reply_to: ReplyTo[float]


async def divider(inbox: trio.MemoryReceiveChannel[Any], *, task_status: trio.TaskStatus[None]) -> None:
    async with inbox:
        task_status.started()
        async for message in inbox:
            if isinstance(message, Divide):
                await answer(message.reply_to, partial(_divide, message))
            else:
                async with message:  # a bare reply channel: hang up without answering
                    pass


async def _divide(message: Divide) -> float:
    if message.numerator < 0:
        raise Refused(f"no negative numbers, got {message.numerator}")
    return message.numerator / message.denominator


@attrs.define
class Worker:
    """An actor that records what it handles, and crashes on the message "crash"."""

    handled: list[Any] = attrs.Factory(list)
    incarnations: list[float] = attrs.Factory(list)  # trio time each incarnation started

    async def run(self, inbox: trio.MemoryReceiveChannel[Any], *, task_status: trio.TaskStatus[int]) -> None:
        self.incarnations.append(trio.current_time())
        async with inbox:
            task_status.started(len(self.incarnations))
            async for message in inbox:
                if message == "crash":
                    raise RuntimeError(f"told to crash in incarnation {len(self.incarnations)}")
                self.handled.append(message)

    async def wait_handled(self, count: int) -> None:
        while len(self.handled) < count:
            await trio.sleep(0.01)


@attrs.define
class Crashes:
    seen: list[Crash] = attrs.Factory(list)
    escalations: list[ActorEscalation] = attrs.Factory(list)

    async def on_crash(self, crash: Crash) -> None:
        self.seen.append(crash)

    async def on_escalation(self, escalation: ActorEscalation) -> None:
        self.escalations.append(escalation)


def supervisor(nursery: trio.Nursery, crashes: Crashes, **policy: Any) -> Supervisor:
    return Supervisor(
        nursery, policy=RestartPolicy(**policy), on_crash=crashes.on_crash, on_escalation=crashes.on_escalation
    )


# Mailbox


async def test_mailbox_statistics_track_depth_peak_and_received() -> None:
    mailbox: Mailbox[int] = Mailbox(4)
    for number in range(3):
        await mailbox.send(number)
    assert mailbox.statistics() == MailboxStatistics(capacity=4, depth=3, peak_depth=3, received=0)
    async with mailbox.receiver() as inbox:
        assert [await inbox.receive(), await inbox.receive()] == [0, 1]
    assert mailbox.statistics() == MailboxStatistics(capacity=4, depth=1, peak_depth=3, received=2)
    for number in range(3, 6):
        mailbox.send_nowait(number)
    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait(99)
    assert mailbox.statistics() == MailboxStatistics(capacity=4, depth=4, peak_depth=4, received=2)


async def test_closed_mailbox_is_drained_before_the_actor_sees_its_end() -> None:
    mailbox: Mailbox[str] = Mailbox(4)
    mailbox.send_nowait("a")
    mailbox.send_nowait("b")
    mailbox.close()
    async with mailbox.receiver() as inbox:
        assert [message async for message in inbox] == ["a", "b"]
    assert mailbox.statistics().received == 2


# Request and reply


async def test_ask_returns_the_answer() -> None:
    mailbox: Mailbox[Any] = Mailbox(4)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: divider(mailbox.receiver(), task_status=task_status))
        assert await ask(mailbox, partial(Divide, 6, 4)) == 1.5
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("numerator", "denominator", "error", "text"),
    [(-1, 1, Refused, "no negative numbers, got -1"), (1, 0, ZeroDivisionError, "division by zero")],
)
async def test_an_error_arrives_at_the_asker_with_its_original_type(
    numerator: float, denominator: float, error: type[Exception], text: str
) -> None:
    mailbox: Mailbox[Any] = Mailbox(4)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: divider(mailbox.receiver(), task_status=task_status))
        with pytest.raises(error) as raised:
            await ask(mailbox, partial(Divide, numerator, denominator))
        assert type(raised.value) is error
        assert str(raised.value) == text
        # The answering actor is unharmed by the error it passed on.
        assert await ask(mailbox, partial(Divide, 1, 2)) == 0.5
        nursery.cancel_scope.cancel()


async def test_ask_raises_actor_gone_when_the_reply_channel_is_closed_unanswered() -> None:
    mailbox: Mailbox[Any] = Mailbox(4)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: divider(mailbox.receiver(), task_status=task_status))
        with pytest.raises(ActorGone):
            await ask(mailbox, lambda reply_to: reply_to)
        nursery.cancel_scope.cancel()


async def test_an_answer_cancelled_mid_way_reaches_the_asker_as_actor_gone_not_as_its_cancellation() -> None:
    mailbox: Mailbox[Any] = Mailbox(4)
    started = trio.Event()

    async def forever() -> float:
        started.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def answering_actor(task_status: trio.TaskStatus[None]) -> None:
        async with mailbox.receiver() as inbox, trio.open_nursery() as calls:
            task_status.started()
            async for reply_to in inbox:
                calls.start_soon(answer, reply_to, forever)
                await started.wait()
                calls.cancel_scope.cancel()  # the actor stops (a crash would do the same) while the call runs
                return

    got: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(answering_actor)
        try:
            await ask(mailbox, lambda reply_to: reply_to)
        except BaseException as error:  # a stray Cancelled is exactly what must not arrive here
            got = error
    assert isinstance(got, ActorGone), repr(got)


# Supervisor: start-up


async def test_actors_start_in_order_and_each_sees_the_previous_one_ready(autojump_clock: MockClock) -> None:
    ready: list[str] = []
    seen_at_start: list[list[str]] = []

    def actor(name: str, delay: float) -> Callable[..., Awaitable[None]]:
        async def run(*, task_status: trio.TaskStatus[str]) -> None:
            seen_at_start.append(list(ready))
            await trio.sleep(delay)  # slow start-up work: the next actor must wait for it
            ready.append(name)
            task_status.started(f"{name} is ready")
            await trio.sleep_forever()

        return run

    async with trio.open_nursery() as nursery:
        actors = Supervisor(nursery, policy=RestartPolicy())
        assert await actors.start("recorder", actor("recorder", 2.0)) == "recorder is ready"
        assert await actors.start("providers", actor("providers", 1.0)) == "providers is ready"
        await actors.start("edge", actor("edge", 0.0))
        with pytest.raises(ValueError, match="'edge' is already supervised"):
            await actors.start("edge", actor("edge", 0.0))
        assert [(a.name, a.running, a.restarts, a.mailbox) for a in actors.statistics()] == [
            ("recorder", True, 0, None),
            ("providers", True, 0, None),
            ("edge", True, 0, None),
        ]
        nursery.cancel_scope.cancel()
    assert seen_at_start == [[], ["recorder"], ["recorder", "providers"]]


async def test_a_crash_before_readiness_propagates_from_start_without_a_restart() -> None:
    crashes = Crashes()

    async def cannot_start(*, task_status: trio.TaskStatus[None]) -> None:
        raise OSError("cannot bind the port")

    async with trio.open_nursery() as nursery:
        actors = supervisor(nursery, crashes)
        with pytest.raises(OSError, match="cannot bind the port"):
            await actors.start("edge", cannot_start)
        [edge] = actors.statistics()
        assert (edge.running, edge.restarts) == (False, 0)
    assert crashes.seen == []


# Supervisor: crashes and restarts


async def test_a_crashed_actor_is_restarted_alone_and_its_successor_handles_the_queued_messages(
    autojump_clock: MockClock,
) -> None:
    crashes = Crashes()
    crashy, sibling = Worker(), Worker()
    crashy_mailbox: Mailbox[Any] = Mailbox(8)
    sibling_mailbox: Mailbox[Any] = Mailbox(8)
    async with trio.open_nursery() as nursery:
        actors = supervisor(nursery, crashes, backoff_initial_s=0.5, backoff_max_s=4.0)
        await actors.start("crashy", crashy.run, mailbox=crashy_mailbox)
        await actors.start("sibling", sibling.run, mailbox=sibling_mailbox)
        # Queued together, before the actor runs again: the crash must not lose the two behind it.
        for message in ("crash", "first", "second"):
            crashy_mailbox.send_nowait(message)
        await crashy.wait_handled(2)
        sibling_mailbox.send_nowait("still here")
        await sibling.wait_handled(1)

        assert crashy.handled == ["first", "second"]
        assert len(crashy.incarnations) == 2
        assert crashy.incarnations[1] - crashy.incarnations[0] == pytest.approx(0.5)
        assert sibling.incarnations == [0.0] and sibling.handled == ["still here"]
        stats = {actor.name: actor for actor in actors.statistics()}
        assert (stats["crashy"].running, stats["crashy"].restarts) == (True, 1)
        assert (stats["sibling"].running, stats["sibling"].restarts) == (True, 0)
        assert stats["crashy"].mailbox is not None and stats["crashy"].mailbox.received == 3

        [crash] = crashes.seen
        assert crash.actor == "crashy" and crash.restarts == 0
        assert isinstance(crash.error, RuntimeError)
        assert "RuntimeError: told to crash in incarnation 1" in crash.traceback
        assert "in run" in crash.traceback  # the frame that raised is in it

        # The next crash waits twice as long before the restart.
        crashy_mailbox.send_nowait("crash")
        crashed_at = trio.current_time()
        while len(crashy.incarnations) < 3:
            await trio.sleep(0.01)
        assert crashy.incarnations[2] - crashed_at == pytest.approx(1.0)
        assert [c.restarts for c in crashes.seen] == [0, 1]
        nursery.cancel_scope.cancel()
    assert crashes.escalations == []


async def test_crashes_spread_wider_than_the_window_never_escalate(autojump_clock: MockClock) -> None:
    crashes = Crashes()
    worker = Worker()
    mailbox: Mailbox[Any] = Mailbox(8)
    async with trio.open_nursery() as nursery:
        actors = supervisor(nursery, crashes, max_restarts=2, window_s=10.0)
        await actors.start("worker", worker.run, mailbox=mailbox)
        for _ in range(5):
            mailbox.send_nowait("crash")
            await trio.sleep(11.0)
        assert len(worker.incarnations) == 6
        nursery.cancel_scope.cancel()
    assert crashes.escalations == []


async def test_too_many_crashes_in_the_window_escalate_with_a_clear_message(autojump_clock: MockClock) -> None:
    crashes = Crashes()
    worker = Worker()
    mailbox: Mailbox[Any] = Mailbox(8)
    with pytest.RaisesGroup(pytest.RaisesExc(ActorEscalation)) as raised:
        async with trio.open_nursery() as nursery:
            actors = supervisor(nursery, crashes, max_restarts=2, window_s=60.0, backoff_initial_s=0.1)
            await actors.start("worker", worker.run, mailbox=mailbox)
            for _ in range(3):
                mailbox.send_nowait("crash")
            await trio.sleep_forever()
    escalation = raised.value.exceptions[0]
    assert isinstance(escalation, ActorEscalation)
    assert str(escalation) == (
        "actor 'worker' crashed 3 times within 60 s; stopping lynkr. "
        "See `python -m lynkr log --type actor.crashed` for the tracebacks."
    )
    assert (escalation.actor, escalation.crashes, escalation.window_s) == ("worker", 3, 60.0)
    assert isinstance(escalation.__cause__, RuntimeError)
    assert crashes.escalations == [escalation]
    assert len(crashes.seen) == 3
    assert len(worker.incarnations) == 3


async def test_a_restarted_actor_that_fails_before_readiness_counts_as_a_crash(autojump_clock: MockClock) -> None:
    """Only the first start reports to a caller; a successor that cannot start is restarted like any crash."""
    crashes = Crashes()
    attempts: list[float] = []

    async def fails_after_first_start(*, task_status: trio.TaskStatus[None]) -> None:
        attempts.append(trio.current_time())
        if len(attempts) > 1:
            raise OSError(f"cannot start, attempt {len(attempts)}")
        task_status.started()
        raise RuntimeError("first incarnation crashed")

    with pytest.RaisesGroup(pytest.RaisesExc(ActorEscalation)):
        async with trio.open_nursery() as nursery:
            actors = supervisor(nursery, crashes, max_restarts=3, backoff_initial_s=0.1, backoff_max_s=1.0)
            await actors.start("edge", fails_after_first_start)
            await trio.sleep_forever()
    assert [type(crash.error) for crash in crashes.seen] == [RuntimeError, OSError, OSError, OSError]
    assert len(attempts) == 4
    assert [round(b - a, 3) for a, b in zip(attempts, attempts[1:])] == [0.1, 0.2, 0.4]


async def test_wait_finished_returns_once_the_actor_has_returned_not_when_it_crashes(autojump_clock: MockClock) -> None:
    runs = 0

    async def crashes_once(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal runs
        runs += 1
        task_status.started()
        await trio.sleep(1)
        if runs == 1:
            raise RuntimeError("first run fails")

    async with trio.open_nursery() as nursery:
        actors = Supervisor(nursery, policy=RestartPolicy(backoff_initial_s=0.5))
        await actors.start("flaky", crashes_once)
        with trio.fail_after(10):
            await actors.wait_finished("flaky")
        finished_at = trio.current_time()
    assert runs == 2
    assert finished_at >= 2.5  # one second, the crash, half a second of backoff, one more second
