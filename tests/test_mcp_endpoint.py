"""lynkr as an MCP server at /mcp: the SDK's own client and the real Claude Code CLI use lynkr's tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from lynkr.tools.events import ToolRan
from tests.conftest import init_git_repo, make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import run_claude

# The SDK's streamable HTTP client leaves its event-stream generators to the garbage collector when its task group
# is cancelled at shutdown; trio reports each as an unraisable ResourceWarning.  That is the SDK's, not lynkr's.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


async def _session_call(url: str, headers: dict[str, str], name: str, arguments: dict[str, Any]) -> Any:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        result = await session.call_tool(name, arguments)
        return listed, result


async def test_the_sdk_client_lists_and_calls_lynkrs_tools_under_its_policy(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    init_git_repo(workspace)
    (workspace / "new.txt").write_text("untracked\n")
    config = make_config(tmp_path, {"MCP_MANIFEST_DIRS": "", "LYNKR_API_KEY": "sk-lynkr-mcp"})
    async with running_lynkr(config) as running:
        url = f"{running.base_url}/mcp"
        listed, result = await _session_call(url, {"x-api-key": "sk-lynkr-mcp"}, "workspace_git_status", {})
        names = {tool.name for tool in listed.tools}
        assert {"workspace_git_status", "workspace_git_diff", "fs_read"} <= names
        assert "Bash" not in names, "the CLI's own tools are not served back to it"
        assert isinstance(result, types.CallToolResult) and not result.is_error
        assert "new.txt" in result.content[0].text
        _, outside = await _session_call(url, {"Authorization": "Bearer sk-lynkr-mcp"}, "fs_read", {"path": "/etc/shadow"})
        assert outside.is_error and "policy refused" in outside.content[0].text
        async with httpx.AsyncClient(base_url=running.base_url) as client:
            unauthenticated = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            from_a_page = await client.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"x-api-key": "sk-lynkr-mcp", "origin": "https://evil.example"},
            )
        assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["type"] == "authentication_error"
        assert from_a_page.status_code == 403
    ran = [e for e in recorded_events(config.data_dir) if isinstance(e, ToolRan)]
    assert [e.canonical for e in ran] == ["workspace_git_status"] and ran[0].session_id == "mcp"


@pytest.mark.cli
async def test_claude_code_runs_lynkrs_git_status_through_mcp(claude_exe: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    init_git_repo(workspace)
    (workspace / "README.md").write_text("changed by the test\n")
    (workspace / "new.txt").write_text("untracked\n")
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="mcp__lynkr__workspace_git_status", arguments={}, id="call_git_1"),
        Reply.text("The workspace has changes."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(
            tmp_path,
            {
                "MCP_MANIFEST_DIRS": "",
                "MODEL_PROVIDER": "openai",
                "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
                "OPENAI_API_KEY": "sk-upstream-openai",
                "OPENAI_MODEL": "gpt-test",
            },
        )
        async with running_lynkr(config) as running:
            mcp_config = tmp_path / "claude-mcp.json"
            mcp_config.write_text(
                json.dumps({"mcpServers": {"lynkr": {"type": "http", "url": f"{running.base_url}/mcp"}}})
            )
            result = await run_claude(
                claude_exe,
                base_url=running.base_url,
                prompt="What is the git status of the workspace?",
                cwd=workspace,
                args=["--mcp-config", str(mcp_config), "--strict-mcp-config"],
                extra_env={"ENABLE_TOOL_SEARCH": "false"},
            )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == "The workspace has changes."
    calls = fake.model_calls
    assert len(calls) == 2
    offered = [tool["function"]["name"] for tool in calls[0].request.json["tools"]]
    assert "mcp__lynkr__workspace_git_status" in offered
    [answer] = [m for m in calls[1].request.json["messages"] if m.get("role") == "tool"]
    assert answer["tool_call_id"] == "call_git_1"
    text = answer["content"] if isinstance(answer["content"], str) else json.dumps(answer["content"])
    assert "new.txt" in text and "README.md" in text
