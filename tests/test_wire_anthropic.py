from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from lynkr.errors import InvalidRequest, UpstreamError
from lynkr.wire.anthropic import (
    MessageAssembler,
    UpstreamStreamError,
    message_to_events,
    parse_count_tokens_request,
    parse_messages_request,
    session_id_from_metadata,
    system_blocks,
)
from tests.wire_samples import SESSION_ID, assert_well_formed, cli_request


def _invalid(body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body)
    assert caught.value.status == 400
    return caught.value


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **extra}


# -- parse_messages_request -------------------------------------------------------------------------------


def test_accepts_the_cli_request_as_raw_bytes_and_keeps_every_key() -> None:
    body = cli_request()
    body["some_future_field"] = {"x": 1}
    request = parse_messages_request(json.dumps(body).encode())
    assert request == body
    assert request["messages"][1]["role"] == "system"


def test_returns_the_parsed_dict_itself_without_copying() -> None:
    body = cli_request()
    assert parse_messages_request(body) is body


@pytest.mark.parametrize(
    "thinking",
    [
        {"type": "adaptive"},
        {"type": "adaptive", "display": "updates"},
        {"type": "enabled", "budget_tokens": 31999},
        {"type": "disabled"},
    ],
)
def test_accepts_every_thinking_form_the_cli_sends(thinking: dict[str, Any]) -> None:
    assert parse_messages_request(_minimal(thinking=thinking))["thinking"] == thinking


def test_accepts_a_system_message_with_string_content_anywhere() -> None:
    body = _minimal()
    body["messages"] += [
        {"role": "system", "content": "mid-conversation", "output_config": {"effort": "high"}},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": [{"type": "text", "text": "later"}]},
        {"role": "user", "content": "go on"},
    ]
    parse_messages_request(body)


def test_keeps_unknown_block_types() -> None:
    body = _minimal()
    body["messages"][0]["content"] = [{"type": "container_upload", "file_id": "f"}, {"type": "text", "text": "x"}]
    parse_messages_request(body)


def test_invalid_json_is_a_clear_400() -> None:
    error = _invalid(b'{"model": ')
    assert "not valid JSON" in error.message


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", 42])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    assert "JSON object" in _invalid(body).message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"model": None}, "model", "Field required"),
        ({"model": 3}, "model", "non-empty string"),
        ({"max_tokens": None}, "max_tokens", "Field required"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": True}, "max_tokens", ">= 1"),
        ({"max_tokens": "100"}, "max_tokens", ">= 1"),
        ({"messages": None}, "messages", "Field required"),
        ({"messages": {}}, "messages", "valid list"),
        ({"messages": []}, "messages", "at least one"),
        ({"temperature": "hot"}, "temperature", "number"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences", "list of strings"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id", "string"),
        ({"system": [{"type": "text"}]}, "system.0.text", "Field required"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type", "'auto'"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name", "Field required"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "Field required"),
        ({"tools": [{"name": "Bash"}]}, "tools.0.input_schema", "Field required"),
        ({"tools": [{"name": "B", "input_schema": {"type": "object"}, "defer_loading": "yes"}]}, "tools.0.defer_loading",
         "boolean"),
        ({"cache_control": {"ttl": "5m"}}, "cache_control.type", "Field required"),
    ],
)
def test_wrong_top_level_fields_name_their_path(change: dict[str, Any], field: str, words: str) -> None:
    body = _minimal()
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    error = _invalid(body)
    assert error.field == field
    assert words in error.message


