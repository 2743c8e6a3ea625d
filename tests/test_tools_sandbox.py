"""Shell, Bash and test commands in the sandbox (MCP_SANDBOX_ENABLED): the workspace writable, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

from lynkr.mcp import sandbox
from tests.tool_harness import harness

pytestmark = pytest.mark.skipif(
    sandbox.find_runtime() is None,
    reason=f"no usable sandbox runtime on this machine: {sandbox.why_unavailable()}",
)


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A path outside the workspace and outside /tmp (a fresh tmpfs in the sandbox), which the policy cannot see
    a command write to when the write hides inside ``python3 -c``."""
    folder = Path.home() / ".cache" / "lynkr-tests" / f"tools-sandbox-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    yield folder / "probe.txt"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def _write(target: Path) -> str:
    return f"python3 -c \"open('{target}', 'w').write('x')\""


async def test_a_sandboxed_shell_writes_the_workspace_but_nothing_else(tmp_path: Path, elsewhere: Path) -> None:
    tools = harness(tmp_path, {"MCP_SANDBOX_ENABLED": "true"})
    outside = await tools.call("shell", command=_write(elsewhere))
    assert outside.result.is_error and not elsewhere.exists(), outside.result.content
    inside = await tools.call("shell", command=_write(tools.workspace / "made.txt"))
    assert not inside.result.is_error, inside.result.content
    assert (tools.workspace / "made.txt").read_text() == "x"


async def test_the_same_write_goes_through_without_the_sandbox(tmp_path: Path, elsewhere: Path) -> None:
    tools = harness(tmp_path)
    outcome = await tools.call("shell", command=_write(elsewhere))
    assert not outcome.result.is_error, outcome.result.content
    assert elsewhere.read_text() == "x"


async def test_sandboxed_bash_keeps_its_working_folder_between_calls(tmp_path: Path) -> None:
    tools = harness(tmp_path, {"MCP_SANDBOX_ENABLED": "true"})
    (tools.workspace / "sub").mkdir()
    await tools.call("Bash", command="cd sub")
    outcome = await tools.call("Bash", command="pwd")
    assert str(outcome.result.content).strip().endswith("/sub"), outcome.result.content


async def test_sandboxed_test_runs_cannot_reach_the_hosts_network(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _hang_up, 0, host="127.0.0.1"))
        listener = listeners[0]
        port = listener.socket.getsockname()[1]
        probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" && echo connected' 'to the host"
        boxed = harness(tmp_path / "boxed", {"MCP_SANDBOX_ENABLED": "true", "WORKSPACE_TEST_COMMAND": probe})
        bare = harness(tmp_path / "bare", {"WORKSPACE_TEST_COMMAND": probe})
        inside = await boxed.call("workspace_test_run")
        outside = await bare.call("workspace_test_run")
        nursery.cancel_scope.cancel()
    # The command's own text is in the result too; only its output joins the two words with one space.
    assert "connected to the host" in str(outside.result.content), outside.result.content
    # The sandbox has a loopback of its own: the host's listener is not on it.
    assert "connected to the host" not in str(inside.result.content), inside.result.content


async def _hang_up(stream: trio.SocketStream) -> None:
    await stream.aclose()
