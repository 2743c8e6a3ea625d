"""Upstream response bodies to Anthropic stream events: bytes in, events out, one class per wire format.

Each parser takes the raw body as it arrives (``feed``) and says at the end (``close``) whether the stream was
complete.  An upstream that stops without its terminator (``message_stop``, ``data: [DONE]``, ``done: true``)
was cut off, whatever the transport said; that is an :class:`UpstreamStreamError`, as is an error the upstream
reports in-band.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import orjson

from lynkr.wire import ollama, openai
from lynkr.wire.anthropic import UpstreamStreamError, message_to_events
from lynkr.wire.sse import NDJSONDecoder, ServerSentEvent, SSEDecoder
from lynkr.wire.types import StreamEvent

_ANTHROPIC_ERROR_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500, "timeout_error": 504}


class StreamParser(Protocol):
    def feed(self, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...

    def whole(self, body: bytes) -> list[StreamEvent]:
        """The events for a complete JSON answer, from an upstream that ignored ``stream: true``."""
        ...


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamStreamError(f"the upstream answered with JSON that does not parse: {body[:200]!r}") from None
    if not isinstance(parsed, dict):
        raise UpstreamStreamError("the upstream answered with JSON that is not an object")
    return parsed


class AnthropicStream:
    """An Anthropic-native SSE body, passed through.

    ``feed_verbatim`` returns, beside the parsed events, the upstream's own bytes of exactly those events, cut at
    the last complete event, so a streaming client can be sent them unparsed and never sees half an event
    before a possible error event of lynkr's.  Events are found by a byte search for their blank line and each
    ``data:`` payload goes to orjson as bytes: no per-line decoding.  A stream whose lines end in CR or CRLF
    (the SSE rules allow both) goes to the general :class:`SSEDecoder` instead, and from then on its events are
    re-encoded by the caller rather than forwarded verbatim.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._first = True
        self._stopped = False
        self._decoder: SSEDecoder | None = None

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self.feed_verbatim(data)[0]

    def feed_verbatim(self, data: bytes) -> tuple[list[StreamEvent], bytes | None]:
        """The events completed by ``data`` and their bytes as the upstream sent them (None: re-encode them)."""
        if self._decoder is not None:
            return self._convert(self._decoder.feed(data)), None
        buffer = self._rest + data if self._rest else data
        if self._first and buffer:
            if len(buffer) < len(_UTF8_BOM) and _UTF8_BOM.startswith(buffer):
                self._rest = buffer
                return [], b""
            self._first = False
            buffer = buffer.removeprefix(_UTF8_BOM)
        if b"\r" in buffer:
            self._decoder = SSEDecoder()
            self._rest = b""
            return self._convert(self._decoder.feed(buffer)), None
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._rest = buffer
            return [], b""
        end += 2
        complete, self._rest = buffer[:end], buffer[end:]
        out: list[StreamEvent] = []
        for block in complete.split(b"\n\n"):
            payload = _data_of(block)
            if payload is not None:
                self._accept(payload, out)
        return out, complete

    def close(self) -> list[StreamEvent]:
        if self._decoder is not None:
            out = self._convert(self._decoder.close())
        else:
            out = []
            rest, self._rest = self._rest, b""
            payload = _data_of(rest.rstrip(b"\n"))
            if payload is not None:
                self._accept(payload, out)
        if not self._stopped:
            raise UpstreamStreamError("the upstream stream ended before message_stop")
        return out

    def whole(self, body: bytes) -> list[StreamEvent]:
        message: Any = _json_object(body)
        return message_to_events(message)

    def _convert(self, messages: list[ServerSentEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in messages:
            if sse.data:
                self._accept(sse.data, out)
        return out

    def _accept(self, payload: str | bytes, out: list[StreamEvent]) -> None:
        try:
            event: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return  # the API may add lines that clients must tolerate
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") or {}
            error_type = error.get("type")
            raise UpstreamStreamError(
                str(error.get("message", "upstream error")),
                status=_ANTHROPIC_ERROR_STATUS.get(str(error_type), 502),
                error_type=error_type,
            )
        if kind == "message_stop" or kind == "message_delta":
            self._stopped = True
        out.append(cast(StreamEvent, event))


_UTF8_BOM = b"\xef\xbb\xbf"


def _data_of(block: bytes) -> bytes | None:
    """The data of one SSE event (its ``data:`` lines joined), or None when it has none (comments, ``retry:``)."""
    if block.startswith(b"event: ") or block.startswith(b"data: "):
        # The usual shape, ``event: <type>\ndata: <json>``: one search instead of splitting lines.
        at = block.find(b"data: ")
        if at == 0 or (at > 0 and block[at - 1 : at] == b"\n"):
            line_end = block.find(b"\n", at)
            if line_end < 0:
                return block[at + 6 :]
            if block.find(b"\ndata:", line_end) < 0:
                return block[at + 6 : line_end]
    parts = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value[:1] == b" " else value)
        elif line == b"data":
            parts.append(b"")
    return b"\n".join(parts) if parts else None


class OpenAIStream:
    """An OpenAI chat-completions SSE body, converted chunk by chunk."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self._decoder = SSEDecoder()
        self._converter = openai.StreamConverter(message_id=message_id, model=model, input_tokens=input_tokens)
        self._message_id = message_id
        self._model = model
        self._done = False

    def whole(self, body: bytes) -> list[StreamEvent]:
        return message_to_events(
            openai.convert_response(_json_object(body), message_id=self._message_id, model=self._model)
        )

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self._convert(self._decoder.feed(data))

    def close(self) -> list[StreamEvent]:
        out = self._convert(self._decoder.close())
        if not self._done:
            raise UpstreamStreamError("the upstream stream ended before data: [DONE]")
        return out + self._converter.finish()

    def _convert(self, messages: list[ServerSentEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in messages:
            if not sse.data:
                continue
            if sse.data == "[DONE]":
                self._done = True
                continue
            try:
                chunk = orjson.loads(sse.data)
            except orjson.JSONDecodeError:
                continue
            out.extend(self._converter.feed(chunk))
        return out


class OllamaStream:
    """An Ollama /api/chat NDJSON body, converted line by line."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self._decoder = NDJSONDecoder()
        self._converter = ollama.StreamConverter(message_id=message_id, model=model, input_tokens=input_tokens)
        self._message_id = message_id
        self._model = model
        self._done = False

    def whole(self, body: bytes) -> list[StreamEvent]:
        return message_to_events(
            ollama.convert_response(_json_object(body), message_id=self._message_id, model=self._model)
        )

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self._convert(self._decoder.feed(data))

    def close(self) -> list[StreamEvent]:
        out = self._convert(self._decoder.close())
        if not self._done:
            raise UpstreamStreamError("the Ollama stream ended before done: true")
        return out + self._converter.finish()

    def _convert(self, lines: list[Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for line in lines:
            if line.get("error"):
                raise UpstreamStreamError(str(line["error"]), status=502)
            out.extend(self._converter.feed(line))
            if line.get("done"):
                self._done = True
        return out
