from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lynkr.wire.anthropic import MessageAssembler, parse_messages_request
from lynkr.wire.ids import generated_id, to_anthropic_id, to_short_upstream_id
from lynkr.wire.openai import StreamConverter, UpstreamStreamError, build_request, convert_response, response_format
from lynkr.wire.sse import SSEDecoder
from tests.wire_samples import assert_well_formed, cli_request, sse_bytes

MESSAGE_ID = "msg_test"

# -- build_request ----------------------------------------------------------------------------------------


def _cli_body(**options: Any) -> dict[str, Any]:
    request = parse_messages_request(cli_request())
    return build_request(request, model="gpt-4o", max_tokens=16000, stream=True, **options)


def test_system_blocks_and_system_messages_become_one_leading_system_message() -> None:
    messages = _cli_body()["messages"]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("You are a Claude agent, built on Anthropic's Claude Agent SDK.")
    assert "x-anthropic-billing-header" not in messages[0]["content"]
    assert "<env>Working directory" in messages[0]["content"]
    assert [m["role"] for m in messages].count("system") == 1


def test_the_cli_transcript_maps_turn_by_turn() -> None:
    messages = _cli_body()["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "tool", "tool", "user"]
    assert messages[1]["content"].endswith("fetch the docs and run the tests")
    first_call = messages[2]
    assert first_call["content"] == "Let me load the tools."  # the unsigned thinking block is gone
    assert first_call["tool_calls"] == [
        {"id": "toolu_01A", "type": "function",
         "function": {"name": "ToolSearch", "arguments": '{"query":"select:WebFetch,NotebookEdit"}'}},
    ]
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "toolu_01A",
        "content": "Tool WebFetch is now available.\nTool NotebookEdit is now available.\nTool loaded.",
    }
    assert messages[4]["content"] is None
    assert [call["id"] for call in messages[4]["tool_calls"]] == ["call_abc123", "functions.Bash:1"]
    assert json.loads(messages[4]["tool_calls"][0]["function"]["arguments"]) == {"command": "pytest -q", "description": "run tests"}
    assert messages[5]["content"] == "Error: Exit code 1\n1 failed"
    assert messages[6]["tool_call_id"] == "functions.Bash:1"
    assert "image" in messages[6]["content"]
    assert messages[7]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "also look at this"},
    ]


def test_anthropic_only_fields_never_leak() -> None:
    body = _cli_body()
    text = json.dumps(body)
    for word in ("defer_loading", "cache_control", "context_management", "output_config", "thinking", "metadata",
                 "tool_reference", "signature", "web_search"):
        assert word not in text, word
    assert set(body) == {"model", "messages", "stream", "max_tokens", "stream_options", "tools"}
    assert body["stream_options"] == {"include_usage": True}
    assert [tool["function"]["name"] for tool in body["tools"]] == ["Bash", "Read", "ToolSearch", "WebFetch", "NotebookEdit"]
    assert set(body["tools"][0]["function"]) == {"name", "description", "parameters"}


def test_reasoning_models_get_max_completion_tokens_and_no_sampling_parameters() -> None:
    request = parse_messages_request({**cli_request(), "temperature": 1, "top_p": 0.9})
    body = build_request(request, model="o4-mini", max_tokens=100, stream=False, reasoning_model=True)
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body and "temperature" not in body and "top_p" not in body
    assert "stream_options" not in body and body["stream"] is False


def test_sampling_parameters_and_stop_sequences_pass_through() -> None:
    request = parse_messages_request({**cli_request(), "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"]})
    body = build_request(request, model="m", max_tokens=10, stream=True)
    assert (body["temperature"], body["top_p"], body["stop"], body["max_tokens"]) == (0.2, 0.9, ["END"], 10)
    assert "top_k" not in body


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}, None),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
        ({"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
    ],
)
def test_tool_choice_maps_to_its_openai_form(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    body = build_request(parse_messages_request({**cli_request(), "tool_choice": choice}), model="m", max_tokens=1, stream=True)
    assert body["tool_choice"] == expected
    assert body.get("parallel_tool_calls") == parallel


def test_no_tool_choice_without_tools() -> None:
    request = parse_messages_request(
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "any"},
         "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    )
    body = build_request(request, model="m", max_tokens=1, stream=False)
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body


def test_assistant_turns_with_nothing_to_say_are_left_out() -> None:
    request = parse_messages_request({
        "model": "m", "max_tokens": 1,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""}, {"type": "text", "text": ""}]},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": ""},
        ],
    })
    messages = build_request(request, model="m", max_tokens=1, stream=False)["messages"]
    assert messages == [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]


