"""A `Reply` as an Anthropic Messages response: SSE with `event:` lines, or one JSON message."""

from __future__ import annotations

from typing import Any

from .plan import (
    Plan,
    arguments_object,
    arguments_text,
    call_id,
    even_pieces,
    json_plan,
    sse_event,
    stream_plan,
    text_pieces,
)
from .script import Reply

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def render_anthropic(reply: Reply, request: dict[str, Any], *, sequence: int) -> Plan:
    if reply.http_status >= 400:
        headers = (("request-id", f"req_fake{sequence:04d}"), *reply.extra_headers)
        return json_plan(reply.http_status, _error_body(reply, sequence), headers)
    message_id = f"msg_fake{sequence:04d}"
    model = str(request.get("model", "fake-model"))
    if request.get("stream") is True:
        error = sse_event(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": reply.faults.mid_stream_error}},
        )
        events = _stream_events(reply, message_id, model)
        return stream_plan("text/event-stream", events, reply=reply, error_event=error, sse=True)
    return json_plan(200, _message(reply, message_id, model), reply.extra_headers)


def _stop_reason(reply: Reply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_use" if reply.calls else "end_turn"


def _input_usage(reply: Reply) -> dict[str, int]:
    return {
        "input_tokens": reply.usage.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": reply.usage.cached_tokens,
    }


def _message(reply: Reply, message_id: str, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": reply.reasoning_signature or ""})
    if reply.content:
        content.append({"type": "text", "text": reply.content})
    for index, call in enumerate(reply.calls):
        content.append(
            {
                "type": "tool_use",
                "id": call_id(call, "toolu_fake", index),
                "name": call.name,
                "input": arguments_object(call),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {**_input_usage(reply), "output_tokens": reply.usage.output_tokens},
    }


def _stream_events(reply: Reply, message_id: str, model: str) -> list[bytes]:
    chunking = reply.chunking
    events = [
        sse_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**_input_usage(reply), "output_tokens": 1},
                },
            },
        ),
        sse_event("ping", {"type": "ping"}),
    ]

    def block(index: int, opening: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        events.append(
            sse_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
        )
        for delta in deltas:
            events.append(
                sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": index}))

    index = 0
    if reply.reasoning is not None:
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in text_pieces(reply.reasoning, chunking)]
        if reply.reasoning_signature is not None:
            deltas.append({"type": "signature_delta", "signature": reply.reasoning_signature})
        block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
    if reply.content:
        deltas = [{"type": "text_delta", "text": piece} for piece in text_pieces(reply.content, chunking)]
        block(index, {"type": "text", "text": ""}, deltas)
        index += 1
    for call_index, call in enumerate(reply.calls):
        opening = {"type": "tool_use", "id": call_id(call, "toolu_fake", call_index), "name": call.name, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in even_pieces(arguments_text(call), chunking.argument_fragments)
        ]
        block(index, opening, deltas)
        index += 1
    events.append(
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output_tokens},
            },
        )
    )
    events.append(sse_event("message_stop", {"type": "message_stop"}))
    return events


def _error_body(reply: Reply, sequence: int) -> Any:
    if reply.error_body is not None:
        return reply.error_body
    status = reply.http_status
    error_type = _ERROR_TYPES.get(status, "api_error")
    message = reply.error_message or f"fake upstream error {status}"
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": f"req_fake{sequence:04d}"}
