"""The prompt cache end to end: a real daemon in front of a fake Anthropic upstream that counts its calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.cache.events import CacheEvicted, CacheHit, CacheMiss, CacheStored
from lynkr.config import Config
from lynkr.events.catalog import ResponseCompleted
from tests.conftest import make_config, recorded, recorded_events, running_lynkr, sse_events
from tests.fakes import Faults, FakeUpstream, Reply, ToolCall, Usage, serve_fake

TEST_TIMEOUT_S = 20


def cli_request(*, billing: str, stream: bool = True, text: str = "say hi") -> dict[str, Any]:
    """Shaped like a Claude Code request: a billing line that changes every time, metadata, cache markers."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1.332.{billing}; cc_entrypoint=cli;"},
            {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}
        ],
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "session_id": f"s-{billing}"})},
    }


def anthropic_env(upstream: str, **extra: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "anthropic",
        "ANTHROPIC_UPSTREAM_URL": upstream,
        "ANTHROPIC_UPSTREAM_API_KEY": "sk-upstream-0001",
        "LYNKR_MAX_RETRIES": "0",
        **extra,
    }


@asynccontextmanager
async def lynkr_client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
        yield client


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/messages?beta=true", json=body, headers={"anthropic-version": "2023-06-01"})


async def metric(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def wait_for_entries(client: httpx.AsyncClient, entries: int) -> None:
    """An answer is kept once its store is on disk, a moment after the client got it."""
    with trio.fail_after(5):
        while await metric(client, "lynkr_prompt_cache_entries") != entries:
            await trio.sleep(0.01)


def message_of_stream(text: str) -> dict[str, Any]:
    """The message a stream describes, folded the way a client does."""
    events = sse_events(text)
    assert [name for name, _ in events][-1] == "message_stop"
    message: dict[str, Any] = dict(events[0][1]["message"])
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in events:
        if name == "content_block_start":
            blocks[data["index"]] = dict(data["content_block"])
        elif name == "content_block_delta":
            delta, block = data["delta"], blocks[data["index"]]
            for source, target in (("text", "text"), ("thinking", "thinking"), ("signature", "signature"),
                                   ("partial_json", "partial_json")):
                if source in delta:
                    block[target] = block.get(target, "") + delta[source] if target != "signature" else delta[source]
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"] = {**message["usage"], **data["usage"]}
    for block in blocks.values():
        if "partial_json" in block:
            block["input"] = json.loads(block.pop("partial_json"))
    message["content"] = [blocks[index] for index in sorted(blocks)]
    return message


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "non-streaming"])
async def test_the_same_request_twice_is_answered_once_by_the_upstream(tmp_path: Path, stream: bool) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_calls(ToolCall(name="Bash", arguments={"command": "ls"}, id="toolu_01"), text="Let me look.")
        .with_usage(Usage(input_tokens=900, output_tokens=40))
    )
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream, lynkr_client(make_config(tmp_path, anthropic_env(upstream))) as client:
            first = await post(client, cli_request(billing="a1f", stream=stream))
            assert first.status_code == 200, first.text
            await wait_for_entries(client, 1)
            second = await post(client, cli_request(billing="9e0", stream=stream))
            assert second.status_code == 200, second.text

    assert len(fake.model_calls) == 1
    if stream:
        assert second.headers["content-type"].startswith("text/event-stream")
        # The hit is whole at once: it says its length instead of streaming in chunks.
        assert int(second.headers["content-length"]) == len(second.content)
        assert "transfer-encoding" not in second.headers
        live, cached = message_of_stream(first.text), message_of_stream(second.text)
    else:
        live, cached = first.json(), second.json()
    assert cached["content"] == live["content"]
    assert json.dumps(cached["content"]).encode() == json.dumps(live["content"]).encode()
    assert (cached["id"], cached["model"], cached["stop_reason"]) == (live["id"], live["model"], "tool_use")
    assert live["usage"]["input_tokens"] == 900
    assert cached["usage"]["input_tokens"] == 0
    assert cached["usage"]["cache_read_input_tokens"] == 900
    assert cached["usage"]["output_tokens"] == live["usage"]["output_tokens"] == 40

    events = recorded_events(tmp_path / "data")
    assert [type(e) for e in events if isinstance(e, (CacheMiss, CacheStored, CacheHit))] == [
        CacheMiss, CacheStored, CacheHit
    ]
    completed = [e for e in events if isinstance(e, ResponseCompleted)]
    assert [e.provider for e in completed] == ["anthropic", "prompt-cache"]


