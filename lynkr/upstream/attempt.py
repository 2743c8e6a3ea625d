"""One attempt against one upstream: send the request, turn its answer into Anthropic events.

The caller says whether the upstream is asked to stream.  Either way the answer comes out as :class:`Read` records
of Anthropic events (a whole JSON answer as the events it would have streamed), so there is one code path
after this module.  An Anthropic-native upstream's SSE bytes come along verbatim beside their parsed events.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import orjson
import trio

from lynkr.errors import error_type_for_status
from lynkr.providers.base import Adapter, tool_id_scheme_of
from lynkr.wire import ollama, openai
from lynkr.wire.anthropic import is_thinking_request, without_unsigned_thinking
from lynkr.wire.openai import UpstreamStreamError
from lynkr.wire.streams import AnthropicStream, Conversion, StreamParser
from lynkr.wire.tokens import estimate_tokens
from lynkr.wire.types import StreamEvent

ERROR_BODY_LIMIT = 1 << 20
WHOLE_ANSWER_LIMIT = 64 << 20


class UpstreamStatus(Exception):
    """The upstream answered with an error status before streaming anything."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str], *, native: bool) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body
        self.headers = headers
        self.native = native  # the body is already an Anthropic error and passes through unmodified

    def anthropic_body(self, request_id: str) -> bytes:
        if self.native and _looks_like_anthropic_error(self.body):
            return self.body
        return orjson.dumps(
            {
                "type": "error",
                "error": {"type": error_type_for_status(self.status), "message": _upstream_message(self)},
                "request_id": request_id,
            }
        )


@attrs.frozen
class Read:
    """What one upstream read produced: its Anthropic events and, when the upstream speaks Anthropic SSE, the
    upstream's own bytes of exactly those events, which a streaming client can be sent unchanged."""

    events: list[StreamEvent]
    verbatim: bytes | None = None


@attrs.define
class Capture:
    """The upstream's answer as it arrived, kept for the log so that ``lynkr replay --check`` can convert it again.

    The reads are only referenced here (one list append each); they are joined and compressed once, after the
    answer, off the hot path (the recorder's worker thread packs the blob).
    """

    conversion: Conversion | None = None  # set once the request is built
    streamed: bool = True  # False: one JSON body
    reads: list[bytes] = attrs.field(factory=list)
    sent: list[bytes] = attrs.field(factory=list)  # the SSE bytes a streaming client was sent (the pool adds them)


class StreamBroken(Exception):
    """The upstream stream failed after it started: cut off, stalled, or an error event mid-stream."""

    def __init__(self, message: str, *, status: int = 502, error_type: str = "api_error") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type

    def anthropic_body(self, request_id: str) -> bytes:
        return orjson.dumps(
            {"type": "error", "error": {"type": self.error_type, "message": str(self)}, "request_id": request_id}
        )


@asynccontextmanager
async def open_attempt(
    client: httpx.AsyncClient,
    adapter: Adapter,
    request: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    small: bool,
    stream: bool,
    first_byte_timeout_s: float,
    capture: Capture | None = None,
) -> AsyncIterator[AsyncIterator[Read]]:
    """Send ``request`` to ``adapter``'s upstream and yield an iterator of its answer's events, read by read.

    ``stream`` asks the upstream to stream.  Without it the first byte comes only once the whole answer exists,
    so the caller asks for a JSON body only where ``first_byte_timeout_s`` cannot trip first.

    Raises :class:`UpstreamStatus` for an error status, ``httpx`` transport errors for connection
    trouble, ``trio.TooSlowError`` when no response arrives within ``first_byte_timeout_s``.  ``capture``, when
    given, receives the answer's raw bytes read by read and what converting them took.
    """
    model = adapter.upstream_model(str(request["model"]), small=small)
    max_tokens = int(request["max_tokens"])
    if adapter.max_tokens is not None:
        max_tokens = min(max_tokens, adapter.max_tokens)
    body, conversion = _prepare(adapter, request, model=model, max_tokens=max_tokens, stream=stream)
    source = conversion.parser()
    if capture is not None:
        capture.conversion = conversion
    upstream_request = client.build_request(
        "POST",
        adapter.messages_url(stream=stream),
        content=orjson.dumps(body),
        headers=adapter.headers(headers),
    )
    with trio.fail_after(first_byte_timeout_s):
        response = await client.send(upstream_request, stream=True)
    try:
        if response.status_code >= 400:
            error_body = await _read_limited(response)
            raise UpstreamStatus(
                response.status_code, error_body, dict(response.headers), native=adapter.wire == "anthropic"
            )
        if response.headers.get("content-type", "").startswith("application/json"):
            # Asked for, or from an upstream that ignores `stream: true`: the whole message at once.
            whole = await _read_limited(response, WHOLE_ANSWER_LIMIT)
            if capture is not None:
                capture.streamed = False
                capture.reads.append(whole)
            yield _whole(whole, source)
            return
        chunks = response.aiter_raw()
        events = _events(chunks, source, None if capture is None else capture.reads)
        try:
            yield events
        finally:
            await events.aclose()
            await _abandon(chunks)
    finally:
        await response.aclose()


