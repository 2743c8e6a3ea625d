"""A fast fake LLM upstream for benchmarks: OpenAI chat completions and Anthropic Messages over HTTP/1.1.

    .venv/bin/python bench/fake_upstream.py --port 0

It prints ``listening on http://127.0.0.1:PORT`` once it accepts connections.  It must be much faster than the
proxy it measures, so it is a bare asyncio protocol with a hand-rolled HTTP/1.1 parser (keep-alive,
``content-length`` request bodies only), no routing framework and no JSON parsing of requests: the few facts it
needs are found with byte searches.

    POST .../chat/completions   OpenAI chat completions: JSON, or SSE chunks + ``data: [DONE]`` when the body
                                says ``"stream": true`` (a usage chunk when it asks for ``include_usage``)
    POST .../v1/messages        Anthropic Messages: JSON, or SSE with ``event:`` lines
    GET  /health                200
    GET  /last?path=openai|anthropic   the last model request body received on that wire, verbatim

The reply is ``chunks`` text deltas (1 unless the request body contains ``bench:chunks=N``, optionally followed
by ``,delay_ms=D`` to wait D ms between chunks).  Each delta's text is ``kNNNN@T|`` where T is
``time.monotonic_ns()`` when the chunk was written: a client on the same machine compares it with its own
arrival time to prove that a proxy forwards each chunk before the upstream sends the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Iterator
from typing import Final

CRLF: Final = b"\r\n"
HEAD_END: Final = b"\r\n\r\n"
MAX_HEAD_BYTES: Final = 64 * 1024
DIRECTIVE: Final = re.compile(rb"bench:chunks=(\d+)(?:,delay_ms=(\d+))?")
STREAMING: Final = re.compile(rb'"stream"\s*:\s*true')
INCLUDE_USAGE: Final = re.compile(rb'"include_usage"\s*:\s*true')
MAX_CHUNKS: Final = 100_000

OPENAI_CHUNK_HEAD: Final = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bench",'
    b'"choices":[{"index":0,"delta":'
)
ANTHROPIC_MESSAGE: Final = (
    b'{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],'
    b'"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}'
)


def marker(index: int) -> bytes:
    """The text of delta ``index``: its number and the monotonic time it was rendered, just before writing."""
    return b"k%04d@%d|" % (index, time.monotonic_ns())


def sse_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def sse_event(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
        + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


STREAM_HEAD: Final = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
STREAM_END: Final = b"0\r\n\r\n"


# ---------------------------------------------------------------------------------------------------------------
# Replies: each is an iterator of SSE frames (bytes), rendered one at a time so every marker's time is fresh.


def openai_stream(chunks: int, include_usage: bool) -> Iterator[bytes]:
    yield sse_data(OPENAI_CHUNK_HEAD + b'{"role":"assistant","content":""},"finish_reason":null}]}')
    for index in range(chunks):
        yield sse_data(OPENAI_CHUNK_HEAD + b'{"content":"' + marker(index) + b'"},"finish_reason":null}]}')
    yield sse_data(OPENAI_CHUNK_HEAD + b'{},"finish_reason":"stop"}]}')
    if include_usage:
        yield sse_data(
            b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bench",'
            b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}'
            % (chunks, chunks + 12)
        )
    yield sse_data(b"[DONE]")


def openai_json(chunks: int) -> bytes:
    text = b"".join(marker(index) for index in range(chunks))
    return (
        b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench",'
        b'"choices":[{"index":0,"message":{"role":"assistant","content":"' + text + b'"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}' % (chunks, chunks + 12)
    )


def anthropic_stream(chunks: int) -> Iterator[bytes]:
    yield sse_event(b"message_start", b'{"type":"message_start","message":' + ANTHROPIC_MESSAGE + b"}")
    yield sse_event(
        b"content_block_start", b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
    )
    for index in range(chunks):
        yield sse_event(
            b"content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"' + marker(index) + b'"}}',
        )
    yield sse_event(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
    yield sse_event(
        b"message_delta",
        b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"output_tokens":%d}}' % chunks,
    )
    yield sse_event(b"message_stop", b'{"type":"message_stop"}')


def anthropic_json(chunks: int) -> bytes:
    text = b"".join(marker(index) for index in range(chunks))
    return (
        b'{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench",'
        b'"content":[{"type":"text","text":"' + text + b'"}],"stop_reason":"end_turn","stop_sequence":null,'
        b'"usage":{"input_tokens":12,"output_tokens":%d}}' % chunks
    )


# ---------------------------------------------------------------------------------------------------------------
# The server.


class Upstream:
    """State shared by every connection: the last model request body seen on each wire, the paced streams."""

    def __init__(self) -> None:
        self.last_body: dict[bytes, bytes] = {b"openai": b"", b"anthropic": b""}
        self.streams: set[asyncio.Task[None]] = set()


class Connection(asyncio.Protocol):
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._buffer = bytearray()
        self._busy = False  # a delayed stream is being written; later pipelined requests wait for it
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._serve_buffered()

    def _serve_buffered(self) -> None:
        while not self._busy and self._transport is not None:
            head_end = self._buffer.find(HEAD_END)
            if head_end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._close_with(b"431 Request Header Fields Too Large")
                return
            head = bytes(self._buffer[:head_end])
            request_line, _, header_block = head.partition(CRLF)
            parts = request_line.split(b" ")
            if len(parts) != 3:
                self._close_with(b"400 Bad Request")
                return
            method, target, _version = parts
            length = 0
            close = False
            for line in header_block.split(CRLF):
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"transfer-encoding":
                    self._close_with(b"411 Length Required")
                    return
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            end = head_end + 4 + length
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[head_end + 4 : end])
            del self._buffer[:end]
            self._serve(method, target, body)
            if close and self._transport is not None and not self._busy:
                self._transport.close()

    def _close_with(self, status: bytes) -> None:
        if self._transport is not None:
            self._transport.write(response(status, b"text/plain", status))
            self._transport.close()

    def _serve(self, method: bytes, target: bytes, body: bytes) -> None:
        assert self._transport is not None
        path, _, query = target.partition(b"?")
        if method == b"POST" and path.endswith(b"/chat/completions"):
            wire = b"openai"
        elif method == b"POST" and path.endswith(b"/v1/messages"):
            wire = b"anthropic"
        elif method == b"GET" and path == b"/health":
            self._transport.write(response(b"200 OK", b"application/json", b'{"status":"ok"}'))
            return
        elif method == b"GET" and path == b"/last":
            wanted = query.partition(b"path=")[2].split(b"&")[0]
            self._transport.write(response(b"200 OK", b"application/json", self._upstream.last_body.get(wanted, b"")))
            return
        else:
            self._transport.write(response(b"404 Not Found", b"text/plain", b"not found"))
            return
        self._upstream.last_body[wire] = body
        chunks, delay_s = 1, 0.0
        directive = DIRECTIVE.search(body)
        if directive is not None:
            chunks = min(int(directive.group(1)), MAX_CHUNKS)
            delay_s = int(directive.group(2) or 0) / 1000
        if STREAMING.search(body) is None:
            payload = openai_json(chunks) if wire == b"openai" else anthropic_json(chunks)
            self._transport.write(response(b"200 OK", b"application/json", payload))
            return
        frames = (
            openai_stream(chunks, INCLUDE_USAGE.search(body) is not None) if wire == b"openai"
            else anthropic_stream(chunks)
        )
        if delay_s <= 0:
            # Each frame is its own write, as a real upstream's token stream would be.
            self._transport.write(STREAM_HEAD)
            for frame in frames:
                self._transport.write(http_chunk(frame))
            self._transport.write(STREAM_END)
            return
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._stream_slowly(frames, delay_s))
        # The loop keeps only weak references to tasks.
        self._upstream.streams.add(task)
        task.add_done_callback(self._upstream.streams.discard)

    async def _stream_slowly(self, frames: Iterator[bytes], delay_s: float) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(STREAM_HEAD)
        # The generator renders a frame (and its marker's time) only when asked for it, after the pause.
        for frame in frames:
            if transport.is_closing():
                return
            transport.write(http_chunk(frame))
            await asyncio.sleep(delay_s)
        transport.write(STREAM_END)
        self._busy = False
        self._serve_buffered()


async def serve(host: str, port: int) -> None:
    upstream = Upstream()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(upstream), host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
