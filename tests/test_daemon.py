"""The daemon in-process: a real actor crashes inside it, is restarted and recorded, and lynkr keeps serving.

The crash is a real fault in the actor, not a patch: a message of the wrong kind put into its mailbox through
`Running.mailboxes` makes it fail the way any bug in it would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.actors.runtime import ActorEscalation
from lynkr.daemon import Running, run_daemon
from lynkr.events.catalog import ActorCrashed, ActorEscalated, ResponseCompleted
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Recorded
from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake

MESSAGE = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def _env(upstream: str, **extra: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-secret-1234",
        "OPENAI_MODEL": "gpt-test",
        "LYNKR_RESTART_BACKOFF_INITIAL_S": "0.05",
        **extra,
    }


def _log(data_dir: Path) -> list[Recorded]:
    with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
        return list(store.read())


async def _actor(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    health = await client.get("/health")
    actor: dict[str, Any] = health.json()["actors"][name]
    return actor


@pytest.mark.parametrize("actor", ["session", "recorder", "providers", "tools"])
async def test_a_crashed_actor_is_restarted_and_recorded_while_the_daemon_keeps_serving(
    tmp_path: Path, actor: str
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("before"), Reply.text("during"), Reply.text("after"))
    answered: dict[str, str] = {}
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream))
        async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:

            async def ask(expected: str) -> None:
                response = await client.post("/v1/messages", json=MESSAGE)
                assert response.status_code == 200, response.text
                assert response.json()["content"][0]["text"] == expected
                answered[expected] = response.headers["request-id"]

            await ask("before")
            await trio.sleep(0.05)  # past the recorder's commit delay: "before" is on disk
            # A message the actor cannot handle, then a real request right behind it: the request waits in the
            # mailbox through the crash and the restart, and the successor answers it.
            lynkr.mailboxes[actor].send_nowait("not a message this actor understands")
            await ask("during")
            # The answer need not wait for the crash (the recorder is only told), nor for the restart's backoff.
            with trio.fail_after(5):
                while (state := await _actor(client, actor)) and not (state["running"] and state["restarts"]):
                    await trio.sleep(0.01)
            assert state["restarts"] == 1
            await ask("after")
            health = await client.get("/health")
            assert health.status_code == 200
            assert all(other["restarts"] == 0 for name, other in health.json()["actors"].items() if name != actor)
    records = _log(config.data_dir)
    crashes = [r for r in records if isinstance(r.event, ActorCrashed)]
    assert len(crashes) == 1
    crash = crashes[0].event
    assert isinstance(crash, ActorCrashed)
    assert crash.actor == actor and crash.restarts == 0
    assert crash.error_type == "AttributeError"
    assert "'str' object has no attribute" in crash.message
    assert f"lynkr/actors/{actor}.py" in crash.traceback
    assert crashes[0].stream == "daemon"
    completed = {r.event.request_id for r in records if isinstance(r.event, ResponseCompleted)}
    # A recorder crash loses the batch it had already taken from its mailbox behind the bad message, which may
    # hold the "during" request's events; what was committed before and what comes after the restart is there.
    expected = ("before", "after") if actor == "recorder" else ("before", "during", "after")
    assert {answered[text] for text in expected} <= completed
    assert records[-1].event.TYPE == "daemon.stopped"


async def test_an_actor_crashing_too_often_stops_the_daemon_with_the_escalation_recorded(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"LYNKR_SUPERVISOR_MAX_RESTARTS": "0"})
    escalation = pytest.RaisesExc(ActorEscalation, match="actor 'session' crashed 1 times")
    with pytest.RaisesGroup(escalation, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(run_daemon, config)
            running.mailboxes["session"].send_nowait(None)
            await trio.sleep_forever()
    records = _log(config.data_dir)
    types = [r.event.TYPE for r in records]
    assert "actor.crashed" in types
    escalated = [r.event for r in records if isinstance(r.event, ActorEscalated)]
    assert [(e.actor, e.crashes) for e in escalated] == [("session", 1)]
    assert records[-1].event.TYPE == "daemon.stopped"
    assert "crashed 1 times" in records[-1].event.reason  # type: ignore[attr-defined]
