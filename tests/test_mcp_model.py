"""Bridged MCP tools reach the model through lynkr, and the model's calls come back as tool_results.

The published ``mcp-server-time`` server, a fake OpenAI upstream on loopback that asks for
``mcp__time__get_current_time``, and a client that sends a plain Messages request: in both execution modes lynkr
runs the call itself and the client receives only the final text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from lynkr.tools.events import ToolRan
from tests.conftest import make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.test_mcp_bridge import wait_state

TIME_SERVER = Path(sys.executable).parent / "mcp-server-time"
CLIENT_TOOLS = [
    {
        "name": "Bash",
        "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }
]


@pytest.mark.skipif(not TIME_SERVER.exists(), reason="mcp-server-time is not installed (pip install mcp-server-time)")
@pytest.mark.parametrize("mode", ["client", "server"])
async def test_a_models_call_to_a_bridged_tool_comes_back_as_its_tool_result(tmp_path: Path, mode: str) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="mcp__time__get_current_time", arguments={"timezone": "Asia/Tokyo"}, id="call_time"),
        Reply.text("It is evening in Tokyo."),
    )
    servers = {"time": {"command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"]}}
    async with serve_fake(fake) as upstream:
        config = make_config(
            tmp_path,
            {
                "MODEL_PROVIDER": "openai",
                "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
                "OPENAI_API_KEY": "sk-upstream-secret",
                "OPENAI_MODEL": "gpt-test",
                "TOOL_EXECUTION_MODE": mode,
                "MCP_SERVERS": json.dumps(servers),
                "MCP_MANIFEST_DIRS": "",
            },
        )
        async with running_lynkr(config) as running, httpx.AsyncClient(base_url=running.base_url, timeout=60) as client:
            await wait_state(running, "time", "ready")
            request = {
                "model": "claude-sonnet-5-5",
                "max_tokens": 200,
                "tools": CLIENT_TOOLS,
                "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
            }
            response = await client.post("/v1/messages", json=request)
    assert response.status_code == 200, response.text
    message = response.json()
    assert [block["type"] for block in message["content"]] == ["text"]
    assert message["content"][0]["text"] == "It is evening in Tokyo."
    assert message["stop_reason"] == "end_turn"
    first, second = fake.model_calls
    offered = [tool["function"]["name"] for tool in first.request.json["tools"]]
    assert "mcp__time__get_current_time" in offered and "Bash" in offered
    [answer] = [m for m in second.request.json["messages"] if m.get("role") == "tool"]
    assert answer["tool_call_id"] == "call_time"
    content = answer["content"] if isinstance(answer["content"], str) else answer["content"][0]["text"]
    result = json.loads(content)
    assert result["timezone"] == "Asia/Tokyo" and result["datetime"]
    ran = [e for e in recorded_events(config.data_dir) if isinstance(e, ToolRan)]
    assert [(e.canonical, e.is_error) for e in ran] == [("mcp__time__get_current_time", False)]
