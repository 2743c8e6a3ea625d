"""Conversation sessions: every turn is recorded under its session's stream, then handed to the providers.

In client mode the CLI holds the transcript and sends it whole each turn, so the session actor's job is to
give each turn its place in the log; the transcript is a fold of those events (see events/projections.py).
"""

from __future__ import annotations

import trio

from lynkr.actors.messages import Turn
from lynkr.actors.providers import Message as ProviderMessage
from lynkr.actors.recorder import Recorder
from lynkr.actors.runtime import Mailbox
from lynkr.events.catalog import RequestReceived


async def run(
    inbox: trio.MemoryReceiveChannel[Turn],
    *,
    providers: Mailbox[ProviderMessage],
    recorder: Recorder,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with inbox:
        task_status.started()
        async for turn in inbox:
            try:
                await _hand_over(turn, providers, recorder)
            except BaseException:
                turn.reply.close()  # the edge then answers "lost" at once instead of waiting for ever
                raise


async def _hand_over(turn: Turn, providers: Mailbox[ProviderMessage], recorder: Recorder) -> None:
    await recorder.record(
        turn.session_id,
        RequestReceived.of(
            request_id=turn.request_id,
            session_id=turn.session_id,
            path="/v1/messages",
            headers=dict(turn.headers),
            request=turn.request,
            body=turn.body,
        ),
    )
    await providers.send(turn)
