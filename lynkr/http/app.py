"""The ASGI app: routes, validation, SSE streaming and Anthropic-shaped errors.

Routes are matched on the path's tail, so any prefix a user puts in ``ANTHROPIC_BASE_URL`` works, and the
CLI's ``?beta=true`` query is ignored.  A request's work is handed to the session actor as a :class:`Turn`
carrying a reply channel and a cancel scope; a disconnecting client cancels that scope.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import orjson
import trio

from lynkr import __version__
from lynkr.actors.messages import CountTokens, ErrorReply, Frames, StreamItem, Turn, Whole
from lynkr.actors.runtime import ActorGone, ActorStatistics, Mailbox, ReplyTo, ask
from lynkr.errors import AuthenticationFailed, InvalidRequest, LynkrError, NotFound
from lynkr.http.asgi import (
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    error_body,
    header,
    json_bytes,
    read_body,
    send_response,
)
from lynkr.http.guard import RequestGuard
from lynkr.http.metrics import RequestMetrics, Sample
from lynkr.wire.anthropic import (
    parse_count_tokens_request,
    parse_messages_request,
    session_id_from_metadata,
)
from lynkr.wire.sse import encode_event

log = logging.getLogger("lynkr.http")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
REPLY_BUFFER = 128  # frames the pool may queue before it waits for the edge's write

GaugeFamily = tuple[str, str, list[Sample]]


@attrs.frozen(kw_only=True)
class ModelEntry:
    id: str
    display_name: str


@attrs.frozen(kw_only=True)
class EdgeDependencies:
    sessions: Mailbox[Turn]
    providers: Mailbox[Any]
    models: tuple[ModelEntry, ...]
    api_key: str | None
    max_body_bytes: int
    actor_statistics: Callable[[], list[ActorStatistics]]
    extra_gauges: Callable[[], list[GaugeFamily]]
    provider_states: Callable[[], dict[str, dict[str, Any]]]
    ready: Callable[[], bool]
    guard: RequestGuard
    # lynkr's own tools over MCP (streamable HTTP) at /mcp, and the bridged servers' states; None: not served.
    mcp: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
    mcp_servers: Callable[[], Any] | None = None


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


class App:
    def __init__(self, deps: EdgeDependencies) -> None:
        self._deps = deps
        self.metrics = RequestMetrics()
        self._started = time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        method: str = scope["method"]
        path: str = scope["path"]
        route, handler = self._route(method, path)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"request-id", request_id.encode())]
            await send(message)

        try:
            await self._deps.guard.admit(scope, route, request_id)
            if method == "HEAD":
                await send_with_id({"type": "http.response.start", "status": 200, "headers": []})
                await send_with_id({"type": "http.response.body", "body": b""})
            elif handler is None:
                raise NotFound(f"{method} {path} is not a route lynkr serves")
            else:
                self._authenticate(scope, route)
                await handler(scope, receive, send_with_id, request_id)
        except LynkrError as error:
            await send_response(send_with_id, error.status, error_body(error, request_id))
        except ActorGone:
            await send_response(send_with_id, 500, error_body(_lost(), request_id))
        except ClientGone:
            status = 499
        finally:
            self.metrics.observe(route=route, method=method, status=status, seconds=time.perf_counter() - started)

    def _route(self, method: str, path: str) -> tuple[str, Handler | None]:
        tail = path.rstrip("/")
        if tail.endswith("/mcp") and method in ("POST", "GET", "DELETE") and self._deps.mcp is not None:
            return "mcp", self._mcp
        if method == "POST":
            if tail.endswith("/v1/messages"):
                return "messages", self._messages
            if tail.endswith("/v1/messages/count_tokens"):
                return "count_tokens", self._count_tokens
            if tail.endswith("/api/event_logging/batch"):
                return "event_logging", self._event_logging
        elif method == "GET":
            if tail == "/health":
                return "health", self._health
            if tail == "/metrics":
                return "metrics", self._metrics
            if tail.endswith("/v1/models"):
                return "models", self._models
            if tail.endswith("/lynkr/mcp/servers") and self._deps.mcp_servers is not None:
                return "mcp_servers", self._mcp_servers
            if "/v1/models/" in tail:
                return "model", self._model
        elif method == "HEAD":
            return "head", None
        return "unknown", None

    def _authenticate(self, scope: Scope, route: str) -> None:
        expected = self._deps.api_key
        if expected is None or route in ("health", "metrics"):
            return
        presented = header(scope, b"x-api-key")
        if presented is None:
            bearer = header(scope, b"authorization") or ""
            presented = bearer[7:] if bearer[:7].lower() == "bearer " else None
        if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise AuthenticationFailed("invalid x-api-key: set ANTHROPIC_API_KEY to the key in LYNKR_API_KEY")

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        declared = header(scope, b"content-length")
        try:
            size = int(declared) if declared is not None else None
        except ValueError:
            raise InvalidRequest("content-length is not a number") from None
        return await read_body(receive, limit=self._deps.max_body_bytes, declared=size)

    async def _messages(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        body = await self._body(scope, receive)
        request = parse_messages_request(body)
        session_id = (
            header(scope, b"x-claude-code-session-id")
            or session_id_from_metadata(request)
            or _fingerprint(request)
        )
        reply_send, replies = trio.open_memory_channel[StreamItem](REPLY_BUFFER)
        cancel = trio.CancelScope()
        turn = Turn(
            request_id=request_id,
            session_id=session_id,
            request=request,  # type: ignore[arg-type]
            body=body,
            headers=_headers(scope),
            reply=reply_send,
            cancel=cancel,
            received_ns=time.time_ns(),
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_disconnect, receive, cancel)
                async with replies:
                    await self._deps.sessions.send(turn)
                    if request.get("stream"):
                        await _stream_reply(replies, send, request_id)
                    else:
                        await _whole_reply(replies, send, request_id)
                nursery.cancel_scope.cancel()
        finally:
            cancel.cancel()

    async def _mcp(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        assert self._deps.mcp is not None
        await self._deps.mcp(scope, receive, send)

    async def _mcp_servers(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        assert self._deps.mcp_servers is not None
        await send_response(send, 200, json_bytes(self._deps.mcp_servers()))

    async def _count_tokens(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        request = parse_count_tokens_request(await self._body(scope, receive))

        def count(reply_to: ReplyTo[int]) -> CountTokens:
            return CountTokens(request_id=request_id, request=dict(request), headers=_headers(scope), reply_to=reply_to)

        tokens = await ask(self._deps.providers, count)
        await send_response(send, 200, json_bytes({"input_tokens": tokens}))

    async def _event_logging(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        await self._body(scope, receive)
        await send_response(send, 200, b"{}")

    async def _models(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        data = [_model_json(model) for model in self._deps.models]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        await send_response(send, 200, json_bytes(page))

    async def _model(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        wanted = scope["path"].rstrip("/").rsplit("/v1/models/", 1)[1]
        for model in self._deps.models:
            if model.id == wanted:
                await send_response(send, 200, json_bytes(_model_json(model)))
                return
        raise NotFound(f"model {wanted!r} is not one lynkr routes; GET /v1/models lists them")

    async def _health(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        actors = self._deps.actor_statistics()
        ready = self._deps.ready() and all(actor.running for actor in actors)
        body = {
            "status": "ok" if ready else "starting",
            "ready": ready,
            "version": __version__,
            "uptime_s": round(time.time() - self._started, 3),
            "actors": {
                actor.name: {
                    "running": actor.running,
                    "restarts": actor.restarts,
                    "mailbox": attrs.asdict(actor.mailbox) if actor.mailbox is not None else None,
                }
                for actor in actors
            },
            "providers": self._deps.provider_states(),
        }
        await send_response(send, 200 if ready else 503, json_bytes(body))

    async def _metrics(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        actors = self._deps.actor_statistics()
        gauges: list[GaugeFamily] = [
            ("lynkr_actor_up", "gauge Whether the actor is running.",
             [Sample(name="lynkr_actor_up", value=float(a.running), labels=(("actor", a.name),)) for a in actors]),
            ("lynkr_actor_restarts_total", "counter Restarts after a crash.",
             [Sample(name="lynkr_actor_restarts_total", value=a.restarts, labels=(("actor", a.name),)) for a in actors]),
            ("lynkr_actor_mailbox_depth", "gauge Messages waiting in the actor's mailbox.",
             [Sample(name="lynkr_actor_mailbox_depth", value=a.mailbox.depth, labels=(("actor", a.name),))
              for a in actors if a.mailbox is not None]),
            ("lynkr_actor_mailbox_peak_depth", "gauge Most messages ever waiting in the actor's mailbox.",
             [Sample(name="lynkr_actor_mailbox_peak_depth", value=a.mailbox.peak_depth, labels=(("actor", a.name),))
              for a in actors if a.mailbox is not None]),
            ("lynkr_actor_messages_total", "counter Messages the actor has taken from its mailbox.",
             [Sample(name="lynkr_actor_messages_total", value=a.mailbox.received, labels=(("actor", a.name),))
              for a in actors if a.mailbox is not None]),
            *self._deps.extra_gauges(),
        ]
        text = self.metrics.render(gauges)
        await send_response(send, 200, text.encode(), content_type=b"text/plain; version=0.0.4; charset=utf-8")


Handler = Callable[[Scope, Receive, Send, str], Any]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _cancel_on_disconnect(receive: Receive, cancel: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel.cancel()
            return


async def _stream_reply(replies: trio.MemoryReceiveChannel[StreamItem], send: Send, request_id: str) -> None:
    """Write frames as they arrive, everything already queued in one write; an error before the first frame
    becomes a plain HTTP error."""
    started = finished = False
    async for first in replies:
        item: StreamItem | None = first
        batch: list[bytes] = []
        while isinstance(item, Frames):
            batch.append(item.data)
            finished = item.last
            try:
                item = replies.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                item = None
        if batch:
            body = batch[0] if len(batch) == 1 else b"".join(batch)
            if not started and finished:
                # The whole stream at once (a prompt-cache hit): sized rather than chunked, so that it goes out
                # in two writes, not three, and the client reads no separate end-of-body chunk.
                sized = [*SSE_HEADERS, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": sized})
                await send({"type": "http.response.body", "body": body})
                return
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                started = True
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if item is None:
            continue
        if isinstance(item, ErrorReply):
            if not started:
                await send_response(send, item.status, item.body, headers=item.headers)
                return
            await send({"type": "http.response.body", "body": _sse_error(item), "more_body": True})
            finished = True
        break
    if not started:
        await send_response(send, 500, error_body(_lost(), request_id))
        return
    if not finished:
        await send({"type": "http.response.body", "body": encode_event(_lost().body(request_id)), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _whole_reply(replies: trio.MemoryReceiveChannel[StreamItem], send: Send, request_id: str) -> None:
    async for item in replies:
        if isinstance(item, Whole):
            await send_response(send, 200, json_bytes(item.message))
            return
        if isinstance(item, ErrorReply):
            await send_response(send, item.status, item.body, headers=item.headers)
            return
        break
    await send_response(send, 500, error_body(_lost(), request_id))


def _lost() -> LynkrError:
    """The turn's reply channel closed without an answer: the actor handling it stopped."""
    return LynkrError("lynkr lost this request: an internal actor stopped before answering; retry the request")


def _sse_error(item: ErrorReply) -> bytes:
    try:
        body = orjson.loads(item.body)
    except orjson.JSONDecodeError:
        body = {"type": "error", "error": {"type": "api_error", "message": item.body.decode("utf-8", "replace")}}
    return encode_event(body)


def _headers(scope: Scope) -> Mapping[str, str]:
    """The client's headers; adapters pick what an upstream needs, the scrubber drops secrets before logging."""
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}


def _fingerprint(request: Mapping[str, Any]) -> str:
    """A session id stable across the turns of one conversation: its first message never changes."""
    messages = request.get("messages") or [{}]
    return "fp-" + hashlib.sha256(orjson.dumps(messages[0], option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def _model_json(model: ModelEntry) -> dict[str, Any]:
    return {"type": "model", "id": model.id, "display_name": model.display_name, "created_at": "2025-01-01T00:00:00Z"}
