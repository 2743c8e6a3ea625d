"""The MCP bridge actor: one supervised child per configured MCP server, and calls routed to them.

The daemon builds a :class:`Bridge` over the toolbox's registry and starts :func:`run`, which reports ready at
once: servers start in the background, so a slow server never delays ``/health``.  Each server's child task
(:meth:`Bridge._keep_running`) connects over stdio or streamable HTTP with the ``mcp`` SDK (anyio on trio),
initialises, lists the tools and registers them as ``mcp__<server>__<tool>``; it follows
``notifications/tools/list_changed`` by listing again.  When the server dies (stdout closes, or an HTTP server
stops answering pings) its tools leave the registry, the calls in flight end with an error result, and the
child starts it again after a backoff, giving up after ``MCP_MAX_RESTARTS`` failures in a row.

A call (:meth:`Bridge.call`) waits for its server to be ready, then for the answer, both within
``MCP_TIMEOUT_MS``; whatever goes wrong becomes an error ``tool_result`` the model can read, never a crash.
Registry changes happen here, on the trio thread, so the tool worker always sees a consistent set.
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import attrs
import trio

from lynkr.actors.recorder import Recorder
from lynkr.events.records import Event
from lynkr.mcp import sandbox
from lynkr.mcp.events import STREAM, McpServerSkipped, McpServerState, McpServerStderr
from lynkr.mcp.manifest import Discovered, ServerSpec
from lynkr.mcp.names import tool_name
from lynkr.mcp.results import tool_result
from lynkr.mcp.settings import McpConfig
from lynkr.mcp.tools import McpTool, generic_tools
from lynkr.tools.base import Registry, ToolResult

if TYPE_CHECKING:
    from mcp import ClientSession, types

log = logging.getLogger("lynkr.mcp")

# stderr kept per server start: lines recorded, characters per line, and lines remembered for `lynkr mcp`.
STDERR_LINES_RECORDED = 200
STDERR_LINE_CHARS = 1000
STDERR_TAIL = 20
# A server up this long before it crashed starts its failure count again.
STABLE_S = 60.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
HTTP_PING_INTERVAL_S = 15.0
# What a server's environment keeps of lynkr's own when the configuration lists nothing.
ENV_ALLOW_PREFIXES = ("LC_",)


class ServerGone(Exception):
    """The server stopped answering: its stdout closed or its pings failed."""


@attrs.define
class Incarnation:
    """One start of a server: its session while it lives, and the calls waiting on it."""

    session: ClientSession
    gone: trio.Event  # set as soon as the server's output ends
    calls: set[trio.CancelScope] = attrs.field(factory=set)
    death: str | None = None


@attrs.define
class ServerHandle:
    spec: ServerSpec
    state: str = "starting"  # starting, ready, crashed, restarting, gave_up
    attempt: int = 0
    tools: dict[str, types.Tool] = attrs.field(factory=dict)  # by the server's own tool name
    registered: list[str] = attrs.field(factory=list)  # our names for them, as registered
    last_error: str = ""
    stderr_tail: collections.deque[str] = attrs.field(factory=lambda: collections.deque(maxlen=STDERR_TAIL))
    live: Incarnation | None = None
    changed: trio.Event = attrs.field(factory=trio.Event)  # set (and replaced) when the state changes
    ready_at: float = 0.0

    def moved(self, state: str) -> None:
        self.state = state
        self.changed.set()
        self.changed = trio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "transport": self.spec.transport,
            "source": self.spec.source,
            "description": self.spec.description,
            "state": self.state,
            "starts": self.attempt,
            "tools": [
                {"name": tool_name(self.spec.name, name), "tool": name, "description": tool.description or ""}
                for name, tool in self.tools.items()
            ],
            "last_error": self.last_error,
            "stderr_tail": list(self.stderr_tail),
        }


class Bridge:
    """The bridged servers' state, shared by the actor (which changes it) and callers (which read and call)."""

    def __init__(
        self,
        config: McpConfig,
        *,
        discovered: Discovered,
        registry: Registry,
        recorder: Recorder,
        workspace: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.problems = discovered.problems
        self.registry = registry
        self.recorder = recorder
        self.workspace = workspace
        self.timeout_s = config.timeout_ms / 1000
        self.environ = dict(os.environ if environ is None else environ)
        self.servers = {spec.name: ServerHandle(spec=spec) for spec in discovered.servers}
        self.sandbox_runtime = sandbox.find_runtime() if config.sandbox_enabled else None

    # ---- calls -----------------------------------------------------------------------------------------------

    async def call(self, server: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        handle = self.servers.get(server)
        if handle is None:
            known = ", ".join(sorted(self.servers)) or "none are configured"
            return _error(f"there is no MCP server {server!r} (servers: {known}); workspace_mcp_servers lists them")
        deadline = trio.current_time() + self.timeout_s
        with trio.move_on_at(deadline):
            # A server whose output just closed is still "ready" until its child notices: wait for the restart.
            while handle.state != "gave_up" and (
                handle.state != "ready" or handle.live is None or handle.live.gone.is_set()
            ):
                await handle.changed.wait()
        live = handle.live
        if handle.state == "gave_up":
            return _error(
                f"the MCP server {server!r} is not running: lynkr gave up on it ({handle.last_error}); "
                "fix its configuration and restart lynkr"
            )
        if handle.state != "ready" or live is None or live.gone.is_set():
            return _error(
                f"the MCP server {server!r} was not ready within {self.config.timeout_ms} ms (MCP_TIMEOUT_MS; "
                f"it is {handle.state}{': ' + handle.last_error if handle.last_error else ''}); try again shortly"
            )
        if tool not in handle.tools:
            offered = ", ".join(sorted(handle.tools)) or "none"
            return _error(f"the MCP server {server!r} has no tool {tool!r} (its tools: {offered})")
        with trio.move_on_at(deadline) as scope:
            live.calls.add(scope)
            try:
                result = await live.session.call_tool(tool, dict(arguments))
            except Exception as exc:
                if live.gone.is_set():
                    return _error(f"the MCP server {server!r} stopped during the call to {tool} ({_describe(exc)})")
                return _error(f"the MCP server {server!r} failed the call to {tool}: {_describe(exc)}")
            finally:
                live.calls.discard(scope)
        if scope.cancelled_caught:
            if live.death is not None:
                return _error(f"the MCP server {server!r} stopped during the call to {tool}: {live.death}")
            return _error(
                f"the MCP server {server!r} did not answer {tool} within {self.config.timeout_ms} ms "
                "(MCP_TIMEOUT_MS); it may be stuck, or the call may need less work"
            )
        from mcp import types

        if not isinstance(result, types.CallToolResult):
            return _error(f"the MCP server {server!r} asked for input lynkr cannot give ({type(result).__name__})")
        return tool_result(result)

    def snapshot(self) -> list[dict[str, Any]]:
        return [handle.snapshot() for handle in self.servers.values()]

    # ---- the actor's side ----------------------------------------------------------------------------------

    async def _record(self, event: Event) -> None:
        await self.recorder.record(STREAM, event)

    async def _keep_running(self, handle: ServerHandle) -> None:
        spec = handle.spec
        refusal = self._refusal(spec)
        if refusal is not None:
            log.warning("MCP: server %r (%s): %s", spec.name, spec.source, refusal)
            handle.last_error = refusal
            handle.moved("gave_up")
            await self._record(McpServerSkipped(source=f"{spec.source} server {spec.name!r}", message=refusal))
            await self._record(McpServerState(server=spec.name, state="gave_up", attempt=0, message=refusal))
            return
        failures = 0
        while True:
            handle.attempt += 1
            await self._record(McpServerState(server=spec.name, state="starting", attempt=handle.attempt))
            try:
                await self._serve(handle)
                reason = "the server stopped"
            except Exception as exc:
                reason = _describe(exc)
            self._take_down(handle, reason)
            if handle.ready_at and trio.current_time() - handle.ready_at >= STABLE_S:
                failures = 0
            failures += 1
            handle.last_error = reason
            if failures > self.config.max_restarts:
                message = f"{reason}; gave up after {failures} failed starts in a row"
                log.warning("MCP: server %r: %s", spec.name, message)
                handle.moved("gave_up")
                await self._record(
                    McpServerState(server=spec.name, state="gave_up", attempt=handle.attempt, message=message)
                )
                return
            log.warning("MCP: server %r crashed: %s; restarting", spec.name, reason)
            handle.moved("crashed")
            await self._record(McpServerState(server=spec.name, state="crashed", attempt=handle.attempt, message=reason))
            await trio.sleep(min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (failures - 1)))
            handle.moved("restarting")
            await self._record(McpServerState(server=spec.name, state="restarting", attempt=handle.attempt))

    def _refusal(self, spec: ServerSpec) -> str | None:
        """Why ``spec`` cannot start at all (so no restart would help), or None."""
        if spec.transport != "stdio":
            return None
        assert spec.command is not None
        if shutil.which(spec.command, path=self._server_env(spec).get("PATH")) is None:
            return f"the command {spec.command!r} was not found on PATH; install it or give its full path"
        if self._sandboxed(spec) and self.sandbox_runtime is None:
            return (
                "MCP_SANDBOX_ENABLED is set but no sandbox runtime works here (" + sandbox.why_unavailable() + "); "
                "lynkr will not run it unsandboxed: install bubblewrap, or set \"sandbox\": false for this server"
            )
        return None

    def _sandboxed(self, spec: ServerSpec) -> bool:
        return spec.sandbox if spec.sandbox is not None else self.config.sandbox_enabled

    def _server_env(self, spec: ServerSpec) -> dict[str, str]:
        """The manifest's env over an allow-list of lynkr's own: never lynkr's secrets."""
        allowed = set(self.config.sandbox_passthrough_env)
        kept = {
            name: value
            for name, value in self.environ.items()
            if name in allowed or name.startswith(ENV_ALLOW_PREFIXES)
        }
        return {**kept, **spec.env}

    async def _serve(self, handle: ServerHandle) -> None:
        import httpx2
        from mcp import ClientSession, types
        from mcp.client.streamable_http import streamable_http_client

        spec = handle.spec
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            if spec.transport == "stdio":
                streams = await self._open_stdio(spec, handle, stack, nursery)
            else:
                assert spec.url is not None
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=dict(spec.headers), timeout=self.timeout_s)
                )
                streams = await stack.enter_async_context(streamable_http_client(spec.url, http_client=client))
            transport_read, write = streams
            # Messages pass through one more channel so the end of the server's output is seen here, whatever
            # the session makes of it.
            forward, read = anyio.create_memory_object_stream[Any](16)
            gone = trio.Event()
            nursery.start_soon(_forward, transport_read, forward, gone)
            changes_send, changes = trio.open_memory_channel[None](1)

            async def on_message(message: Any) -> None:
                if isinstance(message, types.ToolListChangedNotification):
                    try:
                        changes_send.send_nowait(None)
                    except trio.WouldBlock:
                        pass  # a listing is already due

            session = await stack.enter_async_context(
                ClientSession(read, write, message_handler=on_message, read_timeout_seconds=None)
            )
            with trio.fail_after(self.config.start_timeout_ms / 1000):
                await session.initialize()
                tools = await _list_tools(session)
            live = Incarnation(session=session, gone=gone)
            handle.live = live
            handle.ready_at = trio.current_time()
            handle.last_error = ""
            self._register(handle, tools)
            handle.moved("ready")
            await self._record(
                McpServerState(server=spec.name, state="ready", attempt=handle.attempt, tools=tuple(handle.tools))
            )
            if spec.transport == "http":
                nursery.start_soon(_ping, session, self.timeout_s, gone)
            with trio.CancelScope() as serving:
                nursery.start_soon(_cancel_when, gone, serving)
                async with changes:
                    async for _ in changes:
                        with trio.fail_after(self.timeout_s):
                            tools = await _list_tools(session)
                        self._register(handle, tools)
                        await self._record(
                            McpServerState(
                                server=spec.name,
                                state="tools_changed",
                                attempt=handle.attempt,
                                tools=tuple(handle.tools),
                            )
                        )
            raise ServerGone("its output closed (the process exited or the connection dropped)")

    async def _open_stdio(
        self, spec: ServerSpec, handle: ServerHandle, stack: AsyncExitStack, nursery: trio.Nursery
    ) -> Any:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        assert spec.command is not None
        env = self._server_env(spec)
        command, args = spec.command, list(spec.args)
        if self._sandboxed(spec):
            assert self.sandbox_runtime is not None
            command, args = sandbox.wrap(
                self.sandbox_runtime,
                [command, *args],
                workspace=self.workspace,
                env=env,
                allow_network=self.config.sandbox_allow_networking,
            )
        params = StdioServerParameters(command=command, args=args, env=env, cwd=str(self.workspace))
        read_fd, write_fd = os.pipe()
        errlog: TextIO = os.fdopen(write_fd, "w")
        try:
            streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            errlog.close()  # the child holds its own copy
        nursery.start_soon(self._pump_stderr, handle, read_fd)
        return streams

    async def _pump_stderr(self, handle: ServerHandle, read_fd: int) -> None:
        recorded = dropped = 0
        pending = b""
        async with trio.lowlevel.FdStream(read_fd) as stream:
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > STDERR_LINE_CHARS * 4:
                    lines.append(pending)
                    pending = b""
                texts = [line.decode(errors="replace")[:STDERR_LINE_CHARS] for line in lines if line.strip()]
                handle.stderr_tail.extend(texts)
                keep = texts[: max(0, STDERR_LINES_RECORDED - recorded)]
                if len(keep) < len(texts):
                    dropped += len(texts) - len(keep)
                if keep:
                    recorded += len(keep)
                    await self._record(McpServerStderr(server=handle.spec.name, lines=tuple(keep)))
        if dropped:
            await self._record(McpServerStderr(server=handle.spec.name, lines=(), dropped=dropped))

    def _register(self, handle: ServerHandle, tools: list[types.Tool]) -> None:
        self._unregister(handle)
        handle.tools = {tool.name: tool for tool in tools}
        for tool in tools:
            bridged = McpTool(bridge=self, server=handle.spec.name, tool=tool)
            name = bridged.spec.name
            if name in self.registry:
                log.warning("MCP: %s from server %r is already a tool name; not offered", name, handle.spec.name)
                continue
            self.registry.add(bridged)
            handle.registered.append(name)

    def _unregister(self, handle: ServerHandle) -> None:
        for name in handle.registered:
            self.registry.remove(name)
        handle.registered = []

    def _take_down(self, handle: ServerHandle, reason: str) -> None:
        self._unregister(handle)
        handle.tools = {}
        live, handle.live = handle.live, None
        if live is not None:
            live.death = reason
            for scope in live.calls:
                scope.cancel()


