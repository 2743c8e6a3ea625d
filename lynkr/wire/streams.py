"""Upstream response bodies to Anthropic stream events: bytes in, events out, one class per wire format.

Each parser takes the raw body as it arrives (``feed``) and says at the end (``close``) whether the stream was
complete.  An upstream that stops without its terminator (``message_stop``, ``data: [DONE]``, ``done: true``)
was cut off, whatever the transport said; that is an :class:`UpstreamStreamError`, as is an error the upstream
reports in-band.
"""

from __future__ import annotations

from typing import Any, Protocol

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
    """An Anthropic-native SSE body, passed through event by event."""

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._stopped = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self._convert(self._decoder.feed(data))

    def close(self) -> list[StreamEvent]:
        out = self._convert(self._decoder.close())
        if not self._stopped:
            raise UpstreamStreamError("the upstream stream ended before message_stop")
        return out

    def whole(self, body: bytes) -> list[StreamEvent]:
        message: Any = _json_object(body)
        return message_to_events(message)

    def _convert(self, messages: list[ServerSentEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in messages:
            if not sse.data:
                continue
            try:
                event = orjson.loads(sse.data)
            except orjson.JSONDecodeError:
                continue  # the API may add lines that clients must tolerate
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
            out.append(event)
        return out


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
