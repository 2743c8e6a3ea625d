"""Every provider kind end to end: a client -> lynkr -> a fake upstream speaking that provider's wire format.

Each provider is configured through the original project's environment variables (plus a ``lynkr.toml`` for
``max_tokens`` ceilings, named providers, fallback and routing).  Each test asserts both on what the fake upstream
received (URL, auth header, model, max_tokens, no Anthropic-only fields) and on what the client got back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.config import Config
from lynkr.events.catalog import ResponseCompleted, UpstreamAttempted
from tests.conftest import make_config, recorded_events, running_lynkr, sse_events, streamed_text, write_toml
from tests.fakes import Chunking, FakeUpstream, RecordedRequest, Reply, ToolCall, serve_fake

UPSTREAM_KEY = "upstream-secret-key-0042"
CLIENT_KEY = "sk-ant-client-key-0099"
TEST_TIMEOUT_S = 10

# Fields only Anthropic understands: an OpenAI-format or Ollama upstream must never see them.
ANTHROPIC_ONLY_KEYS = frozenset(
    {"thinking", "context_management", "output_config", "cache_control", "defer_loading", "metadata", "top_k"}
)

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    },
}


def cli_like_request(*, model: str = "claude-sonnet-4-5-20250929", stream: bool = True) -> dict[str, Any]:
    """A request shaped like the CLI's: cache markers, deferred tools, thinking, context management."""
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [
            {**BASH_TOOL, "cache_control": {"type": "ephemeral"}},
            {
                "name": "WebFetch",
                "description": "Fetch a URL",
                "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
                "defer_loading": True,
            },
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "sess-cli"})},
        "top_k": 5,
    }


