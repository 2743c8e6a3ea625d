"""`lynkr mcp` as a user runs it: against a running daemon, and with none running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import trio

from tests.conftest import make_config, running_lynkr
from tests.test_mcp_bridge import fake_server, wait_state

ROOT = Path(__file__).resolve().parent.parent


async def _lynkr_mcp(env: dict[str, str], cwd: Path) -> dict[str, object]:
    done = await trio.run_process(
        [sys.executable, "-m", "lynkr", "mcp", "--json"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_stdout=True,
        capture_stderr=True,
        stdin=subprocess.DEVNULL,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def test_lynkr_mcp_lists_state_tools_and_last_error(tmp_path: Path) -> None:
    servers = {"fake": fake_server(), "missing": {"command": "no-such-mcp-server-xyz"}}
    env = {"MCP_SERVERS": json.dumps(servers), "MCP_MANIFEST_DIRS": "", "LYNKR_API_KEY": "sk-cli"}
    config = make_config(tmp_path, env)
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        await wait_state(running, "missing", "gave_up")
        port = running.base_url.rsplit(":", 1)[1]
        shown = await _lynkr_mcp({**env, "PORT": port, "LYNKR_HOST": "127.0.0.1",
                                  "WORKSPACE_ROOT": str(config.workspace_root)}, config.workspace_root)
    assert shown["note"] is None
    by_name = {server["name"]: server for server in shown["servers"]}  # type: ignore[attr-defined]
    assert by_name["fake"]["state"] == "ready"
    assert "mcp__fake__echo" in [tool["name"] for tool in by_name["fake"]["tools"]]
    assert by_name["missing"]["state"] == "gave_up" and "not found on PATH" in by_name["missing"]["last_error"]


async def test_lynkr_mcp_without_a_daemon_shows_the_configuration_and_says_so(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": {"time": {"command": "mcp-server-time"}}}))
    shown = await _lynkr_mcp({"PORT": "9", "LYNKR_HOST": "127.0.0.1", "MCP_MANIFEST_DIRS": "",
                              "WORKSPACE_ROOT": str(workspace)}, workspace)
    assert "did not answer" in str(shown["note"])
    assert shown["servers"] == [
        {"name": "time", "transport": "stdio", "source": str(workspace / ".mcp.json"), "state": "not running",
         "tools": [], "last_error": ""}
    ]