async def _abandon(chunks: AsyncIterator[bytes]) -> None:
    """Finish httpx's stack of async generators by raising inside the innermost one.

    ``aclose()`` on the outermost generator leaves the ones it iterates suspended, and trio reports each of them
    as a ResourceWarning when it is garbage collected; a cancellation at the socket read unwinds them all.
    """
    with trio.CancelScope() as scope:
        scope.cancel()
        async for _ in chunks:
            pass


async def _events(
    chunks: AsyncIterator[bytes], parser: StreamParser, kept: list[bytes] | None
) -> AsyncGenerator[Read, None]:
    """The events of each piece httpx hands over (one HTTP chunk), together and never held back; the pool
    batches the pieces of one socket read into one client write.  ``kept`` collects the pieces for the log."""
    keep = kept.append if kept is not None else None
    try:
        if isinstance(parser, AnthropicStream):
            # Bytes that complete no event (comment lines) go along with the next event's: a read that only
            # carries a comment neither counts as the answer's start nor costs a client write.
            held = b""
            async for data in chunks:
                if keep is not None:
                    keep(data)
                events, verbatim = parser.feed_verbatim(data)
                if not events:
                    held += verbatim or b""
                    continue
                if held and verbatim is not None:
                    verbatim, held = held + verbatim, b""
                yield Read(events, verbatim)
        else:
            async for data in chunks:
                if keep is not None:
                    keep(data)
                events = parser.feed(data)
                if events:
                    yield Read(events)
        tail = parser.close()
    except httpx.ReadTimeout:
        raise StreamBroken(
            "the upstream stalled mid-stream (LYNKR_IDLE_TIMEOUT_S)", status=504, error_type="timeout_error"
        ) from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as error:
        raise StreamBroken(f"the upstream connection broke mid-stream: {error}") from None
    except UpstreamStreamError as error:
        raise StreamBroken(
            str(error), status=error.upstream_status or 502, error_type=error.upstream_type or "api_error"
        ) from None
    if tail:
        yield Read(tail)


async def _whole(body: bytes, parser: StreamParser) -> AsyncGenerator[Read, None]:
    try:
        events = parser.whole(body)
    except UpstreamStreamError as error:
        raise StreamBroken(str(error), status=error.upstream_status or 502) from None
    yield Read(events)


def _prepare(
    adapter: Adapter, request: Mapping[str, Any], *, model: str, max_tokens: int, stream: bool
) -> tuple[dict[str, Any], Conversion]:
    if adapter.wire == "anthropic":
        signed_only = without_unsigned_thinking(request)  # type: ignore[arg-type]
        body = {**signed_only, "model": model, "max_tokens": max_tokens, "stream": stream}
        return body, Conversion(wire="anthropic", message_id="", model=model, input_tokens=0)
    conversion = Conversion(
        wire=adapter.wire, message_id="msg_" + os.urandom(12).hex(), model=model, input_tokens=estimate_tokens(request)
    )
    if adapter.wire == "openai":
        body = openai.build_request(
            request,  # type: ignore[arg-type]
            model=model,
            max_tokens=max_tokens,
            stream=stream,
            reasoning_model=adapter.reasoning_model(model),
            tool_ids=tool_id_scheme_of(adapter),
        )
        return body, conversion
    # Ollama refuses `think` for models that cannot think, so it is sent only where the configuration says so.
    think = adapter.reasoning_model(model) and is_thinking_request(request)
    body = ollama.build_request(
        request, model=model, max_tokens=max_tokens, stream=stream, think=think  # type: ignore[arg-type]
    )
    return body, conversion


async def _read_limited(response: httpx.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    chunks: list[bytes] = []
    size = 0
    raw = response.aiter_raw()
    async for chunk in raw:
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            await _abandon(raw)
            break
    return b"".join(chunks)


def _looks_like_anthropic_error(body: bytes) -> bool:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict)


def _upstream_message(error: UpstreamStatus) -> str:
    try:
        parsed = orjson.loads(error.body)
    except orjson.JSONDecodeError:
        text = error.body.decode("utf-8", "replace").strip()[:500]
        return f"upstream returned {error.status}: {text}" if text else f"upstream returned {error.status}"
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if parsed.get("message"):
            return str(parsed["message"])
    return f"upstream returned {error.status}"
