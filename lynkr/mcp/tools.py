"""Bridged MCP tools as lynkr tools, the two generic MCP tools, and the policy rule for ``mcp.call``.

Every MCP tool call is one canonical ``mcp.call`` action (``detail``: server, tool), whichever tool asks for it
(``mcp__time__get_current_time`` or ``workspace_mcp_call``), so the policy judges both alike:

- ``MCP_SANDBOX_PERMISSION_DENY`` patterns refuse (they win over everything);
- ``MCP_SANDBOX_PERMISSION_MODE=deny`` refuses every call; ``require`` refuses all but ``MCP_SANDBOX_PERMISSION_ALLOW``'s;
  ``auto`` allows what is not denied.

A pattern is ``server`` or ``server/tool``, with shell globs (``github/*``, ``*/delete_*``), or the tool's
full ``mcp__server__tool`` name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import orjson

from lynkr.mcp.names import tool_name
from lynkr.tools.base import (
    Action,
    PolicyRule,
    Refusal,
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
)

if TYPE_CHECKING:
    from mcp import types

    from lynkr.config import Config
    from lynkr.mcp.settings import McpConfig

FAMILY = "mcp"
RULE = "mcp_permissions"


class Calls(Protocol):
    """What the tools need of the bridge (:class:`lynkr.actors.mcp.Bridge`)."""

    async def call(self, server: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult: ...

    def snapshot(self) -> list[dict[str, Any]]: ...


def _object_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Upstreams want an object schema; an MCP tool may omit it or leave out ``type``."""
    chosen = dict(schema or {})
    chosen.setdefault("type", "object")
    return chosen


class McpTool:
    """One tool of a bridged server, offered as ``mcp__<server>__<tool>``."""

    def __init__(self, *, bridge: Calls, server: str, tool: types.Tool) -> None:
        self._bridge = bridge
        self.server = server
        self.tool = tool.name
        description = tool.description or tool.title or f"The {tool.name} tool of the MCP server {server}."
        self._spec = ToolSpec(
            name=tool_name(server, tool.name),
            description=description,
            input_schema=_object_schema(tool.input_schema),
            family=FAMILY,
            kinds=("mcp.call",),
        )

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return [Action(kind="mcp.call", detail={"server": self.server, "tool": self.tool})]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self._bridge.call(self.server, self.tool, arguments)


class McpServersTool:
    """``workspace_mcp_servers``: the configured MCP servers, their state, their tools and their last error."""

    def __init__(self, bridge: Calls) -> None:
        self._bridge = bridge

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            name="workspace_mcp_servers",
            description=(
                "List the MCP servers lynkr bridges: each one's state (starting, ready, crashed, gave_up), its "
                "tools (with the names to call them by) and its last error."
            ),
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            family=FAMILY,
        )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        return []

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        servers = [
            {key: value for key, value in server.items() if key != "stderr_tail"} for server in self._bridge.snapshot()
        ]
        return ToolResult(content=orjson.dumps({"servers": servers}, option=orjson.OPT_INDENT_2).decode())


class McpCallTool:
    """``workspace_mcp_call``: call one tool of one MCP server by name, for models better at one generic tool."""

    def __init__(self, bridge: Calls) -> None:
        self._bridge = bridge

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(
            name="workspace_mcp_call",
            description=(
                "Call a tool of an MCP server lynkr bridges. workspace_mcp_servers lists the servers and tools."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "server": {"type": "string", "description": "The MCP server's name."},
                    "tool": {"type": "string", "description": "The tool's name on that server."},
                    "arguments": {"type": "object", "description": "The tool's arguments."},
                },
                "required": ["server", "tool"],
                "additionalProperties": False,
            },
            family=FAMILY,
            kinds=("mcp.call",),
        )

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        server, tool = arguments.get("server"), arguments.get("tool")
        if not isinstance(server, str) or not isinstance(tool, str):
            raise ToolInputError("workspace_mcp_call needs the server and tool names as strings")
        return [Action(kind="mcp.call", detail={"server": server, "tool": tool})]

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self._bridge.call(arguments["server"], arguments["tool"], arguments.get("arguments") or {})


def generic_tools(bridge: Calls) -> list[McpServersTool | McpCallTool]:
    return [McpServersTool(bridge), McpCallTool(bridge)]


def matches(pattern: str, server: str, tool: str) -> bool:
    pattern = pattern.strip()
    if pattern.startswith("mcp__"):
        return fnmatchcase(tool_name(server, tool), pattern)
    wanted_server, _, wanted_tool = pattern.partition("/")
    return fnmatchcase(server, wanted_server) and fnmatchcase(tool, wanted_tool or "*")


@attrs.frozen
class McpPermissions:
    config: McpConfig
    name: str = RULE

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind != "mcp.call":
            return None
        server, tool = str(action.detail.get("server", "")), str(action.detail.get("tool", ""))
        what = f"the MCP tool {tool} of server {server}"
        for pattern in self.config.permission_deny:
            if matches(pattern, server, tool):
                return Refusal(rule=self.name, reason=f"{what} is denied (MCP_SANDBOX_PERMISSION_DENY has {pattern!r})")
        if self.config.permission_mode == "deny":
            return Refusal(rule=self.name, reason=f"MCP tool calls are turned off (MCP_SANDBOX_PERMISSION_MODE=deny); {what} did not run")
        if self.config.permission_mode == "require" and not any(
            matches(pattern, server, tool) for pattern in self.config.permission_allow
        ):
            return Refusal(
                rule=self.name,
                reason=(
                    f"{what} is not in MCP_SANDBOX_PERMISSION_ALLOW, and MCP_SANDBOX_PERMISSION_MODE=require allows only those; "
                    "ask the user to allow it"
                ),
            )
        return None


def rules(config: Config) -> list[PolicyRule]:
    return [McpPermissions(config.mcp)]
