"""MCP both ways: the bridge's added time per call, its start-up beside /health, and calls/s through /mcp.

    /work/main/.venv/bin/python bench/mcp.py --results bench/RESULTS.md

Side by side in one run, everything on loopback with real processes:

* **call overhead over stdio**: the same ``ping`` call to two copies of our SDK test server
  (``tests/fakes/mcp_server.py``), once with the SDK's own ``ClientSession`` and once through lynkr's bridge
  in a running daemon (``run_call``: name resolution, schema validation, the policy, the bridge, result mapping).
  Calls alternate one by one between the two; *added* is the percentile of the per-pair differences;
* **bridge start-up with 5 servers**: the daemon's start to ``GET /health`` answering 200, with no MCP server and
  with 5, and the time until all 5 are ready;
* **calls/s through /mcp**: the SDK's streamable HTTP client calling lynkr's ``fs_read`` on a small file,
  one call at a time and 8 at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the SDK's package and Python puts its folder first on the path: take it off, or
# ``import mcp`` would import this file.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import httpx2
import trio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lynkr.config import Config, load_config
from lynkr.daemon import Running, run_daemon
from lynkr.tools.runner import run_call
from lynkr.tools.toolbox import tool_context

SERVER_ARGS = ["-m", "tests.fakes.mcp_server"]


def _server(**extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": SERVER_ARGS, "env": {"PYTHONPATH": str(ROOT)}, **extra}


def _config(folder: Path, servers: dict[str, Any]) -> Config:
    workspace = folder / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "small.txt").write_text("a small file\n" * 4)
    environ = {
        "HOME": os.environ.get("HOME", str(folder)),
        "PATH": os.environ.get("PATH", ""),
        "PORT": "0",
        "LYNKR_HOST": "127.0.0.1",
        "WORKSPACE_ROOT": str(workspace),
        "LYNKR_DATA_DIR": str(folder / "data"),
        "LYNKR_SHUTDOWN_GRACE_S": "1",
        "LYNKR_LOG_LEVEL": "warning",
        "MCP_MANIFEST_DIRS": "",
        "MCP_SERVERS": json.dumps(servers),
    }
    return load_config(environ=environ, cwd=workspace)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _wait_ready(running: Running, names: list[str]) -> None:
    assert running.bridge is not None
    for name in names:
        handle = running.bridge.servers[name]
        while handle.state != "ready":
            await handle.changed.wait()


async def _timed(call: Callable[[], Awaitable[Any]], count: int, into: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        await call()
        into.append((time.perf_counter() - started) * 1000)


async def overhead(folder: Path, calls: int) -> dict[str, float]:
    config = _config(folder, {"fake": _server()})
    direct_ms: list[float] = []
    bridged_ms: list[float] = []
    params = StdioServerParameters(command=sys.executable, args=SERVER_ARGS, env={"PYTHONPATH": str(ROOT)})
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(partial(run_daemon, config))
        try:
            await _wait_ready(running, ["fake"])
            assert running.toolbox is not None
            toolbox = running.toolbox
            context = tool_context(config, toolbox)
            with open(os.devnull, "w") as quiet:
                async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
                    await session.initialize()
                    await session.list_tools()

                    async def direct() -> None:
                        await session.call_tool("ping", {})

                    async def bridged() -> None:
                        outcome = await run_call(
                            name="mcp__fake__ping",
                            tool_use_id="toolu_bench",
                            arguments={},
                            toolbox=toolbox,
                            context=context,
                        )
                        assert not outcome.result.is_error, outcome.result

                    await _timed(direct, 50, [])  # warm-up
                    await _timed(bridged, 50, [])
                    # Call by call, alternating: both sides see the same moment of a noisy machine, and the
                    # difference of each pair is lynkr's added time for that moment.
                    for _ in range(calls):
                        await _timed(direct, 1, direct_ms)
                        await _timed(bridged, 1, bridged_ms)
        finally:
            running.stop.set()
    differences = [bridged - direct for direct, bridged in zip(direct_ms, bridged_ms, strict=True)]
    return {
        "calls": float(len(direct_ms)),
        "added_p50": _percentile(differences, 0.5),
        "added_p99": _percentile(differences, 0.99),
        "direct_p50": _percentile(direct_ms, 0.5),
        "direct_p99": _percentile(direct_ms, 0.99),
        "bridged_p50": _percentile(bridged_ms, 0.5),
        "bridged_p99": _percentile(bridged_ms, 0.99),
    }


async def startup(folder: Path, servers: int) -> dict[str, float]:
    names = [f"s{index}" for index in range(servers)]
    config = _config(folder, {name: _server() for name in names})
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(partial(run_daemon, config))
        try:
            async with httpx.AsyncClient(base_url=running.base_url) as client:
                while (await client.get("/health")).status_code != 200:
                    await trio.sleep(0.001)
            health_s = time.perf_counter() - started
            await _wait_ready(running, names)
            ready_s = time.perf_counter() - started
        finally:
            running.stop.set()
    return {"health_s": health_s, "all_ready_s": ready_s}


async def endpoint(folder: Path, calls: int, concurrency: int) -> dict[str, float]:
    config = _config(folder, {})
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(partial(run_daemon, config))
        try:
            async with (
                httpx2.AsyncClient(timeout=30) as client,
                streamable_http_client(f"{running.base_url}/mcp", http_client=client) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()

                async def one() -> None:
                    result = await session.call_tool("fs_read", {"path": "small.txt"})
                    assert not result.is_error, result

                for _ in range(20):
                    await one()
                started = time.perf_counter()
                for _ in range(calls):
                    await one()
                sequential = calls / (time.perf_counter() - started)

                async def worker(count: int) -> None:
                    for _ in range(count):
                        await one()

                started = time.perf_counter()
                async with trio.open_nursery() as workers:
                    for _ in range(concurrency):
                        workers.start_soon(worker, calls // concurrency)
                concurrent = (calls // concurrency) * concurrency / (time.perf_counter() - started)
        finally:
            running.stop.set()
    return {"sequential_per_s": sequential, "concurrent_per_s": concurrent}


async def main(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-mcp-") as tmp:
        folder = Path(tmp)
        cost = await overhead(folder / "overhead", args.calls)
        none = [await startup(folder / f"start0-{i}", 0) for i in range(args.repeats)]
        five = [await startup(folder / f"start5-{i}", 5) for i in range(args.repeats)]
        served = await endpoint(folder / "endpoint", args.endpoint_calls, 8)
    load = os.getloadavg()
    added_p50, added_p99 = cost["added_p50"], cost["added_p99"]
    health0 = statistics.median(run["health_s"] for run in none)
    health5 = statistics.median(run["health_s"] for run in five)
    ready5 = statistics.median(run["all_ready_s"] for run in five)
    lines = [
        "## MCP",
        "",
        f"Command: `/work/main/.venv/bin/python bench/mcp.py --calls {args.calls} --repeats {args.repeats} "
        f"--endpoint-calls {args.endpoint_calls} --results bench/RESULTS.md` (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs shared with other work: load average {load[0]:.2f} at the end, so absolute "
        "latencies are inflated; the paired difference is what to read). Servers are `tests/fakes/mcp_server.py` "
        "(the SDK's MCPServer on trio, stdio).",
        "",
        "| measurement | p50 | p99 |",
        "| --- | ---: | ---: |",
        f"| `ping` over stdio, SDK ClientSession directly | {cost['direct_p50']:.3f} ms | {cost['direct_p99']:.3f} ms |",
        f"| the same through lynkr's bridge (`run_call`: schema, policy, bridge, result mapping) | "
        f"{cost['bridged_p50']:.3f} ms | {cost['bridged_p99']:.3f} ms |",
        f"| **added by lynkr**, per pair of calls made back to back (target p50 <= 1 ms) | **{added_p50:.3f} ms** | "
        f"{added_p99:.3f} ms |",
        "",
        f"- daemon start to `GET /health` 200 with no MCP server: {health0 * 1000:.1f} ms; with 5 servers: "
        f"**{health5 * 1000:.1f} ms** (medians of {args.repeats}); all 5 servers ready after "
        f"{ready5 * 1000:.0f} ms: the servers start in the background and do not hold /health back.",
        f"- calls/s through `/mcp` (SDK streamable HTTP client, `fs_read` of a small file, {args.endpoint_calls} "
        f"calls): **{served['sequential_per_s']:.0f}/s** one at a time, {served['concurrent_per_s']:.0f}/s "
        "8 at a time over one session.",
        "",
    ]
    return "\n".join(lines)


def _replace_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find("## MCP\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per side for the overhead")
    parser.add_argument("--repeats", type=int, default=3, help="daemon starts per start-up case")
    parser.add_argument("--endpoint-calls", type=int, default=800, help="calls through /mcp per case")
    parser.add_argument("--results", type=Path, help="replace the '## MCP' section of this markdown file")
    arguments = parser.parse_args()
    report = trio.run(main, arguments)
    print(report)
    if arguments.results is not None:
        _replace_section(arguments.results, report)
