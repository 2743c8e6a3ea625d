"""Request bodies shaped like the Claude Code CLI's, and the event-order invariants every converter must keep."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SESSION_ID = "6f1c2a9e-4b1d-4c57-9a53-1f0e8d2b7c44"

_BILLING = "x-anthropic-billing-header: cc_version=2.1.332.abc; cc_entrypoint=sdk-cli;"
_MAIN_PROMPT = "You are an interactive agent that helps users with software engineering tasks. " * 60

_BASH_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "The command to execute"},
        "description": {"type": "string", "description": "Clear, concise description of what this command does"},
        "timeout": {"type": "number", "description": "Optional timeout in milliseconds (max 600000)"},
    },
    "required": ["command"],
    "additionalProperties": False,
}


def _tool(name: str, description: str, **extra: Any) -> dict[str, Any]:
    schema = copy.deepcopy(_BASH_SCHEMA)
    return {"name": name, "description": description, "input_schema": schema, **extra}


def cli_request() -> dict[str, Any]:
    """A 2.1.332-style second-turn request: system blocks, a role:system message at index 1, a tool round trip
    through ToolSearch (tool_reference results), thinking with an empty signature, deferred tools."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": True,
        "metadata": {
            "user_id": json.dumps({"device_id": "ab" * 32, "account_uuid": "", "session_id": SESSION_ID})
        },
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "system": [
            {"type": "text", "text": _BILLING},
            {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": _MAIN_PROMPT, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "tools": [
            _tool("Bash", "Executes a given bash command and returns its output. " * 40),
            _tool("Read", "Reads a file from the local filesystem. " * 30),
            _tool("ToolSearch", "Fetches full schema definitions for deferred tools. " * 10),
            _tool("WebFetch", "Fetches content from a specified URL. " * 20, defer_loading=True),
            _tool("NotebookEdit", "Replaces the contents of a specific cell. " * 10, defer_loading=True,
                  cache_control={"type": "ephemeral"}),
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nThis is the git status at the start of the conversation.\n</system-reminder>"},
                    {"type": "text", "text": "fetch the docs and run the tests"},
                ],
            },
            {
                "role": "system",
                "output_config": {"effort": "medium"},
                "content": [
                    {"type": "text", "text": "<env>Working directory: /tmp/repo\nPlatform: linux</env>\n" * 40,
                     "cache_control": {"type": "ephemeral"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should load WebFetch first.", "signature": ""},
                    {"type": "text", "text": "Let me load the tools."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "ToolSearch", "input": {"query": "select:WebFetch,NotebookEdit"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01A",
                        "content": [
                            {"type": "tool_reference", "tool_name": "WebFetch"},
                            {"type": "tool_reference", "tool_name": "NotebookEdit"},
                            {"type": "text", "text": "Tool loaded."},
                        ],
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_abc123", "name": "Bash", "input": {"command": "pytest -q", "description": "run tests"}},
                    {"type": "tool_use", "id": "lkx_ZnVuY3Rpb25zLkJhc2g6MQ", "name": "Read", "input": {"file_path": "/tmp/repo/shot.png"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_abc123", "content": "Exit code 1\n1 failed", "is_error": True},
                    {
                        "type": "tool_result",
                        "tool_use_id": "lkx_ZnVuY3Rpb25zLkJhc2g6MQ",
                        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}],
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "also look at this", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
    }


def sse_bytes(chunks: Iterable[Mapping[str, Any]], *, done: bool = True) -> bytes:
    """An OpenAI-style SSE body: data-only events and a [DONE] terminator."""
    body = b"".join(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n" for chunk in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def assert_well_formed(events: Sequence[Mapping[str, Any]]) -> None:
    """The Anthropic stream grammar the CLI relies on."""
    assert events, "no events"
    assert events[0]["type"] == "message_start"
    assert events[0]["message"]["content"] == []
    assert events[0]["message"]["stop_reason"] is None
    assert events[-1]["type"] == "message_stop"
    assert events[-2]["type"] == "message_delta"
    usage = events[-2]["usage"]
    assert isinstance(usage["input_tokens"], int) and isinstance(usage["output_tokens"], int)
    assert events[-2]["delta"]["stop_reason"] is not None
    open_index: int | None = None
    open_type = ""
    next_index = 0
    text_seen = False
    for event in events[1:-2]:
        kind = event["type"]
        assert kind in ("content_block_start", "content_block_delta", "content_block_stop", "ping"), kind
        if kind == "content_block_start":
            assert open_index is None, "a block started while another was open"
            assert event["index"] == next_index
            open_index = next_index
            open_type = event["content_block"]["type"]
            text_seen = False
        elif kind == "content_block_delta":
            assert event["index"] == open_index, "delta outside its block"
            delta_type = event["delta"]["type"]
            expected = {"text": "text_delta", "thinking": ("thinking_delta", "signature_delta"), "tool_use": "input_json_delta"}
            allowed = expected[open_type]
            assert delta_type in (allowed if isinstance(allowed, tuple) else (allowed,)), (open_type, delta_type)
            if delta_type == "text_delta" and event["delta"]["text"]:
                text_seen = True
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            if open_type == "text":
                assert text_seen, "empty text block"
            open_index = None
            next_index += 1
    assert open_index is None, "a block was never stopped"
    assert sum(event["type"] == "message_start" for event in events) == 1