def test_url_images_and_documents() -> None:
    request = parse_messages_request({
        "model": "m", "max_tokens": 1,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}, "title": "N"},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        ]}],
    })
    [user] = build_request(request, model="m", max_tokens=1, stream=False)["messages"]
    assert user["content"][0] == {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    assert user["content"][1] == {"type": "text", "text": "N\nnotes"}
    assert "application/pdf document was left out" in user["content"][2]["text"]


# -- StreamConverter: single behaviours -------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}


def _call(index: int, arguments: str = "", call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        fragment["id"] = call_id
        fragment["type"] = "function"
    if name is not None:
        fragment["function"]["name"] = name
    return fragment


def _run(chunks: Sequence[dict[str, Any]], input_tokens: int = 0) -> list[dict[str, Any]]:
    converter = StreamConverter(message_id=MESSAGE_ID, model="claude-opus-5-5", input_tokens=input_tokens)
    events: list[dict[str, Any]] = []
    for chunk in chunks:
        events += converter.feed(chunk)  # type: ignore[arg-type]
    events += converter.finish()  # type: ignore[arg-type]
    assert_well_formed(events)
    return events


def _assemble(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    assembler = MessageAssembler()
    for event in events:
        assembler.feed(event)
    return dict(assembler.message())


USAGE_CHUNK = {"id": "chatcmpl-1", "choices": [], "usage": {
    "prompt_tokens": 1200, "completion_tokens": 42, "prompt_tokens_details": {"cached_tokens": 1000}}}


def test_text_stream_with_usage() -> None:
    events = _run([
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({}, "stop"),
        USAGE_CHUNK,
    ], input_tokens=900)
    assert events[0]["message"]["id"] == MESSAGE_ID
    assert events[0]["message"]["model"] == "claude-opus-5-5"
    assert events[0]["message"]["usage"]["input_tokens"] == 900
    message = _assemble(events)
    assert message["content"] == [{"type": "text", "text": "Hello"}]
    assert message["stop_reason"] == "end_turn"
    assert events[-2]["usage"] == {
        "input_tokens": 200, "output_tokens": 42, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000}


def test_message_start_comes_on_the_first_feed_even_for_azure_filter_chunks() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    events = converter.feed({"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]})
    assert [event["type"] for event in events] == ["message_start"]


def test_an_empty_stream_still_has_a_well_formed_message() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m", input_tokens=7)
    events: list[dict[str, Any]] = converter.finish()  # type: ignore[assignment]
    assert [event["type"] for event in events] == ["message_start", "message_delta", "message_stop"]
    assert events[1]["delta"]["stop_reason"] == "end_turn"
    assert events[1]["usage"]["input_tokens"] == 7
    assert converter.finish() == []


def test_reasoning_becomes_a_thinking_block_before_the_text() -> None:
    events = _run([
        _chunk({"role": "assistant", "reasoning_content": "Let me "}),
        _chunk({"reasoning": "think."}),
        _chunk({"content": "Answer"}),
        _chunk({}, "stop"),
    ])
    assert _assemble(events)["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "Answer"},
    ]


def test_no_usage_from_the_upstream_gives_estimates_not_zeros() -> None:
    events = _run([_chunk({"content": "x" * 400}), _chunk({}, "stop")], input_tokens=321)
    assert events[-2]["usage"]["input_tokens"] == 321
    assert events[-2]["usage"]["output_tokens"] == 100


def test_tool_call_fragments_go_out_as_they_arrive() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    converter.feed(_chunk({"role": "assistant", "content": "Running it."}))
    first = converter.feed(_chunk({"tool_calls": [_call(0, "", "call_1", "Bash")]}))
    assert [e["type"] for e in first] == ["content_block_stop", "content_block_start"]
    assert first[1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}  # type: ignore[typeddict-item]
    for fragment in ('{"comm', 'and": "l', 's"}'):
        [delta] = converter.feed(_chunk({"tool_calls": [_call(0, fragment)]}))
        assert delta["delta"] == {"type": "input_json_delta", "partial_json": fragment}  # type: ignore[typeddict-item]
    tail = converter.feed(_chunk({}, "tool_calls"))
    assert [e["type"] for e in tail] == ["content_block_stop"]  # the block closes at finish_reason
    end = converter.finish()
    assert end[0]["delta"]["stop_reason"] == "tool_use"  # type: ignore[typeddict-item]


def test_several_tool_calls_in_one_chunk() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, '{"a": 1}', "call_a", "Read"), _call(1, '{"b": 2}', "call_b", "Write")]}),
        _chunk({}, "tool_calls"),
    ])
    content = _assemble(events)["content"]
    assert [(b["id"], b["name"], b["input"]) for b in content] == [("call_a", "Read", {"a": 1}), ("call_b", "Write", {"b": 2})]


