"""The fake upstreams speak each wire format, and each scripted fault really happens on the wire."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tests.fakes import (
    Chunking,
    ContextWindow,
    FakeUpstream,
    KnownBetas,
    OutputLimit,
    Reply,
    ToolCall,
    Usage,
    serve_fake,
)


@pytest.fixture
async def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def base_url(fake: FakeUpstream) -> AsyncIterator[str]:
    async with serve_fake(fake) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        yield http


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event; comment lines are skipped."""
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def openai_chunks(text: str) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in sse_events(text) if data != "[DONE]"]


CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


async def test_openai_stream_is_chunked_sse_ending_in_done(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.text("hello brave new world"))
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    assert events[-1] == (None, "[DONE]")
    chunks = openai_chunks(response.text)
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks) == "hello brave new world"
    assert len([chunk for chunk in chunks if chunk["choices"][0]["delta"].get("content")]) == 4
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks)


async def test_openai_usage_chunk_has_no_choices_when_requested(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.text("hi").with_usage(Usage(input_tokens=40, output_tokens=2, cached_tokens=30)))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    chunks = openai_chunks((await client.post("/v1/chat/completions", json=body)).text)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 40
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 30}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_openai_tool_arguments_arrive_in_fragments(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    arguments = {"command": "echo hi > out.txt", "description": "write"}
    reply = Reply.tool_call(name="Bash", arguments=arguments, id="call_1")
    fake.push(reply.with_chunking(Chunking(argument_fragments=5)))
    chunks = openai_chunks((await client.post("/v1/chat/completions", json={**CHAT, "stream": True})).text)
    calls = [call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "call_1" and calls[0]["function"]["name"] == "Bash"
    fragments = [call["function"]["arguments"] for call in calls[1:]]
    assert len(fragments) == 5
    assert json.loads("".join(fragments)) == arguments
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_openai_cumulative_argument_snapshots(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    reply = Reply.tool_call(name="Read", arguments={"file_path": "/etc/hostname"})
    fake.push(reply.with_chunking(Chunking(argument_fragments=3, cumulative_arguments=True)))
    chunks = openai_chunks((await client.post("/v1/chat/completions", json={**CHAT, "stream": True})).text)
    fragments = [
        call["function"]["arguments"]
        for chunk in chunks
        for call in chunk["choices"][0]["delta"].get("tool_calls", [])
        if call["function"]["arguments"]
    ]
    assert len(fragments) == 3
    assert fragments[0] and fragments[1].startswith(fragments[0]) and fragments[2].startswith(fragments[1])
    assert json.loads(fragments[-1]) == {"file_path": "/etc/hostname"}


async def test_openai_several_tool_calls_in_one_chunk(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    reply = Reply.tool_calls(ToolCall(name="A", arguments={"x": 1}), ToolCall(name="B", arguments={"y": 2}))
    fake.push(reply.with_chunking(Chunking(tool_calls_in_one_chunk=True)))
    chunks = openai_chunks((await client.post("/v1/chat/completions", json={**CHAT, "stream": True})).text)
    with_calls = [chunk for chunk in chunks if chunk["choices"][0]["delta"].get("tool_calls")]
    assert len(with_calls) == 1
    calls = with_calls[0]["choices"][0]["delta"]["tool_calls"]
    assert [(call["index"], call["function"]["name"]) for call in calls] == [(0, "A"), (1, "B")]
    assert json.loads(calls[1]["function"]["arguments"]) == {"y": 2}


async def test_openai_reasoning_and_azure_prompt_filter_chunk(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    chunking = Chunking(reasoning_field="reasoning", prompt_filter_first=True)
    fake.push(Reply.text("answer", reasoning="let me think").with_chunking(chunking))
    path = "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    chunks = openai_chunks((await client.post(path, json={**CHAT, "stream": True})).text)
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    reasoning = "".join(chunk["choices"][0]["delta"].get("reasoning", "") for chunk in chunks[1:])
    assert reasoning == "let me think"
    assert fake.requests[0].query_params == {"api-version": ["2024-10-21"]}


async def test_openai_non_streaming_json(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "ls"}, id="c1", text="Let me look."))
    response = await client.post("/serving-endpoints/my-endpoint/invocations", json=CHAT)
    assert response.headers["content-type"] == "application/json"
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "Let me look."
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "Bash", "arguments": '{"command":"ls"}'}
    assert choice["finish_reason"] == "tool_calls"


async def test_anthropic_stream_has_event_lines_in_order(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "ls"}, id="toolu_1", text="Sure.").with_chunking(
            Chunking(argument_fragments=4)
        )
    )
    response = await client.post("/v1/messages?beta=true", json={**MESSAGES, "stream": True})
    events = sse_events(response.text)
    assert all(name == json.loads(data)["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    payloads = [json.loads(data) for _, data in events]
    starts = [p["content_block"] for p in payloads if p["type"] == "content_block_start"]
    assert [block["type"] for block in starts] == ["text", "tool_use"]
    assert starts[1]["id"] == "toolu_1"
    partial = [p["delta"]["partial_json"] for p in payloads if p.get("delta", {}).get("type") == "input_json_delta"]
    assert len(partial) == 4 and json.loads("".join(partial)) == {"command": "ls"}
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"
    assert payloads[0]["message"]["model"] == "claude-test"


async def test_anthropic_thinking_block_carries_signature(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.text("done", reasoning="pondering", signature="sig-123"))
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True})
    deltas = [json.loads(data)["delta"] for name, data in sse_events(response.text) if name == "content_block_delta"]
    assert {"type": "signature_delta", "signature": "sig-123"} in deltas
    assert deltas[0] == {"type": "thinking_delta", "thinking": "pondering"}


