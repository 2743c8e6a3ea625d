"""Upstream response bodies to Anthropic stream events: bytes in, events out, one class per wire format.

Each parser takes the raw body as it arrives (``feed``) and says at the end (``close``) whether the stream was
complete.  An upstream that stops without its terminator (``message_stop``, ``data: [DONE]``, ``done: true``)
was cut off, whatever the transport said; that is an :class:`UpstreamStreamError`, as is an error the upstream
reports in-band.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, cast

import attrs
import orjson

from lynkr.wire import ollama, openai
from lynkr.wire.anthropic import UpstreamStreamError, message_to_events
from lynkr.wire.sse import NDJSONDecoder, SSEDataReader
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
    before a possible error event of lynkr's.  None instead of bytes (a stream with CR line endings) means the
    events must be re-encoded.
    """

    def __init__(self) -> None:
        self._reader = SSEDataReader()
        self._stopped = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self.feed_verbatim(data)[0]

    def feed_verbatim(self, data: bytes) -> tuple[list[StreamEvent], bytes | None]:
        """The events completed by ``data`` and their bytes as the upstream sent them (None: re-encode them)."""
        payloads, complete = self._reader.feed(data)
        out: list[StreamEvent] = []
        for payload in payloads:
            self._accept(payload, out)
        return out, complete

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for payload in self._reader.close():
            self._accept(payload, out)
        if not self._stopped:
            raise UpstreamStreamError("the upstream stream ended before message_stop")
        return out

    def whole(self, body: bytes) -> list[StreamEvent]:
        message: Any = _json_object(body)
        return message_to_events(message)

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


class OpenAIStream:
    """An OpenAI chat-completions SSE body, converted chunk by chunk."""

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self._reader = SSEDataReader()
        self._converter = openai.StreamConverter(message_id=message_id, model=model, input_tokens=input_tokens)
        self._message_id = message_id
        self._model = model
        self._done = False

    def whole(self, body: bytes) -> list[StreamEvent]:
        return message_to_events(
            openai.convert_response(_json_object(body), message_id=self._message_id, model=self._model)
        )

    def feed(self, data: bytes) -> list[StreamEvent]:
        return self._convert(self._reader.feed(data)[0])

    def close(self) -> list[StreamEvent]:
        out = self._convert(self._reader.close())
        if not self._done:
            raise UpstreamStreamError("the upstream stream ended before data: [DONE]")
        return out + self._converter.finish()

    def _convert(self, payloads: list[bytes | str]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for payload in payloads:
            if payload == b"[DONE]" or payload == "[DONE]":
                self._done = True
                continue
            try:
                chunk = orjson.loads(payload)
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


@attrs.frozen(kw_only=True)
class Conversion:
    """Everything besides the body that decides how an upstream's answer becomes Anthropic events.

    The live path builds its parser from one of these, and the log keeps it beside the upstream's raw bytes
    (``upstream.responded``), so ``lynkr replay --check`` can run the very same conversion again later.
    """

    wire: str  # "anthropic", "openai" or "ollama"
    message_id: str  # the id lynkr gives a converted message (an Anthropic upstream names its own)
    model: str  # the upstream model, as converted messages name it
    input_tokens: int  # lynkr's estimate, for upstreams that report no usage

    def parser(self) -> StreamParser:
        if self.wire == "anthropic":
            return AnthropicStream()
        if self.wire == "openai":
            return OpenAIStream(message_id=self.message_id, model=self.model, input_tokens=self.input_tokens)
        if self.wire == "ollama":
            return OllamaStream(message_id=self.message_id, model=self.model, input_tokens=self.input_tokens)
        raise ValueError(f"no converter for the wire format {self.wire!r}")


def convert_body(conversion: Conversion, reads: Iterable[bytes], *, streamed: bool) -> list[StreamEvent]:
    """A whole recorded answer as Anthropic events: each read fed in turn and the stream closed, as it arrived.

    ``streamed`` False is one JSON body (the reads joined).  Raises :class:`UpstreamStreamError` as the live
    path would have.
    """
    parser = conversion.parser()
    if not streamed:
        return parser.whole(b"".join(reads))
    events: list[StreamEvent] = []
    for data in reads:
        events.extend(parser.feed(data))
    events.extend(parser.close())
    return events
