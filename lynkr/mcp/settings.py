"""The MCP settings: where servers are declared, how long calls may take, the permission policy and the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from lynkr.settings import (
    BOOL,
    PATH,
    PATH_LIST,
    STR_LIST,
    Context,
    Converter,
    Invalid,
    choice,
    count,
    setting,
)


def _convert_servers(raw: object, ctx: Context) -> dict[str, Any]:
    """``[mcp.servers.<name>]`` tables (TOML), or the same as a JSON object (environment)."""
    table = raw
    if ctx.from_text:
        try:
            table = json.loads(str(raw))
        except json.JSONDecodeError:
            raise Invalid from None
    if not isinstance(table, dict) or not all(isinstance(value, dict) for value in table.values()):
        raise Invalid
    return dict(table)


SERVERS = Converter(
    what="a table of MCP servers by name",
    example='JSON like {"time": {"command": "mcp-server-time"}}',
    convert=_convert_servers,
)


@attrs.frozen(kw_only=True)
class McpConfig:
    server_manifest: Path | None = setting(
        None, env="MCP_SERVER_MANIFEST", doc="A JSON manifest of MCP servers to start.", converter=PATH
    )
    # None only on a hand-built McpConfig: load_config fills in ~/.claude/mcp when nothing sets it.
    manifest_dirs: tuple[Path, ...] | None = setting(
        None,
        env="MCP_MANIFEST_DIRS",
        doc="Folders whose *.json MCP manifests are read (empty: none).",
        converter=PATH_LIST,
        default_text="~/.claude/mcp",
    )
    servers: dict[str, Any] = setting(
        {},
        env="MCP_SERVERS",
        doc="MCP servers by name, as [mcp.servers.NAME] tables ({command, args, env} or {url, headers}).",
        converter=SERVERS,
        secret=True,  # their env and headers often carry tokens: never printed, never in the log
    )
    timeout_ms: int = setting(
        30_000,
        env="MCP_TIMEOUT_MS",
        doc="Longest an MCP tool call may take before it fails.",
        converter=count(1, 30000, "ms"),
    )
    start_timeout_ms: int = setting(
        30_000,
        env="MCP_START_TIMEOUT_MS",
        doc="Longest an MCP server may take to start and list its tools.",
        converter=count(1, 30000, "ms"),
    )
    max_restarts: int = setting(
        5,
        env="MCP_MAX_RESTARTS",
        doc="Restarts in a row of a crashing MCP server before lynkr gives up on it.",
        converter=count(0, 5),
    )
    permission_mode: str = setting(
        "auto",
        env="MCP_SANDBOX_PERMISSION_MODE",
        doc="MCP tool calls: auto (allowed unless denied), require (only allowed ones) or deny (none).",
        converter=choice("auto", "require", "deny"),
    )
    permission_allow: tuple[str, ...] = setting(
        (),
        env="MCP_SANDBOX_PERMISSION_ALLOW",
        doc="MCP servers or tools allowed: server, server/tool (globs).",
        converter=STR_LIST,
    )
    permission_deny: tuple[str, ...] = setting(
        (),
        env="MCP_SANDBOX_PERMISSION_DENY",
        doc="MCP servers or tools denied: server, server/tool (globs); deny wins.",
        converter=STR_LIST,
    )
    sandbox_enabled: bool = setting(
        False,
        env="MCP_SANDBOX_ENABLED",
        doc="Run stdio MCP servers, and the shell, Bash and test commands of lynkr's tools, inside bubblewrap (no network, read-only root, workspace read-write).",
        converter=BOOL,
    )
    sandbox_allow_networking: bool = setting(
        False, env="MCP_SANDBOX_ALLOW_NETWORKING", doc="Give sandboxed MCP servers the network.", converter=BOOL
    )
    sandbox_passthrough_env: tuple[str, ...] = setting(
        ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ"),
        env="MCP_SANDBOX_PASSTHROUGH_ENV",
        doc="Variables of lynkr's environment an MCP server gets besides its manifest's env.",
        converter=STR_LIST,
    )
