from __future__ import annotations

import copy
import json
import time
from typing import Any

from lynkr.wire.tokens import IMAGE_TOKENS, TOOL_USE_SYSTEM_PROMPT_TOKENS, estimate_tokens
from tests.wire_samples import cli_request


def _minimal(content: Any = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def test_the_cli_request_lands_near_four_characters_a_token() -> None:
    body = cli_request()
    size = len(json.dumps(body))
    # Less the fixed costs: one image and the tool-use system prompt.
    tokens = estimate_tokens(body) - IMAGE_TOKENS - TOOL_USE_SYSTEM_PROMPT_TOKENS
    assert size / 5 < tokens < size / 3


def test_system_system_messages_and_tools_all_count() -> None:
    base = estimate_tokens(_minimal())
    assert estimate_tokens(_minimal(system="word " * 400)) - base == 500
    with_message = _minimal()
    with_message["messages"].append({"role": "system", "content": "word " * 400})
    assert estimate_tokens(with_message) - base >= 500
    tools = [{"name": "Bash", "description": "d" * 400, "input_schema": {"type": "object", "properties": {}}}]
    assert estimate_tokens(_minimal(tools=tools)) - base > 100 + TOOL_USE_SYSTEM_PROMPT_TOKENS


def test_images_have_a_fixed_cost_whatever_their_size() -> None:
    small = _minimal([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 10}}])
    large = _minimal([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100000}}])
    assert estimate_tokens(small) == estimate_tokens(large)
    assert estimate_tokens(small) - estimate_tokens(_minimal("")) >= IMAGE_TOKENS


def test_tool_use_input_tool_results_and_thinking_count() -> None:
    base = estimate_tokens(_minimal(""))
    turn = _minimal("")
    turn["messages"] += [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t" * 400, "signature": ""},
            {"type": "tool_use", "id": "a", "name": "Bash", "input": {"command": "c" * 700}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "r" * 700}]}]},
    ]
    assert estimate_tokens(turn) - base > 100 + 200 + 200


def test_non_ascii_text_costs_more_than_its_character_count_suggests() -> None:
    assert estimate_tokens(_minimal("漢字" * 200)) > estimate_tokens(_minimal("ab" * 200))


def test_garbage_never_raises() -> None:
    assert estimate_tokens({}) == 1
    assert estimate_tokens({"messages": [None, {"content": [1, {"type": "image"}]}], "tools": ["x"]}) >= 1


def test_a_large_cli_body_is_estimated_in_well_under_a_millisecond() -> None:
    body = cli_request()
    body["tools"] = body["tools"] * 6
    body["messages"] = body["messages"] + copy.deepcopy(body["messages"][2:]) * 4
    assert len(json.dumps(body)) > 60_000  # like 2.1.197's first request
    estimate_tokens(body)
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        estimate_tokens(body)
    per_call = (time.perf_counter() - started) / runs
    assert per_call < 0.002, per_call  # generous for slow CI; ~0.2 ms here
