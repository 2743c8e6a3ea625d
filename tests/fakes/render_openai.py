"""A `Reply` as an OpenAI chat completion: SSE chunks ending in `data: [DONE]`, or one JSON object."""

from __future__ import annotations

from typing import Any

from .plan import (
    Plan,
    arguments_text,
    call_id,
    even_pieces,
    json_plan,
    sse_data,
    stream_plan,
    text_pieces,
)
from .script import Reply

CREATED = 1_767_000_000

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
}


def render_openai(reply: Reply, request: dict[str, Any], *, sequence: int) -> Plan:
    if reply.http_status >= 400:
        return json_plan(reply.http_status, _error_body(reply), reply.extra_headers)
    completion_id = f"chatcmpl-fake{sequence:04d}"
    model = str(request.get("model", "fake-model"))
    if request.get("stream") is True:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        events = _stream_events(reply, completion_id, model, include_usage)
        error = _mid_stream_error(reply, completion_id, model)
        return stream_plan("text/event-stream", events, reply=reply, error_event=error, sse=True)
    return json_plan(200, _completion(reply, completion_id, model), reply.extra_headers)


def _finish_reason(reply: Reply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_calls" if reply.calls else "stop"


def _usage(reply: Reply) -> dict[str, Any]:
    usage = reply.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _completion(reply: Reply, completion_id: str, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.reasoning is not None:
        message[reply.chunking.reasoning_field] = reply.reasoning
    if reply.calls:
        message["tool_calls"] = [
            {
                "id": call_id(call, "call_fake", index),
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_text(call)},
            }
            for index, call in enumerate(reply.calls)
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(reply),
    }


def _stream_events(reply: Reply, completion_id: str, model: str, include_usage: bool) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            payload["usage"] = None
        return sse_data(payload)

    chunking = reply.chunking
    events: list[bytes] = []
    if chunking.prompt_filter_first:
        events.append(
            sse_data(
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                }
            )
        )
    events.append(chunk({"role": "assistant", "content": ""}))
    for piece in text_pieces(reply.reasoning or "", chunking):
        events.append(chunk({chunking.reasoning_field: piece}))
    for piece in text_pieces(reply.content, chunking):
        events.append(chunk({"content": piece}))
    if chunking.tool_calls_in_one_chunk and reply.calls:
        whole = [
            {
                "index": index,
                "id": call_id(call, "call_fake", index),
                "type": "function",
                "function": {"name": call.name, "arguments": arguments_text(call)},
            }
            for index, call in enumerate(reply.calls)
        ]
        events.append(chunk({"tool_calls": whole}))
    else:
        for index, call in enumerate(reply.calls):
            opening = {
                "index": index,
                "id": call_id(call, "call_fake", index),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [opening]}))
            sent = ""
            for piece in even_pieces(arguments_text(call), chunking.argument_fragments):
                sent += piece
                fragment = sent if chunking.cumulative_arguments else piece
                events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    events.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        usage_chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [],
            "usage": _usage(reply),
        }
        events.append(sse_data(usage_chunk))
    events.append(sse_data("[DONE]"))
    return events


def _mid_stream_error(reply: Reply, completion_id: str, model: str) -> bytes:
    """OpenRouter's in-band error: a chunk with a top-level `error` and finish_reason "error"."""
    return sse_data(
        {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "error": {"code": "server_error", "message": reply.faults.mid_stream_error},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
    )


def _error_body(reply: Reply) -> Any:
    if reply.error_body is not None:
        return reply.error_body
    status = reply.http_status
    error_type = _ERROR_TYPES.get(status, "server_error")
    message = reply.error_message or f"fake upstream error {status}"
    return {"error": {"message": message, "type": error_type, "param": None, "code": error_type}}

