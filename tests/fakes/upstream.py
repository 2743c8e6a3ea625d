"""The fake upstream LLM server: one ASGI app that speaks OpenAI chat, Anthropic Messages and Ollama by path,
answers from a script, records every request and injects faults; and `serve_fake`, which serves it on loopback."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal
from urllib.parse import parse_qs

import attrs
import hypercorn.trio
import trio
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, LifespanScope, Scope

from .limits import Limit, first_refusal
from .plan import Chunk, Plan, json_plan
from .render_anthropic import render_anthropic
from .render_ollama import render_ollama
from .render_openai import render_openai
from .script import DEFAULT_REPLY, Faults, Reply

WireFormat = Literal["openai", "anthropic", "ollama"]
Outcome = Literal["completed", "dropped", "client_disconnected"]

_RENDERERS: dict[WireFormat, Callable[..., Plan]] = {
    "openai": render_openai,
    "anthropic": render_anthropic,
    "ollama": render_ollama,
}


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """A request as the fake received it.  `received_at` is `time.monotonic()`."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    json: Any
    received_at: float

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


@attrs.define(kw_only=True)
class Exchange:
    """One request and what became of its response.  Times are `time.monotonic()`."""

    request: RecordedRequest
    wire_format: WireFormat | None
    reply: Reply | None
    outcome: Outcome | None = None
    client_disconnected_at: float | None = None
    finished_at: float | None = None
    ended: trio.Event = attrs.field(factory=trio.Event)
    sent: bytearray = attrs.field(factory=bytearray)  # the response body bytes, exactly as written

    def finish(self, outcome: Outcome) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self.finished_at = time.monotonic()
        if outcome == "client_disconnected":
            self.client_disconnected_at = self.finished_at
        self.ended.set()