async def run(bridge: Bridge, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Start every server's child and report ready at once; the servers come up in the background."""
    for problem in bridge.problems:
        log.warning("%s", problem.line())
        await bridge._record(McpServerSkipped(source=problem.source, message=problem.message))
    if bridge.config.sandbox_enabled and bridge.sandbox_runtime is None:
        log.warning(
            "MCP: MCP_SANDBOX_ENABLED is set but no sandbox runtime works here (%s); sandboxed servers will not start",
            sandbox.why_unavailable(),
        )
    # With no server configured there is nothing to list or call: offering the generic tools anyway would take
    # every client-mode turn off the hot path.
    generic = generic_tools(bridge) if bridge.servers else []
    for tool in generic:
        if tool.spec.name not in bridge.registry:
            bridge.registry.add(tool)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started()
            if bridge.servers:
                # The SDK's client costs about a second of imports: loaded here, after ready, and only when a
                # server is configured, in a thread so the event loop keeps serving meanwhile.
                await trio.to_thread.run_sync(_load_client_sdk)
            for handle in bridge.servers.values():
                nursery.start_soon(bridge._keep_running, handle)
            await trio.sleep_forever()  # the actor lives as long as the daemon, servers or not
    finally:
        for handle in bridge.servers.values():
            bridge._take_down(handle, "lynkr is stopping")
        for tool in generic:
            bridge.registry.remove(tool.spec.name)


def _load_client_sdk() -> None:
    import mcp.client.stdio  # noqa: F401
    import mcp.client.streamable_http  # noqa: F401


async def _list_tools(session: ClientSession) -> list[types.Tool]:
    from mcp import types

    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


async def _forward(source: Any, sink: Any, gone: trio.Event) -> None:
    async with sink:
        try:
            async for message in source:
                await sink.send(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        finally:
            gone.set()


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _ping(session: ClientSession, timeout_s: float, gone: trio.Event) -> None:
    while True:
        await trio.sleep(HTTP_PING_INTERVAL_S)
        try:
            with trio.fail_after(timeout_s):
                await session.send_ping()
        except Exception:
            gone.set()
            return


def _error(message: str) -> ToolResult:
    return ToolResult(content=f"Error: {message}", is_error=True)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, trio.TooSlowError):
        return "it did not finish starting within MCP_START_TIMEOUT_MS"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text

