"""The HTTP stack alone, as lynkr serves it: the floor under any lynkr request, for ``bench/cache.py``.

    /work/main/.venv/bin/python bench/hypercorn_floor.py --port PORT

hypercorn on trio with lynkr's own settings (``lynkr.actors.edge.hypercorn_config``) and an ASGI app that does
only what every cache hit must: read the whole request body, then answer as ``_stream_reply`` answers a hit
(the SSE headers with the whole stream's length, then the stream in one write).  No parsing, no actors, no log:
what is left of a hit's time above this row is lynkr's own.

    POST (any path)   the canned SSE answer of a prompt-cache hit
    GET  /health      200
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import trio
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from lynkr.actors.edge import hypercorn_config
from lynkr.http.app import SSE_HEADERS
from lynkr.wire.anthropic import message_to_events
from lynkr.wire.sse import encode_events

# What a hit serves for the fake upstream's answer (bench/fake_upstream.py: one short text delta).
ANSWER = encode_events(message_to_events({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "k0000@1234567890123456789|"}], "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 0, "output_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 15000},
}))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    sized = [*SSE_HEADERS, (b"content-length", str(len(ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": sized})
    await send({"type": "http.response.body", "body": ANSWER})


async def serve(port: int) -> None:
    config = hypercorn_config(graceful_timeout_s=1.0)
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", port))
    listening.listen(128)
    sockets = Sockets(secure_sockets=[], insecure_sockets=[listening], quic_sockets=[])
    await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, sockets=sockets)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        trio.run(serve, args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