class FakeUpstream:
    """An ASGI app answering model calls from a script of `Reply`s (the default reply once the script is empty).

    Routes (any path prefix is accepted):
      POST .../chat/completions, .../invocations       OpenAI chat completions (also Azure's deployment form)
      POST .../v1/messages                             Anthropic Messages
      POST .../v1/messages/count_tokens                {"input_tokens": N}, or 404 with count_tokens=False
                                                       (as on Databricks); never consumes the script
      POST .../api/chat                                Ollama native chat
      GET  .../api/version, .../api/tags               Ollama metadata
      GET  .../v1/models                               OpenAI model list (Anthropic's with anthropic-version)
      HEAD anything                                    200, empty
    Everything else gets a 404.
    """

    def __init__(
        self,
        *,
        default_reply: Reply = DEFAULT_REPLY,
        models: tuple[str, ...] = ("fake-model",),
        count_tokens: bool = True,
        ignore_stream: bool = False,
        tool_call_ids: str | None = None,
        limits: tuple[Limit, ...] = (),
    ) -> None:
        self.default_reply = default_reply
        self.models = models
        self.count_tokens = count_tokens
        self.ignore_stream = ignore_stream  # answer with whole JSON even when asked to stream, as some servers do
        # A regular expression every tool-call id in an OpenAI-format request must match in full, as Mistral models
        # demand ("[a-zA-Z0-9]{9}"); a request with any other id gets vLLM's 400 and takes no reply.
        self.tool_call_ids = re.compile(tool_call_ids) if tool_call_ids is not None else None
        self.limits = limits  # model calls that break one get its refusal instead of the script's next reply
        self.exchanges: list[Exchange] = []
        self._script: deque[Reply] = deque()
        self._arrived = trio.Event()

    # -- the test's side ----------------------------------------------------------------------------------------

    def push(self, *replies: Reply) -> None:
        """Queue replies; each model call takes the next one."""
        self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        return [exchange.request for exchange in self.exchanges]

    @property
    def refusals(self) -> list[Exchange]:
        """Model calls answered with an error status: a scripted one, or a limit's refusal."""
        return [exchange for exchange in self.model_calls if exchange.reply and exchange.reply.http_status >= 400]

    @property
    def model_calls(self) -> list[Exchange]:
        """Exchanges that consumed a reply (chat, messages or /api/chat calls), in arrival order."""
        return [exchange for exchange in self.exchanges if exchange.reply is not None]

    async def wait_for_model_calls(self, count: int) -> list[Exchange]:
        """Wait until at least `count` model calls have arrived; wrap it in a timeout."""
        while len(self.model_calls) < count:
            await self._arrived.wait()
        return self.model_calls[:count]

    # -- ASGI ---------------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan":
            await _run_lifespan(scope, receive, send)
        elif scope["type"] == "http":
            await self._serve_http(scope, receive, send)

    async def _serve_http(self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        request = await _read_request(scope, receive)
        wire_format = _model_call_format(request)
        refused = self._refused_tool_call_id(request) if wire_format == "openai" else None
        if refused is not None:
            message = f"Tool call id was {refused} but must be a-z, A-Z, 0-9, with a length of 9."
            self.exchanges.append(Exchange(request=request, wire_format=wire_format, reply=None))
            await _deliver(json_plan(400, {"object": "error", "message": message, "type": "BadRequestError",
                                           "param": None, "code": 400}), Faults(), self.exchanges[-1], receive, send)
            return
        reply = None
        if wire_format is not None:
            reply = first_refusal(self.limits, request)
        if wire_format is not None and reply is None:
            reply = self._script.popleft() if self._script else self.default_reply
        exchange = Exchange(request=request, wire_format=wire_format, reply=reply)
        self.exchanges.append(exchange)
        if reply is not None:
            self._arrived.set()
            self._arrived = trio.Event()
        if wire_format is not None and reply is not None:
            body = request.json if isinstance(request.json, dict) else {}
            if self.ignore_stream:
                body = {**body, "stream": False}
            plan = _RENDERERS[wire_format](reply, body, sequence=len(self.exchanges))
            await _deliver(plan, reply.faults, exchange, receive, send)
        else:
            plan = self._metadata_answer(request)
            await _deliver(plan, Faults(), exchange, receive, send)

    def _refused_tool_call_id(self, request: RecordedRequest) -> str | None:
        """The first tool-call id of the request that `tool_call_ids` does not match."""
        if self.tool_call_ids is None or not isinstance(request.json, dict):
            return None
        for message in request.json.get("messages") or ():
            ids = [call.get("id", "") for call in message.get("tool_calls") or ()]
            if message.get("role") == "tool":
                ids.append(message.get("tool_call_id", ""))
            for tool_call_id in ids:
                if not self.tool_call_ids.fullmatch(str(tool_call_id)):
                    return str(tool_call_id)
        return None

    def _metadata_answer(self, request: RecordedRequest) -> Plan:
        path, method = request.path, request.method
        if method == "HEAD":
            return Plan(status=200, headers=(), chunks=(), streamed=False)
        if method == "POST" and path.endswith("/v1/messages/count_tokens") and self.count_tokens:
            return json_plan(200, {"input_tokens": max(1, len(request.body) // 4)})
        if method == "GET" and path.endswith("/api/version"):
            return json_plan(200, {"version": "0.14.0"})
        if method == "GET" and path.endswith("/api/tags"):
            return json_plan(200, {"models": [_ollama_tag(name) for name in self.models]})
        if method == "GET" and path.endswith("/v1/models"):
            if request.header("anthropic-version") is not None:
                data = [{"type": "model", "id": name, "display_name": name, "created_at": "2026-01-01T00:00:00Z"}
                        for name in self.models]
                return json_plan(
                    200, {"data": data, "has_more": False, "first_id": self.models[0], "last_id": self.models[-1]}
                )
            models = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in self.models]
            return json_plan(200, {"object": "list", "data": models})
        message = f"no route for {method} {path}"
        if "/v1/messages" in path:
            return json_plan(404, {"type": "error", "error": {"type": "not_found_error", "message": message}})
        return json_plan(404, {"error": {"message": message, "type": "not_found"}})


def _model_call_format(request: RecordedRequest) -> WireFormat | None:
    if request.method != "POST":
        return None
    path = request.path.rstrip("/")
    if path.endswith("/chat/completions") or path.endswith("/invocations"):
        return "openai"
    if path.endswith("/v1/messages"):
        return "anthropic"
    if path.endswith("/api/chat"):
        return "ollama"
    return None


def _ollama_tag(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-01T00:00:00Z",
        "size": 1_000_000,
        "digest": "0" * 64,
        "details": {"format": "gguf", "family": "fake", "parameter_size": "1B", "quantization_level": "Q4_0"},
    }


async def _run_lifespan(scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_request(scope: HTTPScope, receive: ASGIReceiveCallable) -> RecordedRequest:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body.extend(message["body"])
        if not message["more_body"]:
            break
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        query=scope["query_string"].decode("latin-1"),
        headers=tuple((key.decode("latin-1").lower(), value.decode("latin-1")) for key, value in scope["headers"]),
        body=bytes(body),
        json=parsed,
        received_at=time.monotonic(),
    )


async def _deliver(
    plan: Plan, faults: Faults, exchange: Exchange, receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    """Send the plan, applying the timing faults, while watching for the client going away."""
    completing = False

    async def watch_for_disconnect(cancel_scope: trio.CancelScope) -> None:
        while True:
            message = await receive()
            # hypercorn also reports http.disconnect once a complete response has been sent: not the client's doing.
            if message["type"] == "http.disconnect" and not completing:
                exchange.finish("client_disconnected")
                cancel_scope.cancel()
                return

    chunks, drop = _chunks_to_send(plan, faults)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_for_disconnect, nursery.cancel_scope)
        await trio.sleep(faults.first_byte_delay)
        headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in plan.headers]
        await send({"type": "http.response.start", "status": plan.status, "headers": headers})
        for index, chunk in enumerate(chunks):
            if index and not chunk.is_comment:
                await trio.sleep(faults.chunk_delay)
            await send({"type": "http.response.body", "body": chunk.data, "more_body": True})
            exchange.sent += chunk.data
        if drop:
            # Returning without the final body message makes hypercorn close the connection mid-body: the client
            # sees an unterminated chunked response (httpx: RemoteProtocolError), like a dropped upstream.
            exchange.finish("dropped")
        else:
            completing = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            exchange.finish("completed")
        nursery.cancel_scope.cancel()


def _chunks_to_send(plan: Plan, faults: Faults) -> tuple[tuple[Chunk, ...], bool]:
    """The chunks to send and whether to drop the connection after them instead of ending the body.

    A stream is cut after `disconnect_after` events; a non-streamed body after its first half, so that the JSON
    is cut in the middle.
    """
    if faults.disconnect_after is None:
        return plan.chunks, False
    if not plan.streamed:
        body = b"".join(chunk.data for chunk in plan.chunks)
        return (Chunk(data=body[: len(body) // 2]),), True
    kept: list[Chunk] = []
    events = 0
    for chunk in plan.chunks:
        if not chunk.is_comment:
            if events == faults.disconnect_after:
                break
            events += 1
        kept.append(chunk)
    return tuple(kept), True


@asynccontextmanager
async def serve_fake(app: ASGIFramework) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) for the duration of the block; yields the base URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = 0.5
    config.accesslog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn.trio.serve, app, config, shutdown_trigger=shutdown.wait, mode="asgi")
        )
        try:
            yield binds[0]
        finally:
            shutdown.set()
