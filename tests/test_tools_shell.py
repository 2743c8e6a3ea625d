"""``shell`` and the process handling ``Bash`` shares: real subprocesses in a real temporary workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from lynkr.tools.events import ToolRan
from lynkr.tools.shell import run_command
from tests.tool_harness import Harness, harness


@pytest.fixture
def tools(tmp_path: Path) -> Harness:
    return harness(tmp_path)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int) -> bool:
    with trio.move_on_after(5):
        while alive(pid):
            await trio.sleep(0.02)
    return not alive(pid)


async def test_shell_reports_exit_code_first_then_stdout_and_stderr(tools: Harness) -> None:
    outcome = await tools.call("shell", command="echo hello; echo err >&2; exit 3")
    assert outcome.result.content == "Exit code 3\nhello\nerr"
    assert outcome.result.is_error and outcome.result.exit_code == 3
    ran = outcome.events[0]
    assert isinstance(ran, ToolRan) and ran.exit_code == 3 and ran.is_error and ran.canonical == "shell"


async def test_shell_success_and_no_output(tools: Harness) -> None:
    assert await tools.text("shell", command="echo hi") == "hi"
    outcome = await tools.call("shell", command="true")
    assert outcome.result.content == "(Bash completed with no output)"
    assert outcome.result.is_error is False and outcome.result.exit_code == 0


async def test_shell_runs_in_the_workspace_and_in_a_folder_inside_it(tools: Harness) -> None:
    (tools.workspace / "sub").mkdir()
    assert await tools.text("shell", command="pwd") == str(tools.workspace)
    assert await tools.text("shell", command="pwd", cwd="sub") == str(tools.workspace / "sub")


async def test_shell_cwd_outside_the_workspace_is_refused(tools: Harness) -> None:
    outcome = await tools.call("shell", command="touch made-here", cwd="..")
    assert outcome.result.is_error
    assert "outside the workspace" in str(outcome.result.content)
    assert not (tools.workspace.parent / "made-here").exists()


async def test_shell_stdin_is_empty(tools: Harness) -> None:
    assert await tools.text("shell", command="cat; echo done") == "done"


async def test_command_past_its_timeout_is_killed_with_its_whole_process_group(tools: Harness) -> None:
    pid_file = tools.workspace / "grandchild.pid"
    outcome = await tools.call(
        "shell", command=f"(sleep 300 & echo $! > {pid_file}; wait) & sleep 300", timeout_ms=700
    )
    assert outcome.result.is_error and outcome.result.exit_code is None
    assert str(outcome.result.content).startswith("Command timed out after 0.7s")
    grandchild = int(pid_file.read_text())
    assert await wait_gone(grandchild), "the grandchild outlived the timeout"


async def test_background_job_left_by_a_finished_command_is_ended(tools: Harness) -> None:
    text = await tools.text("shell", command="sleep 300 > /dev/null 2>&1 & echo $!")
    assert await wait_gone(int(text)), "a background job outlived its command"


async def test_output_flood_is_limited_while_it_is_read(tmp_path: Path) -> None:
    limit = 4096
    completed = await run_command(
        "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo tail-marker",
        cwd=tmp_path,
        environ=dict(os.environ),
        timeout_s=60,
        limit_bytes=limit,
    )
    assert completed.exit_code == 0
    assert len(completed.stdout) < 3 * limit
    assert "bytes of output omitted" in completed.stdout
    assert completed.stdout.rstrip().endswith("tail-marker"), "the end of the output is kept"


async def test_endless_output_ends_at_the_timeout(tools: Harness) -> None:
    outcome = await tools.call("shell", command="yes", timeout_ms=500)
    assert outcome.result.is_error
    content = str(outcome.result.content)
    assert content.startswith("Command timed out")
    assert len(content.encode()) <= tools.config.tools.output_limit_bytes + 1024


async def test_output_over_the_limit_is_cut_with_a_marker_saying_how_to_get_the_rest(tools: Harness) -> None:
    outcome = await tools.call("shell", command="seq 1 20000")
    content = str(outcome.result.content)
    assert content.startswith("1\n2\n3\n")
    assert content.endswith("19999\n20000")
    assert "lynkr cut" in content and "To see the rest" in content
    ran = outcome.events[0]
    assert isinstance(ran, ToolRan)
    assert ran.output_bytes > ran.result_bytes
    assert ran.result_bytes <= tools.config.tools.output_limit_bytes + 500


async def test_shell_schema_errors_use_the_cli_wording(tools: Harness) -> None:
    outcome = await tools.call("shell", command="ls", timeout_ms="soon")
    assert outcome.result.content == (
        "<tool_use_error>InputValidationError: shell failed due to the following issues:\n"
        "The parameter `timeout_ms` type is expected as `integer` but provided as `string`</tool_use_error>"
    )
