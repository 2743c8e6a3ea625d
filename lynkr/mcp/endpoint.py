"""lynkr as an MCP server: its own tools over streamable HTTP at ``/mcp`` on the daemon's port.

The served tools are the toolbox's of :data:`SERVED_FAMILIES` (the workspace, git, test and task tools, and the
index tools once they exist).  A call goes to the tool worker like the agent loop's calls, so the same policy
judges it, its ``tool.ran`` / ``tool.refused`` events are recorded and its state changes (an edit to revert, a
task) are folded for later calls; Claude Code adds its own permission prompts on top::

    claude mcp add --transport http lynkr http://127.0.0.1:8080/mcp

The SDK's low-level ``Server`` answers the protocol, behind a stateless ``StreamableHTTPSessionManager`` with
JSON responses (no per-client session state to keep: lynkr's tool list does not change under a client).  The
app's own checks (the request guard, ``LYNKR_API_KEY``) run before a request reaches it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from lynkr import __version__
from lynkr.http.asgi import Receive, Scope, Send
from lynkr.tools.base import ToolResult
from lynkr.tools.runner import Outcome, Toolbox

if TYPE_CHECKING:
    from mcp import types
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

SERVED_FAMILIES: tuple[str, ...] = ("workspace", "index")
SESSION_ID = "mcp"  # the session id calls through /mcp run under
STARTING_WAIT_S = 10.0  # how long a /mcp request right after start waits for the SDK to load

# Runs one call (name, tool_use_id, arguments) through the tool worker and returns its outcome.
RunTool = Callable[[str, str, Mapping[str, Any]], Awaitable[Outcome]]


class McpEndpoint:
    def __init__(
        self,
        *,
        toolbox: Toolbox,
        run_tool: RunTool,
        families: Iterable[str] = SERVED_FAMILIES,
    ) -> None:
        self._toolbox = toolbox
        self._run_tool = run_tool
        self._families = tuple(families)
        self._manager: StreamableHTTPSessionManager | None = None
        self._serving = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve ``/mcp`` until cancelled (a session manager runs once, so each run makes its own).

        The SDK's server side costs about a second of imports, so it loads after the daemon is ready, in a
        thread (the event loop keeps serving); a ``/mcp`` request that comes meanwhile waits for it.
        """
        task_status.started()
        await trio.to_thread.run_sync(_load_server_sdk)
        from mcp.server.lowlevel import Server
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        server: Server[Any] = Server(
            "lynkr",
            version=__version__,
            instructions="lynkr's workspace, git, test and task tools, run under lynkr's policy.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True)
        async with manager.run():
            self._manager = manager
            self._serving.set()
            try:
                await trio.sleep_forever()
            finally:
                self._manager = None
                self._serving = trio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._manager is None:
            with trio.move_on_after(STARTING_WAIT_S):
                await self._serving.wait()
        manager = self._manager
        if manager is None:
            body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"lynkr\'s /mcp is starting; retry"}}'
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await manager.handle_request(scope, receive, send)

    def _served(self) -> dict[str, Any]:
        return {spec.name: spec for spec in self._toolbox.specs(self._families)}

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        from mcp import types

        tools = [
            types.Tool(name=spec.name, description=spec.description, input_schema=dict(spec.input_schema))
            for spec in self._served().values()
        ]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in self._served():
            return _as_call_result(
                ToolResult(content=f"lynkr does not serve a tool named {params.name!r} over MCP", is_error=True)
            )
        outcome = await self._run_tool(params.name, "mcp_" + os.urandom(8).hex(), params.arguments or {})
        return _as_call_result(outcome.result)


def _load_server_sdk() -> None:
    import mcp.server.lowlevel  # noqa: F401
    import mcp.server.streamable_http_manager  # noqa: F401


def _as_call_result(result: ToolResult) -> types.CallToolResult:
    from mcp import types

    content: list[types.ContentBlock] = []
    if isinstance(result.content, str):
        content.append(types.TextContent(type="text", text=result.content))
    else:
        for block in result.content:
            source = block.get("source") or {}
            if block.get("type") == "image" and source.get("type") == "base64":
                content.append(types.ImageContent(type="image", data=source["data"], mime_type=source["media_type"]))
            else:
                content.append(types.TextContent(type="text", text=str(block.get("text", block))))
    return types.CallToolResult(content=content, is_error=result.is_error)