async def test_anthropic_json_and_count_tokens(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.text("plain"))
    message = (await client.post("/anthropic/v1/messages", json=MESSAGES)).json()
    assert message["content"] == [{"type": "text", "text": "plain"}]
    assert message["stop_reason"] == "end_turn" and message["id"].startswith("msg_")
    counted = await client.post("/v1/messages/count_tokens?beta=true", json=MESSAGES)
    assert counted.json()["input_tokens"] > 0
    assert len(fake.model_calls) == 1 and len(fake.exchanges) == 2


async def test_count_tokens_can_be_missing_like_on_databricks() -> None:
    fake = FakeUpstream(count_tokens=False)
    async with serve_fake(fake) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/serving-endpoints/anthropic/v1/messages/count_tokens", json=MESSAGES)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_ollama_streams_ndjson_lines(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.tool_call(name="get_weather", arguments={"city": "Oslo"}, text="Checking"))
    async with client.stream("POST", "/api/chat", json={"model": "qwen3", "messages": []}) as response:
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert lines[0]["message"]["content"] == "Checking" and lines[0]["done"] is False
    assert lines[1]["message"]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
    assert lines[-1]["done"] is True and lines[-1]["prompt_eval_count"] == 12


async def test_ollama_non_streaming_and_metadata(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.text("hi", reasoning="hm"))
    answer = (await client.post("/api/chat", json={"model": "qwen3", "messages": [], "stream": False})).json()
    assert answer["message"] == {"role": "assistant", "content": "hi", "thinking": "hm"} and answer["done"] is True
    assert (await client.get("/api/version")).json()["version"]
    assert (await client.get("/api/tags")).json()["models"][0]["name"] == "fake-model"