def keys_anywhere(value: object) -> set[str]:
    """Every dict key at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(str(key))
            found |= keys_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            found |= keys_anywhere(item)
    return found


@asynccontextmanager
async def lynkr_client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
        yield client


async def post_messages(
    client: httpx.AsyncClient, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/messages?beta=true",
        json=body,
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", **(headers or {})},
    )


def only_model_call(fake: FakeUpstream) -> RecordedRequest:
    assert len(fake.model_calls) == 1, [call.request.path for call in fake.model_calls]
    return fake.model_calls[0].request


# -- databricks -----------------------------------------------------------------------------------------------


async def test_databricks_serving_endpoint_gets_openai_chat_with_bearer_and_clamped_max_tokens(
    tmp_path: Path,
) -> None:
    write_toml(tmp_path, "[providers.databricks]\nmax_tokens = 4096\n")
    fake = FakeUpstream()
    fake.push(Reply.text("Hello from Databricks"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "MODEL_PROVIDER": "databricks",
                    "DATABRICKS_API_BASE": upstream,
                    "DATABRICKS_API_KEY": UPSTREAM_KEY,
                    "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/team-claude/invocations",
                    "MODEL_DEFAULT": "databricks-claude-sonnet-4-5",
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert [name for name, _ in events][0] == "message_start"
    assert streamed_text(events) == "Hello from Databricks"
    assert events[-1][0] == "message_stop"

    sent = only_model_call(fake)
    assert sent.path == "/serving-endpoints/team-claude/invocations"
    assert sent.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert sent.header("x-api-key") is None  # the client's own key never travels upstream
    assert sent.json["model"] == "databricks-claude-sonnet-4-5"
    assert sent.json["max_tokens"] == 4096
    assert sent.json["stream"] is True
    leaked = keys_anywhere(sent.json) & ANTHROPIC_ONLY_KEYS
    assert not leaked, f"Anthropic-only fields reached an OpenAI-format upstream: {leaked}"
    system = sent.json["messages"][0]
    assert system["role"] == "system" and "You are Claude Code." in system["content"]
    assert "x-anthropic-billing-header" not in json.dumps(sent.json)
    assert [tool["function"]["name"] for tool in sent.json["tools"]] == ["Bash", "WebFetch"]


async def test_databricks_anthropic_path_passes_the_request_through(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("native answer", reasoning="thinking it over", signature="sig-1"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "DATABRICKS_API_BASE": upstream,
                    "DATABRICKS_API_KEY": UPSTREAM_KEY,
                    "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/anthropic/v1/messages",
                    "MODEL_DEFAULT": "databricks-claude-sonnet-4-5",
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request(stream=False))
    assert response.status_code == 200, response.text
    message = response.json()
    assert [block["type"] for block in message["content"]] == ["thinking", "text"]
    assert message["content"][0]["signature"] == "sig-1"
    assert message["content"][1]["text"] == "native answer"

    sent = only_model_call(fake)
    assert sent.path == "/serving-endpoints/anthropic/v1/messages"
    assert sent.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert sent.header("anthropic-version") == "2023-06-01"
    assert sent.json["model"] == "databricks-claude-sonnet-4-5"
    # Anthropic-native: the fields the CLI relies on arrive untouched.
    assert sent.json["thinking"] == {"type": "adaptive"}
    assert sent.json["context_management"] == cli_like_request()["context_management"]
    assert sent.json["system"][1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert sent.json["tools"][1]["defer_loading"] is True


# -- azure openai ---------------------------------------------------------------------------------------------


async def test_azure_openai_deployment_url_with_api_version_and_api_key_header(tmp_path: Path) -> None:
    fake = FakeUpstream()
    # Azure's first streamed chunk carries only prompt_filter_results.
    fake.push(Reply.text("Hello from Azure").with_chunking(Chunking(prompt_filter_first=True)))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "MODEL_PROVIDER": "azure-openai",
                    "AZURE_OPENAI_ENDPOINT": upstream,
                    "AZURE_OPENAI_API_KEY": UPSTREAM_KEY,
                    "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-team",
                    "AZURE_OPENAI_API_VERSION": "2025-01-01-preview",
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    assert streamed_text(sse_events(response.text)) == "Hello from Azure"

    sent = only_model_call(fake)
    assert sent.path == "/openai/deployments/gpt-4o-team/chat/completions"
    assert sent.query_params == {"api-version": ["2025-01-01-preview"]}
    assert sent.header("api-key") == UPSTREAM_KEY
    assert sent.header("authorization") is None
    assert not keys_anywhere(sent.json) & ANTHROPIC_ONLY_KEYS


async def test_azure_openai_v1_endpoint_sends_the_deployment_as_model_without_api_version(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "ls -la"}, id="call_az1"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "AZURE_OPENAI_ENDPOINT": f"{upstream}/openai/v1",
                    "AZURE_OPENAI_API_KEY": UPSTREAM_KEY,
                    "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-team",
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request(stream=False))
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "call_az1", "name": "Bash", "input": {"command": "ls -la"}}]

    sent = only_model_call(fake)
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.query == ""
    assert sent.header("api-key") == UPSTREAM_KEY
    assert sent.json["model"] == "gpt-4o-team"


# -- azure anthropic ------------------------------------------------------------------------------------------


async def test_azure_anthropic_forwards_beta_and_version_headers_with_its_own_key(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("Hello from Foundry"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "MODEL_PROVIDER": "azure-anthropic",
                    "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic/v1/messages",
                    "AZURE_ANTHROPIC_API_KEY": UPSTREAM_KEY,
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(
                    client,
                    cli_like_request(),
                    headers={
                        "anthropic-version": "2023-06-01",
                        "anthropic-beta": "claude-code-20250219,context-management-2025-06-27",
                    },
                )
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    assert streamed_text(events) == "Hello from Foundry"
    assert [name for name, _ in events if name != "ping"][-2:] == ["message_delta", "message_stop"]

    sent = only_model_call(fake)
    assert sent.path == "/anthropic/v1/messages"
    assert sent.header("x-api-key") == UPSTREAM_KEY
    assert sent.header("anthropic-version") == "2023-06-01"
    assert sent.header("anthropic-beta") == "claude-code-20250219,context-management-2025-06-27"
    assert sent.header("authorization") is None
    assert sent.json["model"] == "claude-sonnet-4-5-20250929"  # no model map: the name passes unchanged
    assert sent.json["output_config"] == {"effort": "high"}
    assert sent.json["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


async def test_azure_anthropic_version_can_be_pinned(tmp_path: Path) -> None:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {
                    "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic",
                    "AZURE_ANTHROPIC_API_KEY": UPSTREAM_KEY,
                    "AZURE_ANTHROPIC_VERSION": "2024-10-22",
                },
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request(stream=False))
    assert response.status_code == 200, response.text
    sent = only_model_call(fake)
    assert sent.path == "/anthropic/v1/messages"
    assert sent.header("anthropic-version") == "2024-10-22"


# -- openrouter -----------------------------------------------------------------------------------------------


def _openrouter_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openrouter",
        "OPENROUTER_ENDPOINT": f"{upstream}/api/v1/chat/completions",
        "OPENROUTER_API_KEY": UPSTREAM_KEY,
        "OPENROUTER_MODEL": "anthropic/claude-sonnet-4.5",
    }


async def test_openrouter_comment_lines_are_skipped(tmp_path: Path) -> None:
    fake = FakeUpstream()
    processing = ": OPENROUTER PROCESSING"
    fake.push(
        Reply.text("Hello from OpenRouter").with_chunking(
            Chunking(comment_lines=(processing, processing), comment_between_chunks=processing)
        )
    )
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            async with lynkr_client(make_config(tmp_path, _openrouter_env(upstream))) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    assert "OPENROUTER" not in response.text
    events = sse_events(response.text)
    assert streamed_text(events) == "Hello from OpenRouter"
    assert events[-1][0] == "message_stop"

    sent = only_model_call(fake)
    assert sent.path == "/api/v1/chat/completions"
    assert sent.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert sent.header("http-referer") is not None and sent.header("x-title") == "lynkr"
    assert sent.json["model"] == "anthropic/claude-sonnet-4.5"
    assert not keys_anywhere(sent.json) & ANTHROPIC_ONLY_KEYS


async def test_openrouter_mid_stream_error_reaches_the_client_as_an_sse_error_event(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.mid_stream_error("Provider returned error", after_chunks=3, reply=Reply.text("one two three four")))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, _openrouter_env(upstream))
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
                follow_up = await post_messages(client, cli_like_request(stream=False))
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert streamed_text(events) == "one two "  # what arrived before the error still reached the client
    assert names[-1] == "error"
    error = events[-1][1]
    assert error["type"] == "error"
    assert "Provider returned error" in error["error"]["message"]
    assert "message_stop" not in names
    assert len(fake.model_calls) == 2  # the failed stream was not retried after content reached the client
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "ok"


# -- ollama ---------------------------------------------------------------------------------------------------


async def test_ollama_native_chat_streams_ndjson_and_tool_arguments_arrive_as_objects(tmp_path: Path) -> None:
    write_toml(tmp_path, "[providers.ollama]\nmax_tokens = 2048\n")
    fake = FakeUpstream()
    fake.push(
        Reply.tool_calls(
            ToolCall(name="Bash", arguments={"command": "git status"}),
            ToolCall(name="Bash", arguments={"command": "ls"}),
            text="Let me look.",
        )
    )
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path, {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": upstream, "OLLAMA_MODEL": "qwen3-coder"}
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [block["type"] for block in starts] == ["text", "tool_use", "tool_use"]
    assert [block["name"] for block in starts[1:]] == ["Bash", "Bash"]
    assert len({block["id"] for block in starts[1:]}) == 2
    arguments: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            arguments[data["index"]] = arguments.get(data["index"], "") + data["delta"]["partial_json"]
    assert [json.loads(text) for _, text in sorted(arguments.items())] == [{"command": "git status"}, {"command": "ls"}]
    stop = next(data for name, data in events if name == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"

    sent = only_model_call(fake)
    assert sent.path == "/api/chat"
    assert sent.header("authorization") is None
    assert sent.json["model"] == "qwen3-coder"
    assert sent.json["stream"] is True
    assert sent.json["options"]["num_predict"] == 2048
    assert sent.json["tools"][0]["function"]["name"] == "Bash"
    assert sent.json["options"]["top_k"] == 5  # Ollama samples with top_k: it belongs in options
    assert not keys_anywhere({**sent.json, "options": {}}) & ANTHROPIC_ONLY_KEYS


async def test_ollama_error_line_mid_stream_becomes_an_sse_error_event(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.mid_stream_error("model runner crashed", after_chunks=2, reply=Reply.text("first second third")))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {"OLLAMA_ENDPOINT": upstream, "OLLAMA_MODEL": "qwen3-coder"})
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    events = sse_events(response.text)
    assert streamed_text(events) == "first second "
    assert events[-1][0] == "error"
    assert "model runner crashed" in events[-1][1]["error"]["message"]
    assert len(fake.model_calls) == 1


async def test_ollama_think_is_sent_only_when_configured_and_the_client_asks_for_thinking(tmp_path: Path) -> None:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            write_toml(tmp_path, '[providers.ollama]\noptions = { think = "true" }\n')
            config = make_config(tmp_path, {"OLLAMA_ENDPOINT": upstream, "OLLAMA_MODEL": "qwen3"})
            async with lynkr_client(config) as client:
                thinking = {**cli_like_request(), "thinking": {"type": "adaptive"}}
                no_thinking = {key: value for key, value in cli_like_request().items() if key != "thinking"}
                for body in (thinking, no_thinking):
                    assert (await post_messages(client, body)).status_code == 200
    assert [call.request.json.get("think") for call in fake.model_calls] == [True, None]


async def test_ollama_tool_result_goes_back_as_a_tool_message(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("The repo is clean."))
    request = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "tools": [BASH_TOOL],
        "messages": [
            {"role": "user", "content": "status?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                               "input": {"command": "git status"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": "nothing to commit"}]},
        ],
    }
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {"OLLAMA_ENDPOINT": upstream, "OLLAMA_MODEL": "qwen3-coder"})
            async with lynkr_client(config) as client:
                response = await post_messages(client, request)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "The repo is clean."}]
    messages = only_model_call(fake).json["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == {"command": "git status"}
    assert messages[2]["content"] == "nothing to commit"


# -- openai and anthropic -------------------------------------------------------------------------------------


async def test_openai_strips_anthropic_only_fields_and_maps_the_model(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        '[providers.openai]\nmax_tokens = 8192\nmodels = { "claude-sonnet-*" = "gpt-4.1", small = "gpt-4.1-mini" }\n',
    )
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"{upstream}/v1", "OPENAI_API_KEY": UPSTREAM_KEY},
            )
            async with lynkr_client(config) as client:
                big = await post_messages(client, cli_like_request())
                small = await post_messages(client, cli_like_request(model="claude-haiku-4-5-20251001", stream=False))
    assert big.status_code == 200 and small.status_code == 200
    assert streamed_text(sse_events(big.text)) == "ok"
    assert small.json()["content"] == [{"type": "text", "text": "ok"}]
    first, second = (call.request for call in fake.model_calls)
    assert first.path == "/v1/chat/completions"
    assert first.header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert first.json["model"] == "gpt-4.1"
    assert second.json["model"] == "gpt-4.1-mini"
    assert first.json["max_tokens"] == 8192
    assert first.json["stream_options"] == {"include_usage": True}
    for sent in (first, second):
        assert not keys_anywhere(sent.json) & ANTHROPIC_ONLY_KEYS
        assert sent.json["stream"] is True  # lynkr always streams upstream, even for a non-streaming client


async def test_anthropic_upstream_gets_its_own_key_and_the_request_untouched(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "pwd"}, id="toolu_up_1"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path, {"ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY}
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request(stream=False),
                                               headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["content"] == [{"type": "tool_use", "id": "toolu_up_1", "name": "Bash", "input": {"command": "pwd"}}]
    assert message["stop_reason"] == "tool_use"

    sent = only_model_call(fake)
    assert sent.path == "/v1/messages"
    assert sent.header("x-api-key") == UPSTREAM_KEY
    assert sent.header("anthropic-beta") == "interleaved-thinking-2025-05-14"
    original = cli_like_request()
    for key in ("system", "messages", "tools", "thinking", "context_management", "output_config", "metadata"):
        assert sent.json[key] == original[key], key
    assert sent.json["max_tokens"] == 32000


@pytest.mark.parametrize("kind", ["anthropic", "azure-anthropic", "databricks"])
async def test_anthropic_native_sse_reaches_the_client_byte_for_byte_and_the_log_holds_the_message(
    tmp_path: Path, kind: str
) -> None:
    fake = FakeUpstream()
    reply = Reply.tool_call(name="Bash", arguments={"command": "ls \u00e9"}, id="toolu_up_7", text="Caf\u00e9 \u2603")
    fake.push(reply.with_chunking(Chunking(comment_between_chunks="ping")))
    env = {
        "anthropic": {"ANTHROPIC_UPSTREAM_URL": "{u}", "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY},
        "azure-anthropic": {"MODEL_PROVIDER": "azure-anthropic", "AZURE_ANTHROPIC_ENDPOINT": "{u}/anthropic",
                            "AZURE_ANTHROPIC_API_KEY": UPSTREAM_KEY},
        "databricks": {"MODEL_PROVIDER": "databricks", "DATABRICKS_API_BASE": "{u}", "DATABRICKS_API_KEY": UPSTREAM_KEY,
                       "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/anthropic/v1/messages"},
    }[kind]
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {key: value.format(u=upstream) for key, value in env.items()})
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    [call] = fake.model_calls
    assert call.request.json["stream"] is True
    assert b"\\u00e9" in call.sent  # the fake escapes non-ASCII; a re-encoding proxy would not
    assert response.content == bytes(call.sent)
    [completed] = [event for event in recorded_events(config.data_dir) if isinstance(event, ResponseCompleted)]
    assert completed.message["content"] == [
        {"type": "text", "text": "Caf\u00e9 \u2603"},
        {"type": "tool_use", "id": "toolu_up_7", "name": "Bash", "input": {"command": "ls \u00e9"}},
    ]
    assert completed.message["stop_reason"] == "tool_use"
    assert completed.message["usage"]["output_tokens"] == 5


@pytest.mark.parametrize(
    ("max_tokens", "upstream_streams"), [(1024, False), (4096, False), (4097, True)], ids=["modest", "at", "long"]
)
@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_a_non_streaming_client_with_modest_max_tokens_asks_the_upstream_for_one_json_body(
    tmp_path: Path, kind: str, max_tokens: int, upstream_streams: bool
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "pwd"}, id="toolu_up_2", text="Let me look."))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            env = (
                {"ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY}
                if kind == "anthropic"
                else {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
                      "OPENAI_API_KEY": UPSTREAM_KEY, "OPENAI_MODEL": "gpt-x"}
            )
            config = make_config(tmp_path, env)
            async with lynkr_client(config) as client:
                response = await post_messages(client, {**cli_like_request(stream=False), "max_tokens": max_tokens})
    assert response.status_code == 200, response.text
    message = response.json()
    expected = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_up_2", "name": "Bash", "input": {"command": "pwd"}},
    ]
    assert message["content"] == expected
    assert message["stop_reason"] == "tool_use"
    sent = only_model_call(fake).json
    assert sent["stream"] is upstream_streams
    assert ("stream_options" in sent) is (kind == "openai" and upstream_streams)
    [completed] = [event for event in recorded_events(config.data_dir) if isinstance(event, ResponseCompleted)]
    assert completed.message["content"] == expected


async def test_a_cut_json_answer_is_retried_since_nothing_reached_the_client(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.disconnect_after(1, Reply.text("lost half")), Reply.text("whole answer"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(
                tmp_path,
                {"ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY,
                 "LYNKR_RETRY_BACKOFF_INITIAL_S": "0.01"},
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, {**cli_like_request(stream=False), "max_tokens": 512})
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "whole answer"}]
    assert [call.outcome for call in fake.model_calls] == ["dropped", "completed"]
    assert all(call.request.json["stream"] is False for call in fake.model_calls)


# -- several providers: routing and fallback ------------------------------------------------------------------


def _two_provider_toml(primary: str, backup: str) -> str:
    return f"""