def test_server_tools_need_no_schema() -> None:
    parse_messages_request(_minimal(tools=[{"type": "web_search_20250305", "name": "web_search"}]))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "robot", "content": "x"}, "messages.0.role"),
        ({"role": "user"}, "messages.0.content"),
        ({"role": "user", "content": [{"text": "no type"}]}, "messages.0.content.0.type"),
        ({"role": "user", "content": [{"type": "text", "text": 3}]}, "messages.0.content.0.text"),
        ({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]},
         "messages.0.content.0.source.media_type"),
        ({"role": "user", "content": [{"type": "tool_result", "content": "x"}]}, "messages.0.content.0.tool_use_id"),
        ({"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "yes"}]},
         "messages.0.content.0.cache_control"),
        ({"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}, "messages.0.content.0"),
        ({"role": "system", "content": [{"type": "text"}]}, "messages.0.content.0.text"),
    ],
)
def test_bad_blocks_name_their_path(message: dict[str, Any], field: str) -> None:
    error = _invalid({"model": "m", "max_tokens": 1, "messages": [message]})
    assert error.field == field
    assert error.message.startswith(field + ": ")


def test_a_tool_reference_needs_a_tool_name() -> None:
    body = cli_request()
    del body["messages"][3]["content"][0]["content"][1]["tool_name"]
    assert _invalid(body).field == "messages.3.content.0.content.1.tool_name"


def _round_trip(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
            ]},
            {"role": "user", "content": results},
        ],
    }


def test_a_tool_use_without_its_result_is_refused_with_the_api_wording() -> None:
    error = _invalid(_round_trip([{"type": "tool_result", "tool_use_id": "t1"}]))
    assert error.field == "messages.1"
    assert "`tool_use` ids were found without `tool_result` blocks immediately after: t2" in error.message


def test_a_result_for_an_unknown_tool_use_is_refused() -> None:
    error = _invalid(_round_trip([
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t2"},
        {"type": "tool_result", "tool_use_id": "t3"},
    ]))
    assert error.field == "messages.2.content.2"
    assert "unexpected `tool_use_id`" in error.message


def test_duplicate_results_for_one_tool_use_are_refused() -> None:
    error = _invalid(_round_trip([
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t2"},
        {"type": "tool_result", "tool_use_id": "t1"},
    ]))
    assert "multiple `tool_result` blocks with id: t1" in error.message


def test_a_system_message_between_tool_use_and_result_is_skipped_for_pairing() -> None:
    body = _round_trip([{"type": "tool_result", "tool_use_id": "t1"}, {"type": "tool_result", "tool_use_id": "t2"}])
    body["messages"].insert(2, {"role": "system", "content": "reminder"})
    parse_messages_request(body)


def test_a_transcript_ending_in_tool_use_is_a_prefill_and_allowed() -> None:
    body = _round_trip([])
    body["messages"].pop()
    parse_messages_request(body)


def test_count_tokens_needs_no_max_tokens() -> None:
    body = cli_request()
    del body["max_tokens"]
    assert parse_count_tokens_request(json.dumps(body))["model"] == "claude-opus-5-5"
    with pytest.raises(InvalidRequest) as caught:
        parse_count_tokens_request(b'{"messages": []}')
    assert caught.value.field == "model"


# -- session ids, system blocks ---------------------------------------------------------------------------


def test_session_id_comes_from_the_json_user_id() -> None:
    assert session_id_from_metadata(cli_request()) == SESSION_ID


def test_session_id_from_the_older_user_id_format() -> None:
    user_id = f"user_{'a' * 64}_account_{'b' * 8}-1111-2222-3333-444444444444_session_{SESSION_ID}"
    assert session_id_from_metadata({"metadata": {"user_id": user_id}}) == SESSION_ID


@pytest.mark.parametrize(
    "metadata",
    [None, "x", {}, {"user_id": ""}, {"user_id": "{not json"}, {"user_id": "[1]"}, {"user_id": '{"session_id": 4}'},
     {"user_id": "plain-user"}],
)
def test_session_id_tolerates_garbage(metadata: Any) -> None:
    assert session_id_from_metadata({"metadata": metadata}) is None


def test_system_blocks_join_top_level_system_and_system_messages_in_order() -> None:
    body = cli_request()
    body["messages"].append({"role": "system", "content": "late note"})
    texts = [block["text"] for block in system_blocks(parse_messages_request(body))]
    assert texts[0].startswith("You are a Claude agent")
    assert texts[2].startswith("<env>")
    assert texts[-1] == "late note"
    assert len(texts) == 4
    assert all(set(block) == {"type", "text"} for block in system_blocks(body))


def test_system_blocks_from_a_string_system() -> None:
    assert system_blocks({"system": "be brief", "messages": []}) == [{"type": "text", "text": "be brief"}]


