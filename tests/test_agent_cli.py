"""The real Claude Code CLI against lynkr's agent loop: server mode, client mode and hybrid.

The fake upstream (OpenAI wire) asks for `Bash`, then `Write`, then `Edit`, then answers.  In server mode lynkr
runs them in its WORKSPACE_ROOT and the CLI sees one answer; in client mode the CLI runs them in its own folder.
In hybrid mode one round calls the CLI's `Bash` and lynkr's `workspace_git_status`: the CLI runs only `Bash`,
and the next upstream request holds both calls and both results, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pygit2
import pytest

from lynkr.config import Config
from tests.conftest import init_git_repo, make_config, running_lynkr
from tests.fakes import FakeUpstream, Reply, ToolCall, serve_fake
from tests.fakes.claude_cli import run_claude

pytestmark = pytest.mark.cli

FINAL_TEXT = "The files are ready."


def _env(upstream: str, **extra: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-openai",
        "OPENAI_MODEL": "gpt-test",
        **extra,
    }


def _bash_write_edit_then_text(fake: FakeUpstream) -> None:
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo hi > a.txt", "description": "write a.txt"},
                        id="call_bash"),
        Reply.tool_call(name="Write", arguments={"file_path": "b.txt", "content": "one\n"}, id="call_write"),
        Reply.tool_call(name="Edit", arguments={"file_path": "b.txt", "old_string": "one", "new_string": "two"},
                        id="call_edit"),
        Reply.text(FINAL_TEXT),
    )


def _tool_messages(call_json: Any) -> list[dict[str, Any]]:
    return [message for message in call_json["messages"] if message.get("role") == "tool"]


async def test_cli_in_server_mode_gets_only_the_final_answer_while_lynkr_runs_the_tools_in_its_workspace(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    _bash_write_edit_then_text(fake)
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream, TOOL_EXECUTION_MODE="server"))
        async with running_lynkr(config) as lynkr:
            result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="make the files", cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.json["num_turns"] == 1
    assert result.result == FINAL_TEXT
    workspace = config.workspace_root
    assert (workspace / "a.txt").read_text() == "hi\n"
    assert (workspace / "b.txt").read_text() == "two\n"
    assert not (claude_workdir / "a.txt").exists() and not (claude_workdir / "b.txt").exists()
    calls = fake.model_calls
    assert len(calls) == 4
    for index, expected in enumerate([[], ["call_bash"], ["call_bash", "call_write"],
                                      ["call_bash", "call_write", "call_edit"]]):
        tool_messages = _tool_messages(calls[index].request.json)
        assert [message["tool_call_id"] for message in tool_messages] == expected
    bash_result = _tool_messages(calls[3].request.json)[0]["content"]
    assert "error" not in bash_result.lower()


async def test_cli_in_client_mode_runs_the_same_tools_itself(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    _bash_write_edit_then_text(fake)
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, _env(upstream))
        async with running_lynkr(config) as lynkr:
            result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="make the files", cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == FINAL_TEXT
    assert result.json["num_turns"] == 4
    assert (claude_workdir / "a.txt").read_text() == "hi\n"
    assert (claude_workdir / "b.txt").read_text() == "two\n"
    assert not (config.workspace_root / "a.txt").exists()
    assert len(fake.model_calls) == 4
    offered = {tool["function"]["name"] for tool in fake.model_calls[0].request.json["tools"]}
    assert not any(name.startswith("workspace_") for name in offered)  # client mode adds none by default


async def test_cli_in_hybrid_mode_runs_only_its_own_call_and_the_upstream_sees_both_pairs_in_order(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    init_git_repo(tmp_path / "workspace")
    (tmp_path / "workspace" / "README.md").write_text("changed by the test\n")
    (tmp_path / "workspace" / "new.txt").write_text("untracked\n")
    fake = FakeUpstream()
    fake.push(
        Reply.tool_calls(
            ToolCall(name="Bash", arguments={"command": "echo client > c.txt", "description": "c"}, id="call_client"),
            ToolCall(name="workspace_git_status", arguments={}, id="call_server"),
        ),
        Reply.text(FINAL_TEXT),
    )
    async with serve_fake(fake) as upstream:
        config: Config = make_config(tmp_path, _env(upstream, LYNKR_CLIENT_MODE_TOOLS="workspace"))
        async with running_lynkr(config) as lynkr:
            result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="status please", cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == FINAL_TEXT
    assert (claude_workdir / "c.txt").read_text() == "client\n"
    calls = fake.model_calls
    assert len(calls) == 2
    offered = {tool["function"]["name"] for tool in calls[0].request.json["tools"]}
    assert "workspace_git_status" in offered and "Bash" in offered
    second = calls[1].request.json["messages"]
    [assistant] = [message for message in second if message.get("role") == "assistant"]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_client", "call_server"]
    position = second.index(assistant)
    results = second[position + 1 : position + 3]
    assert [message["tool_call_id"] for message in results] == ["call_client", "call_server"]
    status = results[1]["content"]
    repo = pygit2.Repository(str(tmp_path / "workspace"))
    assert repo.status()  # a real change the tool must report
    assert "README.md" in status and "new.txt" in status