def test_interleaved_tool_calls_are_buffered_until_the_earlier_one_is_complete() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, "", "c0", "Read")]}),
        _chunk({"tool_calls": [_call(1, "", "c1", "Write")]}),
        _chunk({"tool_calls": [_call(0, '{"path": ')]}),
        _chunk({"tool_calls": [_call(1, '{"text": "hi"}')]}),
        _chunk({"tool_calls": [_call(0, '"a.txt"}')]}),
        _chunk({}, "tool_calls"),
    ])
    content = _assemble(events)["content"]
    assert [(b["name"], b["input"]) for b in content] == [("Read", {"path": "a.txt"}), ("Write", {"text": "hi"})]


def test_headers_first_then_arguments_per_call() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, "", "c0", "Read"), _call(1, "", "c1", "Write")]}),
        _chunk({"tool_calls": [_call(0, '{"x": 1}')]}),
        _chunk({"tool_calls": [_call(1, '{"y": 2}')]}),
        _chunk({}, "tool_calls"),
    ])
    assert [b["input"] for b in _assemble(events)["content"]] == [{"x": 1}, {"y": 2}]


def test_cumulative_argument_snapshots_send_only_the_new_suffix() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, '{"command', "c0", "Bash")]}),
        _chunk({"tool_calls": [_call(0, '{"command": "ls')]}),
        _chunk({"tool_calls": [_call(0, '{"command": "ls -la"}')]}),
        _chunk({"tool_calls": [_call(0, '{"command": "ls -la"}')]}),
        _chunk({}, "tool_calls"),
    ])
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert fragments == ['{"command', '": "ls', ' -la"}']
    assert _assemble(events)["content"][0]["input"] == {"command": "ls -la"}


def test_a_call_without_arguments_gets_an_explicit_empty_object() -> None:
    events = _run([_chunk({"tool_calls": [_call(0, "", "c0", "Status")]}), _chunk({}, "tool_calls")])
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert fragments == ["{}"]


def test_upstream_ids_are_made_valid_and_missing_ones_generated() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, "{}", "functions.Bash:0", "Bash")]}),
        _chunk({"tool_calls": [_call(1, "{}", None, "Read")]}),
        _chunk({}, "tool_calls"),
    ])
    ids = [block["id"] for block in _assemble(events)["content"]]
    assert ids == [to_anthropic_id("functions.Bash:0"), generated_id(MESSAGE_ID, 1)]


def test_text_after_a_tool_call_closes_the_call_first() -> None:
    events = _run([
        _chunk({"tool_calls": [_call(0, '{"q": 1}', "c0", "Search")]}),
        _chunk({"content": "done"}),
        _chunk({}, "stop"),
    ])
    content = _assemble(events)["content"]
    assert [b["type"] for b in content] == ["tool_use", "text"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"  # "stop" after tool calls still means tool_use


def test_more_arguments_for_a_finished_call_is_an_upstream_error() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    converter.feed(_chunk({"tool_calls": [_call(0, '{"q": 1}', "c0", "Search")]}))
    converter.feed(_chunk({"content": "text"}))
    with pytest.raises(UpstreamStreamError, match="after it had ended"):
        converter.feed(_chunk({"tool_calls": [_call(0, ', "r": 2}')]}))


def test_legacy_function_call_deltas() -> None:
    events = _run([
        _chunk({"function_call": {"name": "Bash", "arguments": '{"command":'}}),
        _chunk({"function_call": {"arguments": '"ls"}'}}),
        _chunk({}, "function_call"),
    ])
    [block] = _assemble(events)["content"]
    assert (block["name"], block["input"], block["id"]) == ("Bash", {"command": "ls"}, generated_id(MESSAGE_ID, 0))


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal"),
     ("function_call", "tool_use"), ("something_new", "end_turn")],
)
def test_finish_reasons_map_to_stop_reasons(finish: str, stop_reason: str) -> None:
    events = _run([_chunk({"content": "x"}), _chunk({}, finish)])
    assert events[-2]["delta"]["stop_reason"] == stop_reason


