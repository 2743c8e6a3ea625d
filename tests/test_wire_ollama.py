from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from lynkr.wire.anthropic import MessageAssembler, parse_messages_request
from lynkr.wire.ids import generated_id
from lynkr.wire.ollama import StreamConverter, UpstreamStreamError, build_request, convert_response
from lynkr.wire.sse import NDJSONDecoder
from tests.wire_samples import assert_well_formed, cli_request

MESSAGE_ID = "msg_ollama"


def _body(**overrides: Any) -> dict[str, Any]:
    request = parse_messages_request({**cli_request(), **overrides})
    return build_request(request, model="qwen3:8b", max_tokens=8192, stream=True)


def test_the_cli_request_maps_to_api_chat() -> None:
    body = _body(temperature=0.5, top_k=20, stop_sequences=["END"])
    assert body["model"] == "qwen3:8b" and body["stream"] is True
    assert body["options"] == {"num_predict": 8192, "temperature": 0.5, "top_k": 20, "stop": ["END"]}
    assert "think" not in body
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "tool", "tool", "user"]
    assert "<env>Working directory" in messages[0]["content"]
    assert messages[2] == {
        "role": "assistant",
        "content": "Let me load the tools.",
        "tool_calls": [{"function": {"name": "ToolSearch", "arguments": {"query": "select:WebFetch,NotebookEdit"}}}],
    }
    assert messages[3]["tool_name"] == "ToolSearch"
    assert messages[3]["content"].startswith("Tool WebFetch is now available.")
    assert messages[5] == {"role": "tool", "content": "Error: Exit code 1\n1 failed", "tool_name": "Bash"}
    assert messages[6]["tool_name"] == "Read"
    assert messages[7] == {"role": "user", "content": "also look at this", "images": ["iVBORw0KGgo="]}
    assert [tool["function"]["name"] for tool in body["tools"]] == ["Bash", "Read", "ToolSearch", "WebFetch", "NotebookEdit"]
    text = json.dumps(body)
    for word in ("defer_loading", "cache_control", "context_management", "output_config", "signature", "metadata"):
        assert word not in text


def test_think_is_set_only_when_asked() -> None:
    request = parse_messages_request(cli_request())
    assert build_request(request, model="m", max_tokens=1, stream=False, think=True)["think"] is True


def test_tool_choice_none_offers_no_tools() -> None:
    assert "tools" not in _body(tool_choice={"type": "none"})


def _run(lines: Sequence[dict[str, Any]], input_tokens: int = 0) -> list[dict[str, Any]]:
    converter = StreamConverter(message_id=MESSAGE_ID, model="claude-opus-5-5", input_tokens=input_tokens)
    events: list[dict[str, Any]] = []
    for line in lines:
        events += converter.feed(line)  # type: ignore[arg-type]
    events += converter.finish()  # type: ignore[arg-type]
    assert_well_formed(events)
    return events


def _assemble(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    assembler = MessageAssembler()
    for event in events:
        assembler.feed(event)
    return dict(assembler.message())


def _line(content: str = "", *, thinking: str | None = None, tool_calls: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"model": "qwen3:8b", "created_at": "2026-11-27T00:00:00Z", "message": message, "done": False, **extra}


def _done(reason: str = "stop", **counts: Any) -> dict[str, Any]:
    return {**_line(), "done": True, "done_reason": reason, **counts}


def test_ndjson_bytes_to_thinking_text_and_usage() -> None:
    raw = b"".join(json.dumps(line).encode() + b"\n" for line in [
        _line(thinking="Hmm"), _line(thinking=" ok"), _line(""), _line("Hel"), _line("lo"),
        _done(prompt_eval_count=321, eval_count=9),
    ])
    decoder = NDJSONDecoder()
    lines = decoder.feed(raw[:37]) + decoder.feed(raw[37:]) + decoder.close()
    events = _run(lines)
    message = _assemble(events)
    assert message["content"] == [
        {"type": "thinking", "thinking": "Hmm ok", "signature": ""},
        {"type": "text", "text": "Hello"},
    ]
    assert message["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["input_tokens"] == 321
    assert events[-2]["usage"]["output_tokens"] == 9


def test_tool_calls_become_whole_tool_use_blocks_with_generated_ids() -> None:
    calls = [
        {"function": {"name": "Bash", "arguments": {"command": "ls", "timeout": 5}}},
        {"function": {"name": "Status", "arguments": {}}},
    ]
    events = _run([_line("Checking."), _line(tool_calls=calls), _done()])
    deltas = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"]
    assert deltas == ['{"command":"ls","timeout":5}', "{}"]
    message = _assemble(events)
    assert [(b["type"], b.get("id"), b.get("input")) for b in message["content"]] == [
        ("text", None, None),
        ("tool_use", generated_id(MESSAGE_ID, 0), {"command": "ls", "timeout": 5}),
        ("tool_use", generated_id(MESSAGE_ID, 1), {}),
    ]
    assert message["stop_reason"] == "tool_use"


def test_length_means_max_tokens_and_missing_counts_are_estimated() -> None:
    events = _run([_line("x" * 40), {**_done("length")}], input_tokens=55)
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2]["usage"]["input_tokens"] == 55  # prompt fully cached: Ollama omits prompt_eval_count
    assert events[-2]["usage"]["output_tokens"] == 10


def test_an_error_line_raises() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    with pytest.raises(UpstreamStreamError, match="model runner has unexpectedly stopped"):
        converter.feed({"error": "model runner has unexpectedly stopped"})


def test_an_empty_stream_is_well_formed() -> None:
    events = _run([])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_convert_response() -> None:
    response = {
        "model": "qwen3:8b", "done": True, "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 3,
        "message": {"role": "assistant", "content": "", "thinking": "t",
                    "tool_calls": [{"function": {"name": "Read", "arguments": {"file_path": "a"}}}]},
    }
    message = convert_response(response, message_id=MESSAGE_ID, model="claude-x")
    assert message["content"] == [
        {"type": "thinking", "thinking": "t", "signature": ""},
        {"type": "tool_use", "id": generated_id(MESSAGE_ID, 0), "name": "Read", "input": {"file_path": "a"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 10 and message["usage"]["output_tokens"] == 3


def test_output_format_becomes_format_with_the_schema_itself() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    body = _body(output_config={"effort": "low", "format": {"type": "json_schema", "schema": schema}})
    assert body["format"] == schema
    assert "format" not in _body()
