"""The prompt cache key: volatile parts of a Claude Code request share a key, determining fields never do."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lynkr.cache.key import cache_key


def cli_request(
    *, billing: str = "cc_version=2.1.332.a1f; cc_entrypoint=sdk-cli;", session: str = "s-1"
) -> dict[str, Any]:
    """Shaped like the CLI's: billing line, cache markers on system, the last block and a tool, metadata."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": True,
        "system": [
            {"type": "text", "text": f"x-anthropic-billing-header: {billing}"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Main prompt.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [{"name": "Bash", "description": "Run", "input_schema": {"type": "object"}}],
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "session_id": session})},
    }


def key_of(request: dict[str, Any], *, provider: str = "main", model: str = "gpt-x", betas: str = "") -> str:
    return cache_key(request, provider=provider, upstream_model=model, betas=betas)


def test_billing_line_metadata_and_markers_do_not_change_the_key() -> None:
    first = cli_request()
    second = cli_request(billing="cc_version=2.1.332.9e0; cc_entrypoint=sdk-cli;", session="s-2")
    # The CLI moves its last marker and may drop them all (DISABLE_PROMPT_CACHING=1).
    for block in second["system"]:
        block.pop("cache_control", None)
    second["tools"][0]["cache_control"] = {"type": "ephemeral"}
    second["stream"] = False
    assert key_of(first) == key_of(second)


def test_billing_line_inside_a_string_system_prompt_is_dropped() -> None:
    first = {**cli_request(), "system": "x-anthropic-billing-header: cc_version=1;\nBe brief."}
    second = {**cli_request(), "system": "x-anthropic-billing-header: cc_version=2;\nBe brief."}
    assert key_of(first) == key_of(second)
    assert key_of(first) != key_of({**cli_request(), "system": "x-anthropic-billing-header: cc_version=1;\nBe long."})


def test_beta_flag_order_does_not_change_the_key() -> None:
    assert key_of(cli_request(), betas="a, b") == key_of(cli_request(), betas="b,a")
    assert key_of(cli_request(), betas="a") != key_of(cli_request(), betas="a,b")


CHANGES = {
    "model": lambda r: r.update(model="claude-sonnet-5-5"),
    "system text": lambda r: r["system"][2].update(text="Another prompt."),
    "message text": lambda r: r["messages"][0]["content"][0].update(text="say bye"),
    "another message": lambda r: r["messages"].append({"role": "assistant", "content": "hi"}),
    "tools": lambda r: r["tools"][0].update(description="Run a command"),
    "no tools": lambda r: r.pop("tools"),
    "tool_choice": lambda r: r.update(tool_choice={"type": "any"}),
    "temperature": lambda r: r.update(temperature=0.5),
    "top_p": lambda r: r.update(top_p=0.9),
    "top_k": lambda r: r.update(top_k=5),
    "max_tokens": lambda r: r.update(max_tokens=32000),
    "stop_sequences": lambda r: r.update(stop_sequences=["END"]),
    "thinking": lambda r: r.update(thinking={"type": "enabled", "budget_tokens": 1024}),
    "output_config": lambda r: r.update(output_config={"effort": "high"}),
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_a_change_to_a_determining_field_changes_the_key(field: str) -> None:
    changed = copy.deepcopy(cli_request())
    CHANGES[field](changed)
    assert key_of(changed) != key_of(cli_request())


def test_the_route_is_part_of_the_key() -> None:
    assert key_of(cli_request(), provider="main") != key_of(cli_request(), provider="backup")
    assert key_of(cli_request(), model="gpt-x") != key_of(cli_request(), model="gpt-y")


def test_the_key_leaves_the_request_untouched() -> None:
    request = cli_request()
    before = copy.deepcopy(request)
    key_of(request)
    assert request == before


def test_markers_inside_a_tool_result_are_dropped_but_a_schema_property_named_like_one_is_content() -> None:
    def with_result(marked: bool) -> dict[str, Any]:
        inner: dict[str, Any] = {"type": "text", "text": "file contents"}
        if marked:
            inner["cache_control"] = {"type": "ephemeral"}
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [inner]}
        return {**cli_request(), "messages": [*cli_request()["messages"], {"role": "user", "content": [result]}]}

    assert key_of(with_result(True)) == key_of(with_result(False))
    schema_property = copy.deepcopy(cli_request())
    schema_property["tools"][0]["input_schema"] = {"type": "object", "properties": {"cache_control": {"type": "string"}}}
    assert key_of(schema_property) != key_of(cli_request())
