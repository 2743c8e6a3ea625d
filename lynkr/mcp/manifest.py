"""Where MCP servers are declared, read into one list of :class:`ServerSpec`.

Sources, in order (a later declaration of the same name wins):

- every ``*.json`` in ``MCP_MANIFEST_DIRS`` (default ``~/.claude/mcp``), sorted by name;
- the single file ``MCP_SERVER_MANIFEST``;
- ``.mcp.json`` in the workspace (Claude Code's project file);
- ``[mcp.servers.NAME]`` tables in the TOML configuration (or ``MCP_SERVERS``).

A manifest is ``{"servers": [...]}``, a bare array of servers, or an object with ``mcpServers`` (Claude Code's
shape: servers keyed by name).  A server is ``{id|name, command, args, env, transport, url, headers,
description}``.  A broken file or entry is reported as one :class:`Problem` and skipped; the rest still load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from lynkr.mcp.settings import McpConfig

Transport = Literal["stdio", "http"]
_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@attrs.frozen(kw_only=True)
class ServerSpec:
    name: str
    transport: Transport
    source: str  # where it was declared, for messages
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    description: str = ""
    sandbox: bool | None = None  # None: as MCP_SANDBOX_ENABLED says


@attrs.frozen(kw_only=True)
class Problem:
    source: str
    message: str

    def line(self) -> str:
        return f"MCP: {self.source}: {self.message}"


@attrs.frozen(kw_only=True)
class Discovered:
    servers: tuple[ServerSpec, ...]
    problems: tuple[Problem, ...]


def discover(config: McpConfig, workspace: Path) -> Discovered:
    found: dict[str, ServerSpec] = {}
    problems: list[Problem] = []
    files: list[Path] = []
    for folder in config.manifest_dirs or ():
        if folder.is_dir():
            files.extend(sorted(folder.glob("*.json")))
    if config.server_manifest is not None:
        files.append(config.server_manifest)
    project = workspace / ".mcp.json"
    if project.is_file():
        files.append(project)
    for path in files:
        servers, file_problems = read_manifest(path)
        problems.extend(file_problems)
        found.update((server.name, server) for server in servers)
    if config.servers:
        servers, table_problems = parse_servers(_keyed(config.servers), "[mcp.servers]")
        problems.extend(table_problems)
        found.update((server.name, server) for server in servers)
    return Discovered(servers=tuple(found.values()), problems=tuple(problems))


def read_manifest(path: Path) -> tuple[list[ServerSpec], list[Problem]]:
    source = str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], [Problem(source=source, message="no such file; fix MCP_SERVER_MANIFEST or create it")]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(source=source, message=f"cannot be read ({exc}); skipped")]
    except json.JSONDecodeError as exc:
        return [], [Problem(source=source, message=f"is not valid JSON ({exc}); fix it, skipped until then")]
    if isinstance(document, list):
        entries: list[Any] = document
    elif isinstance(document, dict) and isinstance(document.get("servers"), list):
        entries = document["servers"]
    elif isinstance(document, dict) and isinstance(document.get("mcpServers"), dict):
        entries = _keyed(document["mcpServers"])
    else:
        message = 'is not an MCP manifest ({"servers": [...]}, a list of servers, or {"mcpServers": {...}}); skipped'
        return [], [Problem(source=source, message=message)]
    return parse_servers(entries, source)


def _keyed(table: Mapping[str, Any]) -> list[Any]:
    return [{"name": name, **entry} if isinstance(entry, dict) else entry for name, entry in table.items()]


def parse_servers(entries: Iterable[Any], source: str) -> tuple[list[ServerSpec], list[Problem]]:
    servers: list[ServerSpec] = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        where = f"{source} server #{index + 1}"
        try:
            servers.append(parse_server(entry, source))
        except ValueError as exc:
            name = entry.get("name") or entry.get("id") if isinstance(entry, dict) else None
            problems.append(Problem(source=f"{source} server {name!r}" if name else where, message=f"{exc}; skipped"))
    return servers, problems


def parse_server(entry: Any, source: str) -> ServerSpec:
    if not isinstance(entry, dict):
        raise ValueError("is not an object")
    name = entry.get("id") or entry.get("name")
    if not isinstance(name, str) or not _SERVER_NAME.match(name):
        raise ValueError('needs an "id" or "name" of letters, digits, "_", "-" or "." (at most 64)')
    transport = str(entry.get("transport") or entry.get("type") or ("http" if entry.get("url") else "stdio")).lower()
    if transport in ("http", "streamable-http", "streamable_http", "streamablehttp"):
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError('an HTTP server needs a "url" starting with http:// or https://')
        return ServerSpec(
            name=name,
            transport="http",
            source=source,
            url=url,
            headers=_strings(entry.get("headers"), "headers"),
            description=str(entry.get("description") or ""),
        )
    if transport != "stdio":
        raise ValueError(f'transport {transport!r} is not one lynkr speaks ("stdio" or "http")')
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        raise ValueError('a stdio server needs a "command"')
    args = entry.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ValueError('"args" must be a list of strings')
    sandbox = entry.get("sandbox")
    return ServerSpec(
        name=name,
        transport="stdio",
        source=source,
        command=command,
        args=tuple(args),
        env=_strings(entry.get("env"), "env"),
        description=str(entry.get("description") or ""),
        sandbox=sandbox if isinstance(sandbox, bool) else None,
    )


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise ValueError(f'"{what}" must be an object of strings')
    return {str(key): str(item) for key, item in value.items()}
