"""The agent loop in a real daemon, driven over HTTP against a scripted fake upstream (OpenAI wire).

Server mode: lynkr runs the tool calls it knows in WORKSPACE_ROOT and loops until a final answer, streaming
one message.  Hybrid: lynkr runs its own calls of a round and returns the client's, then splices its rounds
back into the client's next request, also after a restart.  Limits end a turn with a message saying so, and a
tool worker that crashes mid-call gives the waiting turn an error result while the daemon keeps serving.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pygit2
import trio

from lynkr.agent.events import LoopEnded, RoundRan, RoundsKept
from lynkr.config import Config
from lynkr.daemon import Running
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
