"""A `Reply` as Ollama's native `/api/chat` answer: NDJSON lines ending with `done: true`, or one JSON object.

Ollama streams unless the request says `"stream": false`; tool call arguments are JSON objects, not strings.
"""

from __future__ import annotations

import json
from typing import Any

from .plan import Plan, arguments_object, json_plan, stream_plan, text_pieces
from .script import Reply, ToolCall

CREATED_AT = "2026-11-27T12:00:00.000000Z"


def render_ollama(reply: Reply, request: dict[str, Any], *, sequence: int) -> Plan:
    if reply.http_status >= 400:
        return json_plan(reply.http_status, _error_body(reply), reply.extra_headers)
    model = str(request.get("model", "fake-model"))
    if request.get("stream", True) is not False:
        events = [_line(payload) for payload in _stream_payloads(reply, model)]
        error = _line({"error": reply.faults.mid_stream_error})
        return stream_plan("application/x-ndjson", events, reply=reply, error_event=error, sse=False)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message["thinking"] = reply.reasoning
    if reply.calls:
        message["tool_calls"] = [_tool_call(call) for call in reply.calls]
    return json_plan(200, {**_head(model, message, done=True), **_final_stats(reply)}, reply.extra_headers)


def _line(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def _head(model: str, message: dict[str, Any], *, done: bool) -> dict[str, Any]:
    return {"model": model, "created_at": CREATED_AT, "message": message, "done": done}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    entry: dict[str, Any] = {"function": {"name": call.name, "arguments": arguments_object(call)}}
    if call.id is not None:
        entry["id"] = call.id
    return entry


def _final_stats(reply: Reply) -> dict[str, Any]:
    return {
        "done_reason": reply.stop_reason or "stop",
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": reply.usage.input_tokens,
        "prompt_eval_duration": 200_000,
        "eval_count": reply.usage.output_tokens,
        "eval_duration": 700_000,
    }


def _stream_payloads(reply: Reply, model: str) -> list[dict[str, Any]]:
    chunking = reply.chunking
    payloads: list[dict[str, Any]] = []
    for piece in text_pieces(reply.reasoning or "", chunking):
        payloads.append(_head(model, {"role": "assistant", "content": "", "thinking": piece}, done=False))
    for piece in text_pieces(reply.content, chunking):
        payloads.append(_head(model, {"role": "assistant", "content": piece}, done=False))
    call_groups = [reply.calls] if chunking.tool_calls_in_one_chunk else [(call,) for call in reply.calls]
    for group in call_groups:
        if group:
            message = {"role": "assistant", "content": "", "tool_calls": [_tool_call(call) for call in group]}
            payloads.append(_head(model, message, done=False))
    payloads.append({**_head(model, {"role": "assistant", "content": ""}, done=True), **_final_stats(reply)})
    return payloads


def _error_body(reply: Reply) -> Any:
    if reply.error_body is not None:
        return reply.error_body
    return {"error": reply.error_message or f"fake upstream error {reply.http_status}"}
