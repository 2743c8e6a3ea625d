"""``lynkr mcp``: the MCP servers, their state, their tools and the last error of each.

It asks the running daemon (``GET /lynkr/mcp/servers``); with no daemon answering it says so and lists what the
configuration declares, with the problems found reading it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from lynkr.config import Config
from lynkr.mcp.manifest import discover


def daemon_url(config: Config) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"


def fetch(config: Config, *, timeout_s: float = 3.0) -> tuple[list[dict[str, Any]], str | None]:
    """The servers as the daemon sees them, or as configured plus why the daemon was not asked."""
    url = daemon_url(config) + "/lynkr/mcp/servers"
    headers = {"x-api-key": config.api_key.reveal()} if config.api_key is not None else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
        response.raise_for_status()
        servers: list[dict[str, Any]] = response.json()["servers"]
        return servers, None
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        found = discover(config.mcp, config.workspace_root.resolve())
        servers = [
            {"name": s.name, "transport": s.transport, "source": s.source, "state": "not running", "tools": [],
             "last_error": ""}
            for s in found.servers
        ]
        servers += [
            {"name": "-", "transport": "-", "source": p.source, "state": "skipped", "tools": [], "last_error": p.message}
            for p in found.problems
        ]
        return servers, f"the daemon did not answer at {url} ({type(exc).__name__}); showing the configuration"


def render(servers: Iterable[dict[str, Any]], note: str | None) -> str:
    lines = [f"({note})"] if note else []
    any_server = False
    for server in servers:
        any_server = True
        lines.append(f"{server['name']}  [{server['state']}]  {server['transport']}  from {server['source']}")
        for tool in server.get("tools", []):
            lines.append(f"    {tool['name']}  {tool['description'].splitlines()[0] if tool['description'] else ''}")
        if server.get("last_error"):
            lines.append(f"    last error: {server['last_error']}")
    if not any_server:
        lines.append(
            "no MCP servers are configured (MCP_SERVER_MANIFEST, MCP_MANIFEST_DIRS, .mcp.json, [mcp.servers.NAME])"
        )
    return "\n".join(lines)
