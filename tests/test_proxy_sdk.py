"""The official ``anthropic`` SDK (AsyncAnthropic) as the client of lynkr: text, tools, count_tokens, errors.

The SDK parses every response into its own types and maps error statuses to its own exception classes, so
these tests check that lynkr speaks the Messages API closely enough for a strict real client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import pytest
import trio
from anthropic.types import MessageParam, ToolParam

from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, Reply, ToolCall, Usage, serve_fake

UPSTREAM_KEY = "sk-upstream-sdk-secret-2024"
TEST_TIMEOUT_S = 10
MODEL = "claude-sonnet-5-5"
HELLO: list[MessageParam] = [{"role": "user", "content": "hello"}]
BASH: ToolParam = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}


def openai_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_MODEL": "gpt-test",
        "LYNKR_MAX_RETRIES": "0",
    }


def anthropic_env(upstream: str) -> dict[str, str]:
    return {"ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY, "LYNKR_MAX_RETRIES": "0"}


@asynccontextmanager
async def sdk(
    tmp_path: Path, fake: FakeUpstream, *, native: bool = False, extra: dict[str, str] | None = None,
    api_key: str = "sk-ant-sdk-client",
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An AsyncAnthropic client (no retries of its own) talking to lynkr in front of ``fake``."""
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            env = anthropic_env(upstream) if native else openai_env(upstream)
            async with running_lynkr(make_config(tmp_path, {**env, **(extra or {})})) as lynkr:
                client = anthropic.AsyncAnthropic(base_url=lynkr.base_url, api_key=api_key, max_retries=0)
                try:
                    yield client
                finally:
                    await client.close()


# -- text -----------------------------------------------------------------------------------------------------


async def test_non_streaming_text_parses_into_a_message(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("Hello from the other side").with_usage(Usage(input_tokens=21, output_tokens=6)))
    async with sdk(tmp_path, fake) as client:
        message = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from the other side"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 21 and message.usage.output_tokens == 6
    assert message._request_id is not None and message._request_id.startswith("req_")


async def test_streaming_text_arrives_piece_by_piece(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("one two three four"), Reply.text("native stream", reasoning="let me think", signature="s1"))
    async with sdk(tmp_path, fake) as client:
        pieces = []
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            async for text in stream.text_stream:
                pieces.append(text)
            message = await stream.get_final_message()
    assert pieces == ["one ", "two ", "three ", "four"]
    assert message.content[0].text == "one two three four"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"


async def test_streaming_thinking_and_text_from_an_anthropic_upstream(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("the answer", reasoning="let me think", signature="sig-abc"))
    async with sdk(tmp_path, fake, native=True) as client:
        async with client.messages.stream(
            model=MODEL, max_tokens=2048, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 1024}
        ) as stream:
            message = await stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "let me think" and thinking.signature == "sig-abc"
    assert fake.model_calls[0].request.json["thinking"] == {"type": "enabled", "budget_tokens": 1024}


# -- tools ----------------------------------------------------------------------------------------------------


async def test_tool_use_round_trip_maps_ids_both_ways(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo hi"}, id="call_sdk_1", text="Running it."),
        Reply.text("It printed hi."),
    )
    async with sdk(tmp_path, fake) as client:
        first = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, tools=[BASH])
        tool_use = next(block for block in first.content if block.type == "tool_use")
        second = await client.messages.create(
            model=MODEL,
            max_tokens=100,
            tools=[BASH],
            messages=[
                *HELLO,
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "hi\n"}]},
            ],
        )
    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["text", "tool_use"]
    assert tool_use.name == "Bash" and tool_use.input == {"command": "echo hi"}
    assert second.content[0].text == "It printed hi."  # type: ignore[union-attr]
    sent = fake.model_calls[1].request.json["messages"]
    assert [message["role"] for message in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == "call_sdk_1"  # lynkr's tool id maps back to the upstream's own
    assert sent[2]["tool_call_id"] == "call_sdk_1"
    assert sent[2]["content"] == "hi\n"


async def test_streamed_tool_calls_build_their_input_from_json_deltas(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_calls(
            ToolCall(name="Bash", arguments={"command": "ls -la", "timeout": 30}, id="call_a"),
            ToolCall(name="Bash", arguments={"command": "pwd"}, id="call_b"),
        )
    )
    async with sdk(tmp_path, fake) as client:
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO, tools=[BASH]) as stream:
            message = await stream.get_final_message()
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [call.input for call in calls] == [{"command": "ls -la", "timeout": 30}, {"command": "pwd"}]
    assert len({call.id for call in calls}) == 2
    assert message.stop_reason == "tool_use"


# -- count_tokens ---------------------------------------------------------------------------------------------


async def test_count_tokens_through_the_sdk(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with sdk(tmp_path, fake) as client:
        small = await client.messages.count_tokens(model=MODEL, messages=HELLO)
        large = await client.messages.count_tokens(
            model=MODEL, messages=HELLO, system="Follow the house style. " * 50, tools=[BASH]
        )
    assert small.input_tokens > 0
    assert large.input_tokens > small.input_tokens + 100


# -- errors ---------------------------------------------------------------------------------------------------


async def test_a_400_from_lynkr_raises_bad_request_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with sdk(tmp_path, fake) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=[])
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert "messages" in body["error"]["message"]
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")
    assert fake.model_calls == []


async def test_an_upstream_429_raises_rate_limit_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(429, message="too many requests"))
    async with sdk(tmp_path, fake) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert caught.value.status_code == 429
    assert "too many requests" in str(caught.value)


@pytest.mark.parametrize("native", [False, True], ids=["openai-upstream", "anthropic-upstream"])
async def test_an_upstream_529_raises_overloaded_error(tmp_path: Path, native: bool) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(529, message="Overloaded"))
    async with sdk(tmp_path, fake, native=native) as client:
        with pytest.raises(anthropic.InternalServerError) as caught:
            async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
                await stream.get_final_message()
    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 529
    body: Any = caught.value.body
    assert body["error"]["type"] == "overloaded_error"


async def test_a_wrong_key_raises_authentication_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with sdk(tmp_path, fake, extra={"LYNKR_API_KEY": "sk-lynkr-right"}, api_key="sk-lynkr-wrong") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        right = client.with_options(api_key="sk-lynkr-right")
        message = await right.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert caught.value.status_code == 401
    assert message.content[0].text == "ok"  # type: ignore[union-attr]
    assert len(fake.model_calls) == 1


async def test_an_upstream_401_raises_authentication_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(401, message="Incorrect API key provided"))
    async with sdk(tmp_path, fake) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert "Incorrect API key provided" in str(caught.value)


async def test_a_mid_stream_error_raises_in_the_sdk_after_the_text_so_far(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.mid_stream_error("upstream fell over", after_chunks=3, reply=Reply.text("alpha beta gamma")))
    async with sdk(tmp_path, fake) as client:
        pieces = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
                async for text in stream.text_stream:
                    pieces.append(text)
    assert pieces == ["alpha ", "beta "]
    body: Any = caught.value.body
    assert "upstream fell over" in body["error"]["message"]
