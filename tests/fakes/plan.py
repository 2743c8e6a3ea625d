"""A rendered reply, ready to deliver: status, headers and the body cut into chunks.  Sans-IO helpers shared by
the three wire-format renderers."""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from .script import Chunking, Reply, ToolCall


@attrs.frozen(kw_only=True)
class Chunk:
    data: bytes
    # Comments keep a connection warm but are not events: faults that count events skip them.
    is_comment: bool = False


@attrs.frozen(kw_only=True)
class Plan:
    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[Chunk, ...]
    streamed: bool


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def json_plan(status: int, payload: Any, extra_headers: tuple[tuple[str, str], ...] = ()) -> Plan:
    body = payload if isinstance(payload, bytes) else json_bytes(payload)
    return Plan(
        status=status,
        headers=(("content-type", "application/json"), *extra_headers),
        chunks=(Chunk(data=body),),
        streamed=False,
    )


def stream_plan(
    content_type: str,
    events: list[bytes],
    *,
    reply: Reply,
    error_event: bytes,
    sse: bool,
) -> Plan:
    """Frame a list of events as a stream, applying the reply's in-band error and SSE comments."""
    faults = reply.faults
    if faults.mid_stream_error is not None:
        events = [*events[: faults.mid_stream_error_after], error_event]
    chunks: list[Chunk] = []
    if sse:
        chunks.extend(Chunk(data=sse_comment(line), is_comment=True) for line in reply.chunking.comment_lines)
    between = reply.chunking.comment_between_chunks if sse else None
    for index, event in enumerate(events):
        if index and between is not None:
            chunks.append(Chunk(data=sse_comment(between), is_comment=True))
        chunks.append(Chunk(data=event))
    headers = (("content-type", content_type), ("cache-control", "no-cache"), *reply.extra_headers)
    return Plan(status=200, headers=headers, chunks=tuple(chunks), streamed=True)


def sse_data(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def sse_event(name: str, payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def sse_comment(line: str) -> bytes:
    text = line if line.startswith(":") else f": {line}"
    return f"{text}\n\n".encode()


def text_pieces(text: str, chunking: Chunking) -> list[str]:
    if not text:
        return []
    if chunking.text_fragments is None:
        return re.findall(r"\s*\S+\s*|\s+", text)
    return even_pieces(text, chunking.text_fragments)


def even_pieces(text: str, count: int) -> list[str]:
    """`text` cut into at most `count` non-empty pieces of nearly equal length."""
    if not text:
        return [""]
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def arguments_text(call: ToolCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return json.dumps(dict(call.arguments), separators=(",", ":"))


def arguments_object(call: ToolCall) -> dict[str, Any]:
    """The arguments as an object; a malformed argument string gives {} (what a lenient server would send)."""
    if not isinstance(call.arguments, str):
        return dict(call.arguments)
    try:
        parsed = json.loads(call.arguments)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def call_id(call: ToolCall, prefix: str, index: int) -> str:
    return call.id if call.id is not None else f"{prefix}{index:04d}"
