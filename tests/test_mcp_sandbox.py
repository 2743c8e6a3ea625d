"""MCP servers in bubblewrap: no network, a read-only root, the workspace writable, an allow-listed environment."""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lynkr.mcp import sandbox
from tests.conftest import make_config, running_lynkr
from tests.test_mcp_bridge import call, fake_server, servers_env, wait_state

pytestmark = pytest.mark.skipif(
    sandbox.find_runtime() is None,
    reason=f"no usable sandbox runtime on this machine: {sandbox.why_unavailable()}",
)


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A file to write outside the workspace and outside /tmp (a fresh tmpfs in the sandbox): under the home."""
    folder = Path.home() / ".cache" / "lynkr-tests" / f"sandbox-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        yield folder / "probe.txt"
    finally:
        shutil.rmtree(folder)


async def test_a_sandboxed_server_has_no_network_a_read_only_root_and_a_writable_workspace(
    tmp_path: Path, elsewhere: Path
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    config = make_config(tmp_path, servers_env({"boxed": fake_server()}, MCP_SANDBOX_ENABLED="true"))
    try:
        async with running_lynkr(config) as running:
            await wait_state(running, "boxed", "ready")
            outcome = await call(running, tmp_path, "mcp__boxed__reach", {"port": port, "elsewhere": str(elsewhere)})
            found = json.loads(outcome.result.content[0]["text"])
            environment = await call(running, tmp_path, "mcp__boxed__env", {})
    finally:
        listener.close()
    assert found["network"].startswith("refused"), found
    assert "Read-only file system" in found["elsewhere"] and not elsewhere.exists(), found
    assert found["workspace"] == "written"
    assert (config.workspace_root / "written-by-mcp.txt").read_text() == "x"
    names = set(environment.result.content[0]["text"].split())
    assert "PYTHONPATH" in names and not any("KEY" in name or "TOKEN" in name for name in names)


async def test_a_server_can_opt_out_of_the_sandbox(tmp_path: Path, elsewhere: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    server = {**fake_server(), "sandbox": False}
    config = make_config(tmp_path, servers_env({"open": server}, MCP_SANDBOX_ENABLED="true"))
    try:
        async with running_lynkr(config) as running:
            await wait_state(running, "open", "ready")
            outcome = await call(running, tmp_path, "mcp__open__reach", {"port": port, "elsewhere": str(elsewhere)})
    finally:
        listener.close()
    found = json.loads(outcome.result.content[0]["text"])
    assert found["network"] == "reached" and found["elsewhere"] == "written" and elsewhere.exists()
