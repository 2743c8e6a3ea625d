"""A real MCP server for lynkr's tests, written with the official SDK (``MCPServer``) and run on trio.

    python -m tests.fakes.mcp_server [--http PORT] [--garbage] [--slow-start S] [--stderr N] [--name NAME]

Tools: ``echo`` (text), ``ping`` (an async answer), ``picture`` (a PNG image), ``weather`` (structured content), ``resource`` (an embedded
text resource and a binary one), ``fail`` (an error result), ``grow`` (adds the tool ``extra`` and announces
``tools/list_changed``), ``crash`` (the process exits mid-call), ``hang`` (never answers) and ``env`` (what the
server's environment holds, by name) and ``reach`` (network and file access, for the sandbox).

``--garbage`` prints non-JSON lines on stdout first and between calls; ``--slow-start S`` sleeps before serving;
``--stderr N`` writes N lines to stderr at start.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
import time
from typing import Any

import anyio
import trio
from mcp import types
from mcp.server.mcpserver import Context, MCPServer

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def build(name: str, garbage: bool) -> MCPServer:
    server = MCPServer(name)

    @server.tool(description="Say the text back.")
    def echo(text: str) -> str:
        if garbage:
            print("this line is not JSON-RPC", flush=True)
        return f"echo: {text}"

    @server.tool(description="Answer at once (async, no thread hop): for benchmarks.")
    async def ping() -> str:
        return "pong"

    @server.tool(description="A name too long for OpenAI once prefixed with mcp__<server>__.")
    def a_tool_whose_name_is_long_enough_to_need_shortening_upstream() -> str:
        return "long name reached"

    @server.tool(description="A tiny PNG picture.")
    def picture() -> list[types.ImageContent]:
        data = base64.b64encode(PNG).decode()
        return [types.ImageContent(type="image", data=data, mime_type="image/png")]

    @server.tool(description="The weather of a city, as structured content.")
    def weather(city: str) -> dict[str, Any]:
        return {"city": city, "celsius": 21.5, "sky": "clear"}

    @server.tool(description="Two embedded resources, one text and one binary.")
    def resource() -> list[types.EmbeddedResource]:
        text = types.TextResourceContents(uri="file:///notes.txt", mime_type="text/plain", text="the notes")
        blob = types.BlobResourceContents(
            uri="file:///data.bin", mime_type="application/octet-stream", blob=base64.b64encode(b"\0" * 12).decode()
        )
        return [
            types.EmbeddedResource(type="resource", resource=text),
            types.EmbeddedResource(type="resource", resource=blob),
        ]

    @server.tool(description="Always fails.")
    def fail(reason: str = "on purpose") -> str:
        raise ValueError(f"failed {reason}")

    @server.tool(description="Add the tool 'extra' and announce the change.")
    async def grow(ctx: Context) -> str:
        def extra() -> str:
            return "extra ran"

        server.add_tool(extra, name="extra", description="Added at run time.")
        await ctx.session.send_tool_list_changed()
        return "grown"

    @server.tool(description="Exit the process in the middle of the call.")
    def crash() -> str:
        os._exit(3)

    @server.tool(description="Never answer.")
    async def hang() -> str:
        await anyio.sleep_forever()
        return "unreachable"

    @server.tool(description="The names of this server's environment variables.")
    def env() -> str:
        return "\n".join(sorted(os.environ))

    @server.tool(description="What this process may do: reach a TCP port, write the working folder, write elsewhere.")
    def reach(port: int, elsewhere: str) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            found["network"] = "reached"
        except OSError as exc:
            found["network"] = f"refused: {exc}"
        for key, path in (("workspace", os.path.join(os.getcwd(), "written-by-mcp.txt")), ("elsewhere", elsewhere)):
            try:
                with open(path, "w") as file:
                    file.write("x")
                found[key] = "written"
            except OSError as exc:
                found[key] = f"refused: {exc}"
        return found

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None)
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--slow-start", type=float, default=0.0)
    parser.add_argument("--stderr", type=int, default=0)
    parser.add_argument("--name", default="fake")
    options = parser.parse_args()
    for index in range(options.stderr):
        print(f"stderr line {index}", file=sys.stderr, flush=True)
    if options.slow_start:
        time.sleep(options.slow_start)
    if options.garbage:
        print("garbage before the handshake", flush=True)
    server = build(options.name, options.garbage)
    if options.http is None:
        anyio.run(server.run_stdio_async, backend="trio")
    else:
        trio.run(_serve_http, server, options.http)


async def _serve_http(server: MCPServer, port: int) -> None:
    import hypercorn.trio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    app = server.streamable_http_app()
    await hypercorn.trio.serve(app, config)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