def test_system_blocks_drop_the_per_request_billing_header_line() -> None:
    system = "x-anthropic-billing-header: cc_version=2.1.1; cc_entrypoint=cli;\nYou are Claude Code."
    assert system_blocks({"system": system, "messages": []}) == [{"type": "text", "text": "You are Claude Code."}]


# -- MessageAssembler -------------------------------------------------------------------------------------

_STREAM: list[dict[str, Any]] = [
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                          "content": [], "stop_reason": None, "stop_sequence": None,
                                          "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 4}}},
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "ok"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Run"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ning."}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"command": "l'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 's"}'}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "Status", "input": {}}},
    {"type": "content_block_stop", "index": 3},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 30}},
    {"type": "message_stop"},
]


def _assemble(events: Sequence[Any]) -> dict[str, Any]:
    assembler = MessageAssembler()
    for event in events:
        assembler.feed(event)
    return dict(assembler.message())


def test_assembler_builds_text_thinking_and_tool_input() -> None:
    message = _assemble(_STREAM)
    assert message["id"] == "msg_1"
    assert message["content"] == [
        {"type": "thinking", "thinking": "hmm ok", "signature": "c2ln"},
        {"type": "text", "text": "Running."},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        {"type": "tool_use", "id": "toolu_2", "name": "Status", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 12, "output_tokens": 30, "cache_read_input_tokens": 4}


def test_assembler_drops_empty_text_blocks() -> None:
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 1, "output_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": None},
    ]
    message = _assemble(events)
    assert message["content"] == []
    assert message["usage"] == {"input_tokens": 1, "output_tokens": 0}


def test_assembler_tolerates_a_stream_without_message_start_or_block_start() -> None:
    message = _assemble([
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "orphan"}},
        {"type": "some_future_event", "x": 1},
    ])
    assert message["content"] == [{"type": "text", "text": "orphan"}]
    assert message["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert message["stop_reason"] is None


def test_assembler_raises_on_an_error_event() -> None:
    assembler = MessageAssembler()
    with pytest.raises(UpstreamStreamError) as caught:
        assembler.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert caught.value.message == "Overloaded"
    assert caught.value.upstream_type == "overloaded_error"


def test_assembler_refuses_tool_arguments_that_are_not_json() -> None:
    assembler = MessageAssembler()
    assembler.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "Bash", "input": {}}})
    assembler.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"command": "l'}})
    with pytest.raises(UpstreamError, match="Bash"):
        assembler.message()


def test_message_to_events_round_trips_through_the_assembler() -> None:
    original = _assemble(_STREAM)
    events = message_to_events(original)  # type: ignore[arg-type]
    assert_well_formed(events)
    assert _assemble(events) == original


def test_message_to_events_skips_empty_text_and_keeps_opaque_blocks() -> None:
    message: dict[str, Any] = {
        "id": "m", "type": "message", "role": "assistant", "model": "x", "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4},
        "content": [
            {"type": "text", "text": ""},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "done"},
        ],
    }
    events = message_to_events(message)  # type: ignore[arg-type]
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert events[1]["content_block"] == {"type": "redacted_thinking", "data": "opaque"}  # type: ignore[typeddict-item]
    assert _assemble(events)["content"] == message["content"][1:]


def test_unsigned_thinking_is_dropped_for_signature_checking_upstreams() -> None:
    from lynkr.wire.anthropic import without_unsigned_thinking

    signed = {"type": "thinking", "thinking": "a", "signature": "sig"}
    unsigned = {"type": "thinking", "thinking": "b", "signature": ""}
    request: Any = {
        "model": "m",
        "max_tokens": 1,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [signed, unsigned, {"type": "text", "text": "ok"}]},
            {"role": "assistant", "content": [unsigned]},
        ],
    }
    cleaned = without_unsigned_thinking(request)
    assert cleaned["messages"][1]["content"] == [signed, {"type": "text", "text": "ok"}]
    assert cleaned["messages"][2]["content"] == [{"type": "text", "text": "(thinking omitted)"}]
    assert request["messages"][1]["content"][1] is unsigned  # the client's request is left as it was
    untouched: Any = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    assert without_unsigned_thinking(untouched) is untouched
