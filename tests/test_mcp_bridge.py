"""The MCP bridge in a running daemon, against real MCP servers: our SDK server and mcp-server-time."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.actors.mcp import ServerHandle
from lynkr.daemon import Running
from lynkr.mcp.events import McpServerSkipped, McpServerState, McpServerStderr
from lynkr.mcp.names import tool_name
from lynkr.tools.events import ToolRan, ToolRefused
from lynkr.tools.runner import run_call
from lynkr.tools.toolbox import tool_context
from tests.conftest import make_config, recorded_events, running_lynkr

ROOT = Path(__file__).resolve().parent.parent


def fake_server(*flags: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server", *flags],
        "env": {"PYTHONPATH": str(ROOT)},
    }


def servers_env(servers: dict[str, Any], **more: str) -> dict[str, str]:
    return {"MCP_SERVERS": json.dumps(servers), "MCP_MANIFEST_DIRS": "", **more}


async def wait_state(running: Running, name: str, *states: str) -> ServerHandle:
    assert running.bridge is not None
    handle = running.bridge.servers[name]
    with trio.fail_after(60):
        while handle.state not in states:
            assert handle.state != "gave_up", handle.last_error
            await handle.changed.wait()
    return handle


async def call(running: Running, tmp_path: Path, name: str, arguments: dict[str, Any]) -> Any:
    assert running.toolbox is not None
    config = make_config(tmp_path)
    outcome = await run_call(
        name=name,
        tool_use_id="toolu_1",
        arguments=arguments,
        toolbox=running.toolbox,
        context=tool_context(config, running.toolbox),
    )
    return outcome


async def test_stdio_tools_become_lynkr_tools_and_results_map_faithfully(tmp_path: Path) -> None:
    config = make_config(tmp_path, servers_env({"fake": fake_server("--stderr", "3")}))
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        assert running.toolbox is not None
        names = {spec.name for spec in running.toolbox.specs(["mcp"])}
        assert {"mcp__fake__echo", "mcp__fake__picture", "workspace_mcp_servers", "workspace_mcp_call"} <= names
        echo = next(spec for spec in running.toolbox.specs(["mcp"]) if spec.name == "mcp__fake__echo")
        assert echo.input_schema["required"] == ["text"] and echo.family == "mcp"

        text = await call(running, tmp_path, "mcp__fake__echo", {"text": "hi"})
        assert text.result.content == [{"type": "text", "text": "echo: hi"}] and not text.result.is_error
        assert isinstance(text.events[0], ToolRan) and text.events[0].canonical == "mcp__fake__echo"
        image = await call(running, tmp_path, "mcp__fake__picture", {})
        block = image.result.content[0]
        assert block["type"] == "image" and block["source"]["media_type"] == "image/png"
        structured = await call(running, tmp_path, "mcp__fake__weather", {"city": "Oslo"})
        assert json.loads(structured.result.content[0]["text"]) == {"city": "Oslo", "celsius": 21.5, "sky": "clear"}
        resource = await call(running, tmp_path, "mcp__fake__resource", {})
        assert resource.result.content[0]["text"] == "[resource file:///notes.txt]\nthe notes"
        assert "binary resource file:///data.bin" in resource.result.content[1]["text"]
        failed = await call(running, tmp_path, "mcp__fake__fail", {})
        assert failed.result.is_error and "fail" in failed.result.content[0]["text"]
        [long_name] = [name for name in names if name.startswith("mcp__fake__a_tool_whose_name")]
        assert len(long_name) == 64 and long_name == tool_name(
            "fake", "a_tool_whose_name_is_long_enough_to_need_shortening_upstream"
        )
        shortened = await call(running, tmp_path, long_name, {})
        assert shortened.result.content == [{"type": "text", "text": "long name reached"}]
        generic = await call(running, tmp_path, "workspace_mcp_call", {"server": "fake", "tool": "echo", "arguments": {"text": "x"}})
        assert generic.result.content == [{"type": "text", "text": "echo: x"}]
        listing = await call(running, tmp_path, "workspace_mcp_servers", {})
        servers = json.loads(listing.result.content)["servers"]
        assert servers[0]["name"] == "fake" and servers[0]["state"] == "ready"
        assert "mcp__fake__echo" in [tool["name"] for tool in servers[0]["tools"]]

        # The server's environment is its manifest's env plus an allow-list: nothing else of lynkr's.
        environment = await call(running, tmp_path, "mcp__fake__env", {})
        names_seen = set(environment.result.content[0]["text"].split())
        sdk_defaults = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"}
        assert names_seen <= sdk_defaults | {"PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"} | {
            name for name in names_seen if name.startswith("LC_")
        }

        # A tool that changes the list: the new tool appears in the registry.
        grown = await call(running, tmp_path, "mcp__fake__grow", {})
        assert grown.result.content[0]["text"] == "grown"
        with trio.fail_after(30):
            while "mcp__fake__extra" not in running.toolbox.registry:
                await trio.sleep(0.02)
        extra = await call(running, tmp_path, "mcp__fake__extra", {})
        assert extra.result.content == [{"type": "text", "text": "extra ran"}]
    events = recorded_events(config.data_dir)
    states = [event.state for event in events if isinstance(event, McpServerState)]
    assert states[:2] == ["starting", "ready"] and "tools_changed" in states
    stderr = [line for event in events if isinstance(event, McpServerStderr) for line in event.lines]
    assert stderr[:3] == ["stderr line 0", "stderr line 1", "stderr line 2"]


async def test_policy_denies_per_server_and_tool_and_by_mode(tmp_path: Path) -> None:
    env = servers_env({"fake": fake_server()}, MCP_SANDBOX_PERMISSION_DENY="fake/fail", MCP_SANDBOX_PERMISSION_MODE="require",
                      MCP_SANDBOX_PERMISSION_ALLOW="fake/echo,fake/fail")
    config = make_config(tmp_path, env)
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        allowed = await call(running, tmp_path, "mcp__fake__echo", {"text": "a"})
        assert not allowed.result.is_error
        denied = await call(running, tmp_path, "mcp__fake__fail", {})
        assert denied.result.is_error and "MCP_SANDBOX_PERMISSION_DENY" in denied.result.content
        not_listed = await call(running, tmp_path, "workspace_mcp_call", {"server": "fake", "tool": "weather"})
        assert not_listed.result.is_error and "MCP_SANDBOX_PERMISSION_ALLOW" in not_listed.result.content
        assert isinstance(not_listed.events[0], ToolRefused)
    (tmp_path / "off").mkdir()
    config = make_config(tmp_path / "off", servers_env({"fake": fake_server()}, MCP_SANDBOX_PERMISSION_MODE="deny"))
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        off = await call(running, tmp_path / "off", "mcp__fake__echo", {"text": "a"})
        assert off.result.is_error and "MCP_SANDBOX_PERMISSION_MODE=deny" in off.result.content


async def test_a_server_crashing_mid_call_gives_an_error_result_and_is_restarted(tmp_path: Path) -> None:
    config = make_config(tmp_path, servers_env({"fake": fake_server()}))
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        crashed = await call(running, tmp_path, "mcp__fake__crash", {})
        assert crashed.result.is_error and "stopped during the call" in crashed.result.content
        again = await call(running, tmp_path, "mcp__fake__echo", {"text": "back"})
        assert again.result.content == [{"type": "text", "text": "echo: back"}]
        assert running.bridge is not None and running.bridge.servers["fake"].attempt == 2
    states = [e.state for e in recorded_events(config.data_dir) if isinstance(e, McpServerState)]
    assert states[:6] == ["starting", "ready", "crashed", "restarting", "starting", "ready"]


async def test_a_server_that_hangs_times_out_and_stays_usable(tmp_path: Path) -> None:
    config = make_config(tmp_path, servers_env({"fake": fake_server()}, MCP_TIMEOUT_MS="1500"))
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        hung = await call(running, tmp_path, "mcp__fake__hang", {})
        assert hung.result.is_error and "within 1500 ms (MCP_TIMEOUT_MS)" in hung.result.content
        after = await call(running, tmp_path, "mcp__fake__echo", {"text": "still here"})
        assert after.result.content == [{"type": "text", "text": "echo: still here"}]


async def test_garbage_on_stdout_does_not_break_the_server(tmp_path: Path) -> None:
    config = make_config(tmp_path, servers_env({"fake": fake_server("--garbage")}))
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        for word in ("one", "two"):
            outcome = await call(running, tmp_path, "mcp__fake__echo", {"text": word})
            assert outcome.result.content == [{"type": "text", "text": f"echo: {word}"}]


async def test_a_bad_manifest_and_a_missing_command_are_skipped_while_the_good_server_starts(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "broken.json").write_text('{"servers": [')
    (folder / "good.json").write_text(json.dumps({"servers": [{"id": "good", **fake_server()}]}))
    (folder / "missing.json").write_text(json.dumps([{"id": "missing", "command": "no-such-mcp-server-xyz"}]))
    config = make_config(tmp_path, {"MCP_MANIFEST_DIRS": str(folder)})
    async with running_lynkr(config) as running:
        await wait_state(running, "good", "ready")
        missing = await wait_state(running, "missing", "gave_up")
        assert "'no-such-mcp-server-xyz' was not found on PATH" in missing.last_error
        outcome = await call(running, tmp_path, "workspace_mcp_call", {"server": "missing", "tool": "x"})
        assert outcome.result.is_error and "gave up" in outcome.result.content
    skipped = [e for e in recorded_events(config.data_dir) if isinstance(e, McpServerSkipped)]
    assert [e.source.rsplit("/", 1)[-1] for e in skipped] == ["broken.json", "missing.json server 'missing'"]


async def test_a_slow_server_does_not_delay_health_and_calls_wait_for_it(tmp_path: Path) -> None:
    config = make_config(tmp_path, servers_env({"slow": fake_server("--slow-start", "2")}))
    async with running_lynkr(config) as running:
        async with httpx.AsyncClient(base_url=running.base_url) as client:
            health = await client.get("/health")
        assert health.status_code == 200 and health.json()["ready"] is True
        assert running.bridge is not None and running.bridge.servers["slow"].state == "starting"
        outcome = await call(running, tmp_path, "workspace_mcp_call", {"server": "slow", "tool": "echo", "arguments": {"text": "late"}})
        assert outcome.result.content == [{"type": "text", "text": "echo: late"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The SDK's streamable HTTP client leaves its event-stream generators to the garbage collector when its task group
# is cancelled at shutdown; trio reports each as an unraisable ResourceWarning.  That is the SDK's, not lynkr's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_streamable_http_server(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "tests.fakes.mcp_server", "--http", str(port)]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, command, check=False))
        try:
            with trio.fail_after(30):
                while True:
                    try:
                        stream = await trio.open_tcp_stream("127.0.0.1", port)
                        await stream.aclose()
                        break
                    except OSError:
                        await trio.sleep(0.05)
            url = f"http://127.0.0.1:{port}/mcp"
            config = make_config(tmp_path, servers_env({"remote": {"url": url}}))
            async with running_lynkr(config) as running:
                await wait_state(running, "remote", "ready")
                echo = await call(running, tmp_path, "mcp__remote__echo", {"text": "over http"})
                assert echo.result.content == [{"type": "text", "text": "echo: over http"}]
                picture = await call(running, tmp_path, "mcp__remote__picture", {})
                assert picture.result.content[0]["type"] == "image"
        finally:
            process.terminate()


@pytest.mark.skipif(shutil.which("mcp-server-time", path=str(Path(sys.executable).parent)) is None,
                    reason="mcp-server-time is not installed (pip install mcp-server-time)")
async def test_the_published_time_server(tmp_path: Path) -> None:
    command = str(Path(sys.executable).parent / "mcp-server-time")
    config = make_config(tmp_path, servers_env({"time": {"command": command, "args": ["--local-timezone", "UTC"]}}))
    async with running_lynkr(config) as running:
        await wait_state(running, "time", "ready")
        assert running.toolbox is not None
        offered = {spec.name for spec in running.toolbox.specs(config.tools.client_mode_families)}
        assert "mcp__time__get_current_time" in offered
        outcome = await call(running, tmp_path, "mcp__time__get_current_time", {"timezone": "Europe/Paris"})
        answer = json.loads(outcome.result.content[0]["text"])
        assert answer["timezone"] == "Europe/Paris" and "datetime" in answer


async def test_an_unreachable_url_is_reported_and_given_up_on_while_the_others_serve(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/mcp"
    env = servers_env({"dead": {"url": dead}, "fake": fake_server()}, MCP_MAX_RESTARTS="1")
    config = make_config(tmp_path, env)
    async with running_lynkr(config) as running:
        await wait_state(running, "fake", "ready")
        assert running.bridge is not None
        handle = running.bridge.servers["dead"]
        with trio.fail_after(60):
            while handle.state != "gave_up":
                await handle.changed.wait()
        outcome = await call(running, tmp_path, "mcp__fake__echo", {"text": "fine"})
        assert outcome.result.content == [{"type": "text", "text": "echo: fine"}]
    states = [(e.state, e.message) for e in recorded_events(config.data_dir)
              if isinstance(e, McpServerState) and e.server == "dead"]
    assert [state for state, _ in states] == ["starting", "crashed", "restarting", "starting", "gave_up"]
    assert "gave up after 2 failed starts in a row" in states[-1][1]
    assert "Connect" in states[1][1] or "connect" in states[1][1], states[1][1]