async def test_a_streamed_answer_serves_a_non_streaming_client_and_the_other_way_round(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("streamed once"), Reply.text("whole once"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream, lynkr_client(make_config(tmp_path, anthropic_env(upstream))) as client:
            await post(client, cli_request(billing="1", stream=True, text="one"))
            await post(client, cli_request(billing="2", stream=False, text="two"))
            await wait_for_entries(client, 2)
            whole = await post(client, cli_request(billing="3", stream=False, text="one"))
            streamed = await post(client, cli_request(billing="4", stream=True, text="two"))
    assert len(fake.model_calls) == 2
    assert whole.json()["content"] == [{"type": "text", "text": "streamed once"}]
    assert message_of_stream(streamed.text)["content"] == [{"type": "text", "text": "whole once"}]


@pytest.mark.parametrize(
    "reply",
    [
        Reply.status(400, message="prompt is too long"),
        Reply.status(529, message="overloaded"),
        Reply.text("I can't help with that.").with_stop("refusal"),
        Reply.text("cut off in the middle of a sentence").with_faults(Faults(disconnect_after=4)),
    ],
    ids=["error", "overloaded", "refusal", "incomplete-stream"],
)
async def test_errors_refusals_and_incomplete_streams_are_never_kept(tmp_path: Path, reply: Reply) -> None:
    fake = FakeUpstream()
    fake.push(reply, Reply.text("a real answer"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream, lynkr_client(make_config(tmp_path, anthropic_env(upstream))) as client:
            await post(client, cli_request(billing="1"))
            await trio.sleep(0.1)  # a store would be on disk by now
            assert await metric(client, "lynkr_prompt_cache_entries") == 0
            second = await post(client, cli_request(billing="2"))
            await wait_for_entries(client, 1)
    assert len(fake.model_calls) == 2, "the second request went upstream"
    assert message_of_stream(second.text)["content"] == [{"type": "text", "text": "a real answer"}]
    stored = [e for e in recorded_events(tmp_path / "data") if isinstance(e, CacheStored)]
    assert [e.request_id for e in stored] == [second.headers["request-id"]], "only the real answer was kept"


async def test_agent_loop_turns_are_never_cached(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("first"), Reply.text("second"))
    env = anthropic_env("", TOOL_EXECUTION_MODE="server")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            env["ANTHROPIC_UPSTREAM_URL"] = upstream
            async with lynkr_client(make_config(tmp_path, env)) as client:
                first = await post(client, cli_request(billing="1", stream=False))
                await trio.sleep(0.1)
                second = await post(client, cli_request(billing="2", stream=False))
    assert [first.json()["content"][0]["text"], second.json()["content"][0]["text"]] == ["first", "second"]
    cache_events = [e for e in recorded_events(tmp_path / "data") if type(e).TYPE.startswith("cache.")]
    assert cache_events == []


async def test_disabled_cache_asks_the_upstream_every_time_and_records_nothing(tmp_path: Path) -> None:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, PROMPT_CACHE_ENABLED="false"))
            async with lynkr_client(config) as client:
                for billing in ("1", "2"):
                    assert (await post(client, cli_request(billing=billing))).status_code == 200
                    await trio.sleep(0.05)
    assert len(fake.model_calls) == 2
    assert not [r for r in recorded(tmp_path / "data") if r.stream == "cache"]


async def test_the_least_recently_used_answer_is_evicted_beyond_the_entry_budget(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("one"), Reply.text("two"), Reply.text("three"), Reply.text("one again"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, PROMPT_CACHE_MAX_ENTRIES="2"))
            async with lynkr_client(config) as client:
                await post(client, cli_request(billing="1", text="one"))
                await wait_for_entries(client, 1)
                await post(client, cli_request(billing="2", text="two"))
                await wait_for_entries(client, 2)
                await post(client, cli_request(billing="3", text="two"))  # a hit: "one" is now the oldest
                await post(client, cli_request(billing="4", text="three"))
                # Two start-up events; per miss request.received, cache.miss, upstream.attempted,
                # response.completed and cache.stored; per hit request.received, cache.hit and response.completed;
                # then the eviction "three" caused.
                with trio.fail_after(5):
                    while await metric(client, "lynkr_eventlog_events_total") < 2 + 3 * 5 + 3 + 1:
                        await trio.sleep(0.01)
                again = await post(client, cli_request(billing="5", text="one"))
    assert message_of_stream(again.text)["content"] == [{"type": "text", "text": "one again"}]
    assert len(fake.model_calls) == 4
    evicted = [e for e in recorded_events(tmp_path / "data") if isinstance(e, CacheEvicted)]
    assert [e.reason for e in evicted][:1] == ["entries"]


async def test_a_restarted_daemon_holds_the_same_entries_and_serves_them(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("one"), Reply.text("two"), Reply.text("three"), Reply.text("one again"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, PROMPT_CACHE_MAX_ENTRIES="2"))
            async with lynkr_client(config) as client:
                for count, text in enumerate(("one", "two", "three"), start=1):
                    await post(client, cli_request(billing=str(count), text=text))
                    await wait_for_entries(client, min(count, 2))
                # "one" went for "three"; its eviction follows the store.  Two start-up events, then per request
                # request.received, cache.miss, upstream.attempted, response.completed and cache.stored.
                with trio.fail_after(5):
                    while await metric(client, "lynkr_eventlog_events_total") < 2 + 3 * 5 + 1:
                        await trio.sleep(0.01)
                before = (await metric(client, "lynkr_prompt_cache_bytes"))
            assert len(fake.model_calls) == 3
            async with lynkr_client(config) as client:  # the same data folder
                assert await metric(client, "lynkr_prompt_cache_entries") == 2
                assert await metric(client, "lynkr_prompt_cache_bytes") == before
                two = await post(client, cli_request(billing="5", text="two"))
                three = await post(client, cli_request(billing="6", text="three", stream=False))
                assert len(fake.model_calls) == 3, "both answered from the rebuilt cache"
                one = await post(client, cli_request(billing="7", text="one"))
    assert message_of_stream(two.text)["content"] == [{"type": "text", "text": "two"}]
    assert three.json()["content"] == [{"type": "text", "text": "three"}]
    assert message_of_stream(one.text)["content"] == [{"type": "text", "text": "one again"}], "evicted stays evicted"
    evicted = [e for e in recorded_events(tmp_path / "data") if isinstance(e, CacheEvicted)]
    assert [e.reason for e in evicted][:1] == ["entries"]


async def test_the_ttl_holds_across_a_restart(tmp_path: Path) -> None:
    ttl_s = 3.0  # room for a restart on a loaded machine; the test sleeps it out once
    fake = FakeUpstream()
    fake.push(Reply.text("fresh"), Reply.text("after expiry"), Reply.text("kept again"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, PROMPT_CACHE_TTL_MS=str(int(ttl_s * 1000))))
            async with lynkr_client(config) as client:
                await post(client, cli_request(billing="1"))
                await wait_for_entries(client, 1)
            stored_at = trio.current_time()
            async with lynkr_client(config) as client:
                within = await post(client, cli_request(billing="2"))
                assert trio.current_time() - stored_at < ttl_s, "the machine was too slow to test within the TTL"
            assert len(fake.model_calls) == 1
            await trio.sleep_until(stored_at + ttl_s + 0.1)
            async with lynkr_client(config) as client:
                assert await metric(client, "lynkr_prompt_cache_entries") == 0, "an expired entry never comes back"
                expired = await post(client, cli_request(billing="3"))
    assert message_of_stream(within.text)["content"] == [{"type": "text", "text": "fresh"}]
    assert message_of_stream(expired.text)["content"] == [{"type": "text", "text": "after expiry"}]
    assert len(fake.model_calls) == 2


async def test_a_cache_with_no_room_is_off(tmp_path: Path) -> None:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, PROMPT_CACHE_MAX_ENTRIES="0"))
            async with lynkr_client(config) as client:
                for billing in ("1", "2"):
                    assert (await post(client, cli_request(billing=billing))).status_code == 200
                health = (await client.get("/health")).json()
    assert "cache" not in health["actors"]
    assert len(fake.model_calls) == 2
    assert not [r for r in recorded(tmp_path / "data") if r.stream == "cache"]