def test_a_refusal_is_text_with_stop_reason_refusal() -> None:
    events = _run([_chunk({"refusal": "I can't help with that."}), _chunk({}, "stop")])
    assert _assemble(events)["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert events[-2]["delta"]["stop_reason"] == "refusal"


def test_an_openrouter_error_chunk_raises_with_its_status() -> None:
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    converter.feed(_chunk({"content": "partial"}))
    with pytest.raises(UpstreamStreamError) as caught:
        converter.feed({"id": "x", "error": {"code": 502, "message": "Provider returned error"},
                        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})
    assert caught.value.message == "Provider returned error"
    assert caught.value.upstream_status == 502


def test_the_whole_stream_through_sse_bytes_with_openrouter_comments() -> None:
    body = b": OPENROUTER PROCESSING\n\n" + sse_bytes([_chunk({"content": "hi ☃"}), _chunk({}, "stop"), USAGE_CHUNK])
    events = _through_sse(body, [7, 30, 31, 32])
    assert _assemble(events)["content"] == [{"type": "text", "text": "hi ☃"}]


# -- convert_response -------------------------------------------------------------------------------------


def test_convert_response_with_null_content_and_null_id() -> None:
    response = {
        "id": None,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "reasoning_content": "hmm",
            "tool_calls": [{"id": "functions.Read:0", "type": "function", "function": {"name": "Read", "arguments": '{"p": 1}'}},
                           {"type": "function", "function": {"name": "Status", "arguments": ""}}],
        }}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }
    message = convert_response(response, message_id=MESSAGE_ID, model="claude-x")
    assert message["id"] == MESSAGE_ID and message["model"] == "claude-x"
    assert message["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "tool_use", "id": to_anthropic_id("functions.Read:0"), "name": "Read", "input": {"p": 1}},
        {"type": "tool_use", "id": generated_id(MESSAGE_ID, 1), "name": "Status", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 10 and message["usage"]["output_tokens"] == 5


def test_convert_response_with_empty_content_has_no_empty_text_block() -> None:
    message = convert_response({"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]}, message_id="m", model="x")
    assert message["content"] == []
    assert message["stop_reason"] == "end_turn"


# -- properties -------------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
_json_objects = st.dictionaries(st.text(max_size=6), _json_values, max_size=4)


@st.composite
def _pieces(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=6))))
    bounds = [0, *[c for c in cuts if 0 < c < len(text)], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if text[a:b]]


@st.composite
def _upstream(draw: st.DrawFn, *, interleave: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(chunks, expected Anthropic content) for a random stream: reasoning, text, then tool calls."""
    reasoning = draw(st.text(max_size=20))
    text = draw(st.text(max_size=40))
    expected: list[dict[str, Any]] = []
    chunks = [_chunk({"role": "assistant", "content": ""})]
    if reasoning:
        expected.append({"type": "thinking", "thinking": reasoning, "signature": ""})
        chunks += [_chunk({"reasoning_content": piece}) for piece in draw(_pieces(reasoning))]
    if text:
        expected.append({"type": "text", "text": text})
        chunks += [_chunk({"content": piece}) for piece in draw(_pieces(text))]
    per_call: list[list[dict[str, Any]]] = []
    for index in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["Bash", "Read", "Edit"]))
        arguments = draw(_json_objects)
        upstream_id = draw(st.sampled_from([f"call_{index}", f"functions.{name}:{index}", None]))
        pieces = draw(_pieces(json.dumps(arguments, ensure_ascii=False)))
        # A second fragment that repeats the first is read as a snapshot (documented ambiguity).
        assume(not (len(pieces) > 1 and pieces[1].startswith(pieces[0])))
        fragments = [_call(index, "", upstream_id, name)] + [_call(index, piece) for piece in pieces]
        per_call.append(fragments)
        tool_id = to_anthropic_id(upstream_id) if upstream_id else generated_id(MESSAGE_ID, index)
        expected.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
    if interleave:
        order = draw(st.permutations([i for i, fragments in enumerate(per_call) for _ in fragments]))
        positions = [0] * len(per_call)
        flat = []
        for call in order:
            flat.append(per_call[call][positions[call]])
            positions[call] += 1
        # Calls become blocks in the order they first appear.
        first_seen = list(dict.fromkeys(order))
        tools = expected[len(expected) - len(per_call):]
        expected[len(expected) - len(per_call):] = [tools[call] for call in first_seen]
    else:
        flat = [fragment for fragments in per_call for fragment in fragments]
    while flat:
        size = draw(st.integers(1, 3))
        chunks.append(_chunk({"tool_calls": flat[:size]}))
        flat = flat[size:]
    chunks.append(_chunk({}, "tool_calls" if per_call else "stop"))
    chunks.append(USAGE_CHUNK)
    return chunks, expected


def _through_sse(body: bytes, cuts: list[int]) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    converter = StreamConverter(message_id=MESSAGE_ID, model="m")
    events: list[dict[str, Any]] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(body)]:
        for sse in decoder.feed(body[start:cut]):
            if sse.data != "[DONE]":
                events += converter.feed(json.loads(sse.data))  # type: ignore[arg-type]
        start = cut
    assert [sse.data for sse in decoder.close()] == []
    events += converter.finish()  # type: ignore[arg-type]
    assert_well_formed(events)
    return events


@settings(max_examples=150, deadline=None)
@given(stream=_upstream(), cuts=st.lists(st.integers(0, 3000), max_size=15))
def test_any_chunking_of_text_arguments_and_bytes_gives_the_same_message(
    stream: tuple[list[dict[str, Any]], list[dict[str, Any]]], cuts: list[int]
) -> None:
    chunks, expected = stream
    events = _through_sse(sse_bytes(chunks), cuts)
    message = _assemble(events)
    assert message["content"] == expected
    assert message["stop_reason"] == ("tool_use" if any(b["type"] == "tool_use" for b in expected) else "end_turn")


@settings(max_examples=100, deadline=None)
@given(stream=_upstream(interleave=True))
def test_interleaved_tool_calls_reassemble_to_the_upstream_arguments(
    stream: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    chunks, expected = stream
    assert _assemble(_run(chunks))["content"] == expected


@settings(max_examples=100, deadline=None)
@given(arguments=_json_objects, data=st.data())
def test_cumulative_snapshots_give_the_same_result_as_deltas(arguments: dict[str, Any], data: st.DataObject) -> None:
    text = json.dumps(arguments)
    pieces = data.draw(_pieces(text))
    assume(not (len(pieces) > 1 and pieces[1].startswith(pieces[0])))
    snapshots = ["".join(pieces[: i + 1]) for i in range(len(pieces))]
    header = _chunk({"tool_calls": [_call(0, "", "c0", "Bash")]})
    finish = _chunk({}, "tool_calls")
    as_deltas = _run([header, *[_chunk({"tool_calls": [_call(0, p)]}) for p in pieces], finish])
    as_snapshots = _run([header, *[_chunk({"tool_calls": [_call(0, s)]}) for s in snapshots], finish])
    assert as_snapshots == as_deltas
    assert _assemble(as_deltas)["content"][0]["input"] == arguments


# -- short tool-call ids ----------------------------------------------------------------------------------------


def test_short9_sends_every_tool_call_id_as_nine_alphanumerics_and_keeps_pairs() -> None:
    body = build_request(parse_messages_request(cli_request()), model="m", max_tokens=1, stream=True, tool_ids="short9")
    calls = [call["id"] for message in body["messages"] for call in message.get("tool_calls", ())]
    results = [message["tool_call_id"] for message in body["messages"] if message["role"] == "tool"]
    assert calls == results == [
        to_short_upstream_id("toolu_01A"),
        to_short_upstream_id("call_abc123"),
        to_short_upstream_id("lkx_ZnVuY3Rpb25zLkJhc2g6MQ"),
    ]
    assert all(len(tool_id) == 9 and tool_id.isalnum() and tool_id.isascii() for tool_id in calls)
    assert len(set(calls)) == 3


def test_the_standard_scheme_is_the_default() -> None:
    body = build_request(parse_messages_request(cli_request()), model="m", max_tokens=1, stream=True)
    assert [message["tool_call_id"] for message in body["messages"] if message["role"] == "tool"] == [
        "toolu_01A", "call_abc123", "functions.Bash:1"
    ]


# -- structured output --------------------------------------------------------------------------------------------

_CLOSED_SCHEMA = {
    "title": "Weather report",
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {
        "type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"], "additionalProperties": False}}},
    "required": ["city", "days"],
    "additionalProperties": False,
}


def test_output_format_becomes_response_format() -> None:
    request = parse_messages_request(
        {**cli_request(), "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": _CLOSED_SCHEMA}}}
    )
    body = build_request(request, model="m", max_tokens=1, stream=True)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Weather_report", "schema": _CLOSED_SCHEMA, "strict": True},
    }
    assert "output_config" not in body


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},  # a is optional
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},  # not closed
        {**_CLOSED_SCHEMA, "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {
            "type": "object", "properties": {"t": {"type": "number"}}}}}},  # a nested object is open
    ],
)
def test_strict_is_asked_only_for_schemas_openai_strict_mode_accepts(schema: dict[str, Any]) -> None:
    converted = response_format(schema)
    assert converted["json_schema"]["strict"] is False
    assert converted["json_schema"]["name"] == ("Weather_report" if "title" in schema else "output")
    assert converted["json_schema"]["schema"] is schema


def test_no_response_format_without_output_format() -> None:
    assert "response_format" not in build_request(parse_messages_request(cli_request()), model="m", max_tokens=1,
                                                  stream=True)