model_provider = "primary"

[providers.primary]
kind = "openai"
endpoint = "{primary}/v1/chat/completions"
api_key = "{UPSTREAM_KEY}"
models = {{ main = "gpt-main" }}
fallback = ["backup"]

[providers.backup]
kind = "ollama"
endpoint = "{backup}"
models = {{ main = "qwen-main", small = "qwen-small" }}

[[routes]]
model = "claude-haiku-*"
provider = "backup"
"""


async def test_routes_send_haiku_requests_to_the_second_provider(tmp_path: Path) -> None:
    primary, backup = FakeUpstream(), FakeUpstream()
    primary.push(Reply.text("from primary"))
    backup.push(Reply.text("from backup"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(primary) as primary_url, serve_fake(backup) as backup_url:
            write_toml(tmp_path, _two_provider_toml(primary_url, backup_url))
            config = make_config(tmp_path)
            async with lynkr_client(config) as client:
                main = await post_messages(client, cli_like_request(stream=False))
                haiku = await post_messages(client, cli_like_request(model="claude-haiku-4-5-20251001", stream=False))
    assert main.json()["content"][0]["text"] == "from primary"
    assert haiku.json()["content"][0]["text"] == "from backup"
    assert only_model_call(primary).json["model"] == "gpt-main"
    assert only_model_call(backup).json["model"] == "qwen-small"
    completed = [event for event in recorded_events(config.data_dir) if isinstance(event, ResponseCompleted)]
    assert [(event.provider, event.model) for event in completed] == [
        ("primary", "claude-sonnet-4-5-20250929"),
        ("backup", "claude-haiku-4-5-20251001"),
    ]


async def test_fallback_chain_serves_from_the_second_provider_when_the_first_keeps_failing(tmp_path: Path) -> None:
    primary, backup = FakeUpstream(), FakeUpstream()
    primary.push(*[Reply.status(503, message="primary is down")] * 3)
    backup.push(Reply.text("rescued by backup"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(primary) as primary_url, serve_fake(backup) as backup_url:
            write_toml(tmp_path, _two_provider_toml(primary_url, backup_url))
            config = make_config(
                tmp_path, {"LYNKR_MAX_RETRIES": "2", "LYNKR_RETRY_BACKOFF_INITIAL_S": "0.01",
                           "LYNKR_RETRY_BACKOFF_MAX_S": "0.02"}
            )
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200, response.text
    assert streamed_text(sse_events(response.text)) == "rescued by backup"
    assert len(primary.model_calls) == 3
    assert only_model_call(backup).json["model"] == "qwen-main"
    attempts = [(e.provider, e.attempt, e.status) for e in recorded_events(config.data_dir) if isinstance(e, UpstreamAttempted)]
    assert attempts == [("primary", 1, 503), ("primary", 2, 503), ("primary", 3, 503), ("backup", 1, 200)]


@pytest.mark.parametrize(
    "env",
    [
        {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": "{upstream}/v1/chat/completions", "OPENAI_MODEL": "m"},
        {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": "{upstream}", "OLLAMA_MODEL": "m"},
        {"MODEL_PROVIDER": "anthropic", "ANTHROPIC_UPSTREAM_URL": "{upstream}", "ANTHROPIC_UPSTREAM_API_KEY": "sk-x"},
    ],
    ids=["openai", "ollama", "anthropic"],
)
async def test_an_upstream_that_ignores_stream_true_still_streams_to_the_client(
    tmp_path: Path, env: dict[str, str]
) -> None:
    fake = FakeUpstream(ignore_stream=True)
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "ls"}, id="call_9", text="Looking."))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {key: value.format(upstream=upstream) for key, value in env.items()})
            async with lynkr_client(config) as client:
                response = await post_messages(client, cli_like_request())
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    assert streamed_text(events) == "Looking."
    [tool] = [data["content_block"] for name, data in events if name == "content_block_start"
              and data["content_block"]["type"] == "tool_use"]
    assert tool["name"] == "Bash"
    deltas = "".join(data["delta"]["partial_json"] for name, data in events
                     if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta")
    assert json.loads(deltas) == {"command": "ls"}
