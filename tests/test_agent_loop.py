"""The agent loop in a real daemon, driven over HTTP against a scripted fake upstream (OpenAI wire).

Server mode: lynkr runs the tool calls it knows in WORKSPACE_ROOT and loops until a final answer, streaming
one message.  Hybrid: lynkr runs its own calls of a round and returns the client's, then splices its rounds
back into the client's next request, also after a restart.  Limits end a turn with a message saying so, and a
tool worker that crashes mid-call gives the waiting turn an error result while the daemon keeps serving.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from lynkr.agent.events import LoopEnded, RoundRan, RoundsKept
from lynkr.config import Config
from lynkr.daemon import Running
from lynkr.events.catalog import ResponseCompleted
from lynkr.tools.events import ToolRan
from tests.conftest import init_git_repo, make_config, recorded, recorded_events, running_lynkr, sse_events
from tests.fakes import FakeUpstream, Reply, ToolCall, serve_fake

# The client's own tools, shaped like the CLI's (only what the tests need).
CLIENT_TOOLS = [
    {
        "name": "Bash",
        "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
    {
        "name": "Agent",
        "description": "Start a subagent",
        "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
    },
]
FIRST_USER = {"role": "user", "content": "please work"}


def _request(messages: list[dict[str, Any]], *, stream: bool = True) -> dict[str, Any]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 200, "stream": stream, "tools": CLIENT_TOOLS,
            "messages": messages}


def _env(upstream: str, **extra: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-secret-1234",
        "OPENAI_MODEL": "gpt-test",
        "LYNKR_RESTART_BACKOFF_INITIAL_S": "0.05",
        **extra,
    }


@asynccontextmanager
async def _lynkr(config: Config) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=30) as client:
        yield lynkr, client


def _openai_messages(call_index: int, fake: FakeUpstream) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = fake.model_calls[call_index].request.json["messages"]
    return messages


def _tool_results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(tool_call_id, content) of every tool message the upstream saw, in order."""
    return [(m["tool_call_id"], m["content"] if isinstance(m["content"], str) else json.dumps(m["content"]))
            for m in messages if m.get("role") == "tool"]


async def test_server_mode_runs_the_tools_in_the_workspace_and_streams_one_message(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo hi > a.txt"}, id="call_1", text="First, a file."),
        Reply.tool_call(name="Write", arguments={"file_path": "b.txt", "content": "one\n"}, id="call_2"),
        Reply.tool_call(name="Edit", arguments={"file_path": "b.txt", "old_string": "one", "new_string": "two"},
                        id="call_3"),
        Reply.text("All done."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        async with _lynkr(config) as (_, client):
            response = await client.post("/v1/messages", json=_request([FIRST_USER]))
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names.count("message_start") == 1 and names.count("message_stop") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names  # kept alive while the tools ran
    starts = [data for name, data in events if name == "content_block_start"]
    assert [start["index"] for start in starts] == list(range(len(starts)))  # consecutive across rounds
    assert all(start["content_block"]["type"] == "text" for start in starts)  # no server-run tool_use
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "First, a file.All done."
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 4 * 5  # the fake's 5 output tokens per round, summed
    workspace = config.workspace_root
    assert (workspace / "a.txt").read_text() == "hi\n"
    assert (workspace / "b.txt").read_text() == "two\n"
    assert len(fake.model_calls) == 4
    # Each round carries the results of every round before it, in order.
    for index, expected_ids in enumerate([[], ["call_1"], ["call_1", "call_2"], ["call_1", "call_2", "call_3"]]):
        assert [tool_id for tool_id, _ in _tool_results(_openai_messages(index, fake))] == expected_ids
    offered = {tool["function"]["name"] for tool in fake.model_calls[0].request.json["tools"]}
    assert {"Bash", "Agent", "Write", "Edit", "fs_read", "workspace_git_status"} <= offered
    assert sorted(offered) == sorted(set(offered))  # lynkr never offers a name twice
    events_logged = recorded_events(config.data_dir)
    ran = [e for e in events_logged if isinstance(e, ToolRan)]
    assert [(e.tool, e.is_error) for e in ran] == [("Bash", False), ("Write", False), ("Edit", False)]
    rounds = [e for e in events_logged if isinstance(e, RoundRan)]
    assert [(r.step, r.tools) for r in rounds] == [(1, ["Bash"]), (2, ["Write"]), (3, ["Edit"]), (4, [])]
    ended = [e for e in events_logged if isinstance(e, LoopEnded)]
    assert [(e.steps, e.tool_calls, e.reason) for e in ended] == [(4, 3, "end_turn")]
    # The last completion recorded for the request is the one message the client received.
    completed = [e for e in events_logged if isinstance(e, ResponseCompleted)]
    assert len(completed) == 5 and completed[-1].provider == "agent-loop"
    assert [b["text"] for b in completed[-1].message["content"]] == ["First, a file.", "All done."]


async def test_a_non_streaming_client_gets_the_assembled_message_with_lynkr_tool_notes(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "echo noted"}, id="call_1"), Reply.text("Done."))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server", LYNKR_TOOL_NOTES="1"))
        async with _lynkr(config) as (_, client):
            response = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
    assert response.status_code == 200, response.text
    message = response.json()
    assert [block["type"] for block in message["content"]] == ["text", "text"]
    note, answer = (block["text"] for block in message["content"])
    assert note.startswith("[lynkr ran Bash: done") and note.endswith("]\n")
    assert answer == "Done."
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == 10
    tool_message = _tool_results(_openai_messages(1, fake))
    assert tool_message[0][0] == "call_1" and "noted" in tool_message[0][1]


