"""Several model rounds relayed to the client as one message."""

from __future__ import annotations

from typing import Any, cast

from lynkr.agent.relay import TurnRelay
from lynkr.wire.types import StreamEvent


def _round(*blocks: dict[str, Any], stop: str, input_tokens: int, output_tokens: int) -> list[StreamEvent]:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_x", "type": "message", "role": "assistant", "model": "m",
                                              "content": [], "usage": {"input_tokens": input_tokens,
                                                                       "output_tokens": 1}}},
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            events.append({"type": "content_block_start", "index": index,
                           "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": '{"command": "ls"}'}})
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                   "usage": {"output_tokens": output_tokens}})
    events.append({"type": "message_stop"})
    return cast(list[StreamEvent], events)


def test_two_rounds_reach_the_client_as_one_message_without_lynkr_tool_calls() -> None:
    relay = TurnRelay(frozenset({"Bash"}))
    relay.start_round()
    first = relay.feed(_round({"type": "text", "text": "Let me look."}, {"type": "tool_use", "id": "t1", "name": "Bash"},
                              stop="tool_use", input_tokens=10, output_tokens=7))
    round_message = relay.round_message()
    assert round_message["content"][1] == {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
    relay.start_round()
    second = relay.feed(_round({"type": "text", "text": "Found it."}, stop="end_turn", input_tokens=30,
                               output_tokens=3))
    second += relay.feed(cast(list[StreamEvent], [{"type": "ping"}]))
    final = relay.finish("end_turn")
    streamed = [*first, *second, *final]
    kinds = [event["type"] for event in streamed]
    assert kinds.count("message_start") == 1 and kinds.count("message_stop") == 1
    assert "ping" in kinds
    indexes = [cast(dict[str, Any], e)["index"] for e in streamed if e["type"] == "content_block_start"]
    assert indexes == [0, 1]
    assert not any(e["type"] == "content_block_delta" and cast(dict[str, Any], e)["delta"]["type"] == "input_json_delta"
                   for e in streamed)
    assert cast(dict[str, Any], final[0])["usage"] == {"input_tokens": 40, "output_tokens": 10}
    message = relay.client_message()
    assert message["content"] == [{"type": "text", "text": "Let me look."}, {"type": "text", "text": "Found it."}]
    assert message["stop_reason"] == "end_turn"


def test_a_client_tool_call_is_forwarded_renumbered_after_the_earlier_rounds_blocks() -> None:
    relay = TurnRelay(frozenset({"fs_read"}))
    relay.start_round()
    relay.feed(_round({"type": "text", "text": "a"}, {"type": "tool_use", "id": "t1", "name": "fs_read"},
                      stop="tool_use", input_tokens=1, output_tokens=1))
    relay.start_round()
    out = relay.feed(_round({"type": "tool_use", "id": "t2", "name": "Agent"}, stop="tool_use", input_tokens=1,
                            output_tokens=1))
    starts = [cast(dict[str, Any], e) for e in out if e["type"] == "content_block_start"]
    assert [(s["index"], s["content_block"]["name"]) for s in starts] == [(1, "Agent")]
    assert all(cast(dict[str, Any], e)["index"] == 1 for e in out if e["type"].startswith("content_block"))
    note = relay.note("[note]\n")
    assert cast(dict[str, Any], note[0])["index"] == 2
    relay.finish("tool_use")
    assert [b["type"] for b in relay.client_message()["content"]] == ["text", "tool_use", "text"]
