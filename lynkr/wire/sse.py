"""Server-sent events and newline-delimited JSON, sans-IO.

``encode_event`` frames one Anthropic stream event.  ``SSEDecoder`` and ``NDJSONDecoder`` take bytes exactly
as they come off a socket (chunk boundaries anywhere, even inside a UTF-8 sequence or between ``\\r`` and
``\\n``) and return complete items.  Lines are split on bytes first and decoded only when whole, so a
multi-byte character split across two reads is never mangled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from lynkr.errors import UpstreamError
from lynkr.wire.types import StreamEvent

def encode_event(event: Mapping[str, Any]) -> bytes:
    """``event: <type>\\ndata: <compact json>\\n\\n`` (UTF-8, no ASCII escaping).

    JSON never contains a raw newline (it is escaped inside strings), so one ``data:`` line always holds
    the whole event.  The ``event:`` line matters: the Claude Code CLI falls back to a second, non-streaming
    request when it is missing.
    """
    return b"".join(
        (b"event: ", str(event["type"]).encode(), b"\ndata: ", orjson.dumps(event), b"\n\n")
    )


def encode_events(events: list[StreamEvent]) -> bytes:
    """Several events framed as by :func:`encode_event`, in one buffer (one client write per upstream read)."""
    parts: list[bytes] = []
    append = parts.append
    dumps = orjson.dumps
    for event in events:
        append(b"event: " + event["type"].encode() + b"\ndata: ")
        append(dumps(event))
        append(b"\n\n")
    return b"".join(parts)


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched event.  ``event`` is None when the stream sent no ``event:`` line (OpenAI style)."""

    event: str | None
    data: str
    id: str | None = None


class StreamDecodeError(UpstreamError):
    """The upstream sent bytes that are not the stream format it promised."""


def _split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (terminators removed) and the unterminated rest.

    A trailing ``\\r`` stays in the rest: the ``\\n`` of a CRLF may be in the next read.
    """
    lines = buffer.splitlines(keepends=True)
    rest = b""
    if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
        rest = lines.pop()
    return [line.rstrip(b"\r\n") for line in lines], rest


class SSEDecoder:
    """Incremental SSE parser following the WHATWG event-stream rules.

    Comment lines (``: OPENROUTER PROCESSING``) and ``retry:`` are skipped; an event is dispatched on a blank
    line when it has data.  Unlike a browser, ``close()`` dispatches a final event that lacks its blank line:
    some servers end with ``data: [DONE]`` and no terminator.
    """

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._first_line = True

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        if not data:
            return []
        if self._rest:
            data = self._rest + data
        elif b"\n" not in data and b"\r" not in data:
            self._rest = data
            return []
        lines, self._rest = _split_lines(data)
        events: list[ServerSentEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: process an unterminated last line and dispatch a pending event."""
        events: list[ServerSentEvent] = []
        if self._rest:
            rest, self._rest = self._rest, b""
            self._line(rest.rstrip(b"\r\n"), events)
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[ServerSentEvent]) -> None:
        line = raw.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            if self._data:
                events.append(ServerSentEvent(event=self._event, data="\n".join(self._data), id=self._id))
            self._data = []
            self._event = None
            return
        if line[0] == ":":
            return
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value or None
        elif field == "id" and "\0" not in value:
            self._id = value


class SSEDataReader:
    """Incremental SSE reader for the hot path: each complete event's data, and the bytes those events came in.

    Events are found by a byte search for their blank line, and each ``data:`` payload is returned as bytes for
    orjson to parse directly: no per-line decoding, no record per event.  The bytes returned with them end at
    the last complete event, so they can be forwarded to a client that never sees half an event.  A stream whose
    lines end in CR or CRLF (the SSE rules allow both) is handed to :class:`SSEDecoder` from then on; its
    payloads are then ``str`` and no bytes are returned for forwarding (None).
    """

    def __init__(self) -> None:
        self._rest = b""
        self._first = True
        self._decoder: SSEDecoder | None = None

    def feed(self, data: bytes) -> tuple[list[bytes | str], bytes | None]:
        if self._decoder is not None:
            return [event.data for event in self._decoder.feed(data)], None
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
            return [event.data for event in self._decoder.feed(buffer)], None
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._rest = buffer
            return [], b""
        end += 2
        complete, self._rest = buffer[:end], buffer[end:]
        payloads: list[bytes | str] = []
        for block in complete.split(b"\n\n"):
            payload = _data_of(block)
            if payload:
                payloads.append(payload)
        return payloads, complete

    def close(self) -> list[bytes | str]:
        """End of stream: the data of a last event that lacks its blank line."""
        if self._decoder is not None:
            return [event.data for event in self._decoder.close()]
        rest, self._rest = self._rest, b""
        payload = _data_of(rest.rstrip(b"\n"))
        return [payload] if payload else []


_UTF8_BOM = b"\xef\xbb\xbf"


def _data_of(block: bytes) -> bytes | None:
    """The data of one event (its ``data:`` lines joined), or None when it has none (comments, ``retry:``)."""
    if block.startswith(b"event: ") or block.startswith(b"data: "):
        # The usual shapes, ``event: <type>\ndata: <json>`` and ``data: <json>``: one search, no line split.
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


class NDJSONDecoder:
    """Incremental newline-delimited JSON parser (Ollama's native stream).  Blank lines are skipped."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[Any]:
        if self._rest:
            data = self._rest + data
        lines = data.split(b"\n")
        self._rest = lines.pop()
        return [_parse_json_line(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """End of stream: parse a last line that had no newline."""
        rest, self._rest = self._rest, b""
        return [_parse_json_line(rest)] if rest.strip() else []


def _parse_json_line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except ValueError as error:
        excerpt = line[:200].decode("utf-8", "replace")
        raise StreamDecodeError(f"upstream sent a line that is not JSON ({error}): {excerpt!r}") from None