async def test_a_call_lynkr_cannot_run_goes_back_to_the_client_and_the_server_rounds_are_spliced_back(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo server > s.txt"}, id="call_bash"),
        Reply.tool_call(name="Agent", arguments={"prompt": "look around"}, id="call_agent", text="Asking a helper."),
        Reply.text("Thanks."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        async with _lynkr(config) as (_, client):
            first = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
            assert first.status_code == 200, first.text
            received = first.json()
            assert received["stop_reason"] == "tool_use"
            assert [(b["type"], b.get("name")) for b in received["content"]] == [("text", None), ("tool_use", "Agent")]
            # The client answers its call, echoing the message it received (with the CLI's cache marker).
            echoed = [*received["content"][:-1], {**received["content"][-1], "cache_control": {"type": "ephemeral"}}]
            follow_up = [
                FIRST_USER,
                {"role": "assistant", "content": echoed},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_agent", "content": "helped"}]},
            ]
            second = await client.post("/v1/messages", json=_request(follow_up, stream=False))
    assert second.json()["content"] == [{"type": "text", "text": "Thanks."}]
    assert (config.workspace_root / "s.txt").read_text() == "server\n"
    upstream_saw = _openai_messages(2, fake)
    assistants = [m for m in upstream_saw if m["role"] == "assistant"]
    assert [[call["id"] for call in m["tool_calls"]] for m in assistants] == [["call_bash"], ["call_agent"]]
    assert [tool_id for tool_id, _ in _tool_results(upstream_saw)] == ["call_bash", "call_agent"]
    assert [m["role"] for m in upstream_saw if m["role"] != "system"] == ["user", "assistant", "tool", "assistant", "tool"]


async def test_a_hybrid_round_is_spliced_back_after_a_daemon_restart(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    init_git_repo(workspace)
    (workspace / "README.md").write_text("changed\n")
    fake = FakeUpstream()
    fake.push(
        Reply.tool_calls(
            ToolCall(name="Bash", arguments={"command": "echo client"}, id="call_client"),
            ToolCall(name="workspace_git_status", arguments={}, id="call_server"),
            text="Looking.",
        ),
        Reply.text("Both seen."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, LYNKR_CLIENT_MODE_TOOLS="workspace"))
        async with _lynkr(config) as (_, client):
            first = await client.post("/v1/messages", json=_request([FIRST_USER]))
        events = sse_events(first.text)
        assert [d["content_block"]["type"] for n, d in events if n == "content_block_start"] == ["text", "tool_use"]
        [tool_start] = [d["content_block"] for n, d in events if n == "content_block_start" and d["index"] == 1]
        assert tool_start["name"] == "Bash" and tool_start["id"] == "call_client"
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        # A new daemon on the same data folder: the splice comes back from the log.
        async with _lynkr(config) as (_, client):
            follow_up = [
                FIRST_USER,
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "call_client", "name": "Bash", "input": {"command": "echo client"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_client", "content": "client"},
                    {"type": "text", "text": "and go on"},
                ]},
            ]
            second = await client.post("/v1/messages", json=_request(follow_up, stream=False))
    assert second.json()["content"] == [{"type": "text", "text": "Both seen."}]
    upstream_saw = _openai_messages(1, fake)
    [assistant] = [m for m in upstream_saw if m["role"] == "assistant"]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_client", "call_server"]
    position = upstream_saw.index(assistant)
    results = upstream_saw[position + 1 : position + 3]
    assert [m["tool_call_id"] for m in results] == ["call_client", "call_server"]
    assert "README.md" in results[1]["content"]
    assert upstream_saw[position + 3]["role"] == "user"  # the client's own text follows the results
    kept = [r for r in recorded(config.data_dir) if isinstance(r.event, RoundsKept)]
    assert len(kept) == 1 and kept[0].stream == "agent"


async def test_the_step_limit_ends_the_turn_with_a_message_and_the_results_wait_for_the_next_request(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo one"}, id="call_1"),
        Reply.tool_call(name="Bash", arguments={"command": "echo two"}, id="call_2"),
        Reply.text("Continuing."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server", POLICY_MAX_STEPS="2"))
        async with _lynkr(config) as (_, client):
            first = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
            received = first.json()
            assert received["stop_reason"] == "end_turn"
            assert "POLICY_MAX_STEPS is 2" in received["content"][-1]["text"]
            assert len(fake.model_calls) == 2
            follow_up = [FIRST_USER, {"role": "assistant", "content": received["content"]},
                         {"role": "user", "content": "continue"}]
            second = await client.post("/v1/messages", json=_request(follow_up, stream=False))
    assert second.json()["content"][0]["text"] == "Continuing."
    upstream_saw = _openai_messages(2, fake)
    assert [tool_id for tool_id, _ in _tool_results(upstream_saw)] == ["call_1", "call_2"]
    assert "two" in _tool_results(upstream_saw)[1][1]
    assert upstream_saw[-1] == {"role": "user", "content": "continue"}
    ended = [e for e in recorded_events(config.data_dir) if isinstance(e, LoopEnded)]
    assert [(e.steps, e.tool_calls, e.reason) for e in ended] == [(2, 2, "max_steps"), (1, 0, "end_turn")]


async def test_the_tool_call_limit_ends_the_turn_without_running_the_call_over_it(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo one > one.txt"}, id="call_1"),
        Reply.tool_call(name="Bash", arguments={"command": "echo two > two.txt"}, id="call_2"),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server", POLICY_MAX_TOOL_CALLS="1"))
        async with _lynkr(config) as (_, client):
            response = await client.post("/v1/messages", json=_request([FIRST_USER]))
    events = sse_events(response.text)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert "POLICY_MAX_TOOL_CALLS (1)" in text and "1 ran" in text
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert (config.workspace_root / "one.txt").exists()
    assert not (config.workspace_root / "two.txt").exists()
    assert len(fake.model_calls) == 2
    ended = [e for e in recorded_events(config.data_dir) if isinstance(e, LoopEnded)]
    assert [(e.steps, e.tool_calls, e.reason) for e in ended] == [(2, 1, "max_tool_calls")]


async def test_a_tool_worker_crash_gives_the_waiting_turn_an_error_result_and_lynkr_keeps_serving(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "touch started.txt; sleep 30"}, id="call_slow"),
        Reply.text("Recovered."),
        Reply.tool_call(name="Bash", arguments={"command": "echo after > after.txt"}, id="call_after"),
        Reply.text("Still here."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        workspace = config.workspace_root
        async with _lynkr(config) as (lynkr, client):
            answers: list[httpx.Response] = []

            async def ask() -> None:
                answers.append(await client.post("/v1/messages", json=_request([FIRST_USER], stream=False)))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                with trio.fail_after(20):
                    while not (workspace / "started.txt").exists():
                        await trio.sleep(0.02)
                # A message the worker cannot handle: it fails the way any bug in it would, mid-call.
                lynkr.mailboxes["tools"].send_nowait("not a tool call")
            [crashed] = answers
            assert crashed.status_code == 200, crashed.text
            assert crashed.json()["content"] == [{"type": "text", "text": "Recovered."}]
            with trio.fail_after(5):  # the answer need not wait for the restart's backoff
                while not ((tools := (await client.get("/health")).json()["actors"]["tools"])["running"]
                           and tools["restarts"]):
                    await trio.sleep(0.01)
            assert tools["restarts"] == 1
            after = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
            assert after.json()["content"] == [{"type": "text", "text": "Still here."}]
    [(tool_id, content)] = _tool_results(_openai_messages(1, fake))
    assert tool_id == "call_slow" and "tool worker stopped" in content
    assert (workspace / "after.txt").read_text() == "after\n"
    crashes = [r for r in recorded(config.data_dir) if r.event.TYPE == "actor.crashed"]
    assert [r.event.actor for r in crashes] == ["tools"]  # type: ignore[attr-defined]


async def test_a_tool_that_wants_a_summary_gets_it_from_the_provider_pool_and_the_answer_is_recorded(
    tmp_path: Path,
) -> None:
    init_git_repo(tmp_path / "workspace")
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="workspace_git_release_notes", arguments={}, id="call_notes"),
        Reply.text("One commit that starts the project."),  # the summary the tool asks for
        Reply.text("Here are the notes."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        async with _lynkr(config) as (_, client):
            response = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
    assert response.json()["content"] == [{"type": "text", "text": "Here are the notes."}]
    summary_request = fake.model_calls[1].request.json
    assert "tools" not in summary_request and len(summary_request["messages"]) == 1
    assert "initial" in summary_request["messages"][0]["content"]  # the range's commit, for the model to summarise
    [(tool_id, content)] = _tool_results(_openai_messages(2, fake))
    assert tool_id == "call_notes"
    assert content.startswith("Summary (written by the model):\nOne commit that starts the project.")
    summaries = [r for r in recorded(config.data_dir) if r.stream == "tools.summaries"]
    assert [r.event.TYPE for r in summaries][-1] == "response.completed"


async def test_a_client_that_goes_away_mid_loop_stops_the_running_tool_and_the_loop(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo $$ > shell.pid; sleep 20; touch finished.txt"},
                        id="call_slow"),
        Reply.text("never asked for"),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        workspace = config.workspace_root
        async with _lynkr(config) as (_, client):
            async with client.stream("POST", "/v1/messages", json=_request([FIRST_USER])) as response:
                assert response.status_code == 200
                with trio.fail_after(20):
                    while not (workspace / "shell.pid").exists() or not (workspace / "shell.pid").read_text():
                        await trio.sleep(0.02)
            # The stream is closed: lynkr sees the disconnect, cancels the turn, and the turn stops its tool,
            # long before the command would have ended, while the daemon keeps running.
            pid = int((workspace / "shell.pid").read_text())
            with trio.fail_after(10):
                while _alive(pid):
                    await trio.sleep(0.05)
            assert (await client.get("/health")).status_code == 200
    assert len(fake.model_calls) == 1
    assert not (workspace / "finished.txt").exists()
    ended = [e for e in recorded_events(config.data_dir) if isinstance(e, LoopEnded)]
    assert [(e.steps, e.reason) for e in ended] == [(1, "cancelled")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_lynkr_tool_call_whose_input_is_not_json_ends_the_turn_with_an_error_that_says_so(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments='{"command": "echo', id="call_broken"), Reply.text("ok"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        async with _lynkr(config) as (_, client):
            response = await client.post("/v1/messages", json=_request([FIRST_USER], stream=False))
            assert (await client.get("/health")).status_code == 200
    assert response.status_code == 502
    error = response.json()
    assert error["type"] == "error" and "not valid JSON" in error["error"]["message"]
    assert not (config.workspace_root / "echo").exists()
    ended = [e for e in recorded_events(config.data_dir) if isinstance(e, LoopEnded)]
    assert [(e.steps, e.tool_calls, e.reason) for e in ended] == [(1, 0, "error")]