async def test_status_replies_carry_retry_after_and_provider_bodies(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.push(Reply.status(429, retry_after=1), Reply.status(529, message="busy"), Reply.status(500))
    limited = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    overloaded = await client.post("/v1/messages", json={**MESSAGES, "stream": True})
    assert overloaded.status_code == 529
    assert overloaded.json()["error"] == {"type": "overloaded_error", "message": "busy"}
    broken = await client.post("/api/chat", json={"model": "m", "messages": []})
    assert broken.status_code == 500 and "error" in broken.json()


async def test_disconnect_after_breaks_the_chunked_stream(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.disconnect_after(3, reply=Reply.text("one two three four five")))
    received: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
            async for chunk in response.aiter_bytes():
                received.append(chunk)
    text = b"".join(received).decode()
    assert len(sse_events(text)) == 3 and "[DONE]" not in text
    assert fake.exchanges[0].outcome == "dropped"


async def test_disconnect_cuts_a_json_body_in_half(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.disconnect_after(1))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/v1/messages", json=MESSAGES)
    # The next request opens a new connection and is served normally.
    assert (await client.post("/v1/messages", json=MESSAGES)).json()["content"][0]["text"] == "ok"


async def test_mid_stream_error_and_sse_comments(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    chunking = Chunking(comment_lines=(": OPENROUTER PROCESSING",), comment_between_chunks="OPENROUTER PROCESSING")
    text = Reply.text("a b c d").with_chunking(chunking)
    fake.push(Reply.mid_stream_error("provider died", after_chunks=2, reply=text))
    response = await client.post("/api/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.text.startswith(": OPENROUTER PROCESSING\n\n")
    chunks = openai_chunks(response.text)
    assert len(chunks) == 3 and "[DONE]" not in response.text
    assert chunks[-1]["error"]["message"] == "provider died"
    assert chunks[-1]["choices"][0]["finish_reason"] == "error"


async def test_anthropic_mid_stream_error_is_an_error_event(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.mid_stream_error("Overloaded", after_chunks=1))
    events = sse_events((await client.post("/v1/messages", json={**MESSAGES, "stream": True})).text)
    assert [name for name, _ in events] == ["message_start", "error"]
    assert json.loads(events[1][1])["error"]["type"] == "overloaded_error"


async def test_slow_first_byte_and_delay_between_chunks(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    fake.push(Reply.slow_first_byte(0.3), Reply.delay_between_chunks(0.1, reply=Reply.text("a b c")))
    started = time.monotonic()
    await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert time.monotonic() - started >= 0.3
    arrivals = []
    async with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
        async for _ in response.aiter_lines():
            arrivals.append(time.monotonic())
    # 5 events (role, a, b, c, finish) + [DONE]: five gaps of 0.1 s.
    assert arrivals[-1] - arrivals[0] >= 0.45


async def test_client_disconnect_is_noticed_at_once(fake: FakeUpstream, base_url: str) -> None:
    fake.push(Reply.slow_first_byte(30), Reply.delay_between_chunks(30, reply=Reply.text("a b")))
    for _ in range(2):
        async with httpx.AsyncClient(base_url=base_url) as http, trio.open_nursery() as nursery:

            async def call(http: httpx.AsyncClient = http) -> None:
                async with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
                    async for _ in response.aiter_bytes():
                        pass

            nursery.start_soon(call)
            [*_, exchange] = await fake.wait_for_model_calls(len(fake.model_calls) + 1)
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        gone = time.monotonic()
        with trio.fail_after(1):
            await exchange.ended.wait()
        assert exchange.outcome == "client_disconnected"
        assert exchange.client_disconnected_at is not None
        assert exchange.client_disconnected_at - gone < 0.1


async def test_requests_are_recorded_and_script_falls_back_to_default(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.push(Reply.text("first"))
    await client.post("/v1/chat/completions?x=1", json=CHAT, headers={"Authorization": "Bearer sk-test"})
    second = await client.post("/v1/chat/completions", json=CHAT)
    assert second.json()["choices"][0]["message"]["content"] == "ok"
    first = fake.requests[0]
    assert first.method == "POST" and first.path == "/v1/chat/completions" and first.query == "x=1"
    assert first.header("Authorization") == "Bearer sk-test"
    assert first.json == CHAT
    assert fake.pending == 0
    assert fake.requests[1].received_at >= first.received_at


async def test_http2_prior_knowledge_streams(fake: FakeUpstream, base_url: str) -> None:
    fake.push(Reply.text("over h2"))
    async with httpx.AsyncClient(base_url=base_url, http1=False, http2=True) as http:
        response = await http.post("/v1/messages", json={**MESSAGES, "stream": True})
    assert response.http_version == "HTTP/2"
    assert [name for name, _ in sse_events(response.text)][-1] == "message_stop"


async def test_limits_refuse_only_what_breaks_them_and_leave_the_script_alone() -> None:
    fake = FakeUpstream(
        limits=(OutputLimit(16384, wording="azure-openai"), KnownBetas({"claude-code-20250219"}, wording="anthropic"))
    )
    fake.push(Reply.text("scripted"))
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    async with serve_fake(fake) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        too_many = await http.post("/openai/deployments/d/chat/completions", json={**chat, "max_tokens": 32000})
        unknown_beta = await http.post(
            "/v1/messages",
            json={**chat, "max_tokens": 10},
            headers={"anthropic-beta": "claude-code-20250219,brand-new"},
        )
        fits = await http.post("/v1/chat/completions", json={**chat, "max_completion_tokens": 16384})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["message"] == (
        "max_tokens is too large: 32000. This model supports at most 16384 completion tokens, whereas you "
        "provided 32000."
    )
    assert unknown_beta.status_code == 400
    message = unknown_beta.json()["error"]["message"]
    assert message.startswith("Unexpected value(s) `brand-new` for the `anthropic-beta`")
    assert fits.status_code == 200
    assert fits.json()["choices"][0]["message"]["content"] == "scripted", "refusals did not consume the script"
    assert [exchange.reply.http_status for exchange in fake.refusals if exchange.reply] == [400, 400]


@pytest.mark.parametrize("wording", ["openai", "vllm", "openrouter", "llama.cpp", "ollama"])
async def test_context_window_refuses_a_long_input(wording: str) -> None:
    fake = FakeUpstream(limits=(ContextWindow(100, wording=wording),))  # type: ignore[arg-type]
    request = {"model": "m", "messages": [{"role": "user", "content": "x" * 2000}], "max_tokens": 10}
    async with serve_fake(fake) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        long = await http.post("/v1/chat/completions", json=request)
        short_request = {**request, "messages": [{"role": "user", "content": "x"}]}
        short = await http.post("/v1/chat/completions", json=short_request)
    assert (long.status_code, short.status_code) == (400, 200)
    assert "context" in long.text
