"""The real Claude Code CLI against the fake Anthropic upstream, with no lynkr in between.

This proves the harness and documents what the CLI expects: it streams `POST /v1/messages?beta=true`, runs the
tool_use it receives, and sends the result back as a tool_result in its next request.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import find_executable, run_claude

pytestmark = pytest.mark.cli


async def test_cli_runs_a_scripted_bash_tool_and_returns_the_final_text(
    claude_exe: Path, claude_workdir: Path
) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(
            name="Bash",
            arguments={"command": "echo hi > out.txt", "description": "Write hi to out.txt"},
            id="toolu_fake_bash_1",
            text="I will write the file.",
        ),
        Reply.text("Wrote out.txt."),
    )
    async with serve_fake(fake) as base_url:
        result = await run_claude(claude_exe, base_url=base_url, prompt="Write hi into out.txt", cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == "Wrote out.txt."
    assert not result.is_error
    assert (claude_workdir / "out.txt").read_text() == "hi\n"

    first, second = (call.request for call in fake.model_calls[:2])
    assert first.path == "/v1/messages" and first.query_params == {"beta": ["true"]}
    assert first.json["stream"] is True
    assert first.header("x-api-key") == "sk-ant-lynkr-test"
    assert first.header("anthropic-version") == "2023-06-01"
    assert second.json["messages"][-2]["content"][-1]["id"] == "toolu_fake_bash_1"
    [tool_result] = [block for block in second.json["messages"][-1]["content"] if block["type"] == "tool_result"]
    assert tool_result["tool_use_id"] == "toolu_fake_bash_1"
    assert tool_result.get("is_error") is not True
    assert fake.pending == 0


async def test_cli_retries_an_overloaded_upstream(claude_exe: Path, claude_workdir: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(529, message="Overloaded"), Reply.text("after the retry"))
    async with serve_fake(fake) as base_url:
        result = await run_claude(claude_exe, base_url=base_url, prompt="say hi", cwd=claude_workdir)
    assert result.result == "after the retry", result.stdout + result.stderr
    first, second = fake.model_calls[:2]
    assert first.outcome == "completed" and first.reply is not None and first.reply.http_status == 529
    # The CLI backs off (~0.6 s) before its first retry.
    assert second.request.received_at - first.request.received_at > 0.3


async def test_cli_recovers_from_a_stream_dropped_mid_way(claude_exe: Path, claude_workdir: Path) -> None:
    fake = FakeUpstream(default_reply=Reply.text("recovered"))
    fake.push(Reply.disconnect_after(4, reply=Reply.text("this answer never ends")))
    async with serve_fake(fake) as base_url:
        result = await run_claude(claude_exe, base_url=base_url, prompt="say hi", cwd=claude_workdir)
    assert result.result == "recovered", result.stdout + result.stderr
    # 2.1.197 falls back to one non-streaming request; newer versions retry the stream first.
    assert fake.model_calls[0].outcome == "dropped"
    assert len(fake.model_calls) >= 2


def test_platform_executable_is_used_when_install_scripts_did_not_run(tmp_path: Path) -> None:
    scope = tmp_path / "node_modules" / "@anthropic-ai"
    placeholder = scope / "claude-code" / "bin" / "claude.exe"
    placeholder.parent.mkdir(parents=True)
    placeholder.write_text("#!/usr/bin/env node\n// replaced by the postinstall script\n")
    native = scope / "claude-code-linux-x64" / "claude"
    native.parent.mkdir(parents=True)
    with native.open("wb") as file:
        file.write(b"\x7fELF")
        # Sparse: big enough to look like the real executable without writing 200 MB.
        file.truncate(50_000_000)
    os.chmod(native, 0o755)
    assert find_executable(tmp_path) == native
    native.unlink()
    assert find_executable(tmp_path) is None
