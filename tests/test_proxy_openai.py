"""/v1/messages through lynkr to a fake OpenAI-format upstream, with the official anthropic SDK as the client."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx

from tests.conftest import make_config, running_lynkr, sse_events
from tests.fakes import FakeUpstream, Reply, serve_fake


def _env(base_url: str) -> dict[str, str]:
    return {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"{base_url}/v1/chat/completions",
            "OPENAI_API_KEY": "sk-upstream-secret-1234", "OPENAI_MODEL": "gpt-test"}


async def test_streamed_text_reaches_the_sdk(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("Hello from upstream"))
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        client = anthropic.AsyncAnthropic(base_url=lynkr.base_url, api_key="anything", max_retries=0)
        async with client.messages.stream(
            model="claude-sonnet-5-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        await client.close()
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from upstream"  # type: ignore[union-attr]
    sent = fake.model_calls[0].request
    assert sent.json["model"] == "gpt-test"
    assert sent.header("authorization") == "Bearer sk-upstream-secret-1234"


async def test_tool_call_round_trip_non_streaming(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "echo hi > out.txt"}, id="call_1"))
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            response = await client.post(
                "/v1/messages?beta=true",
                json={"model": "claude-sonnet-5-5", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "make a file"}],
                      "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]},
            )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stop_reason"] == "tool_use"
    assert body["content"][0]["type"] == "tool_use"
    assert body["content"][0]["input"] == {"command": "echo hi > out.txt"}
    assert response.headers["request-id"].startswith("req_")


async def test_a_burst_of_hundreds_of_chunks_arrives_whole_in_order_and_framed(tmp_path: Path) -> None:
    # Every word is its own upstream chunk, sent back to back: lynkr converts what one read brings and writes it
    # to the client together, and must still hand over every event intact and in order.
    words = [f"w{index:03d}\u00e9 " for index in range(300)]
    fake = FakeUpstream()
    fake.push(Reply.text("".join(words)))
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            response = await client.post(
                "/v1/messages",
                json={"model": "claude-sonnet-5-5", "max_tokens": 100, "stream": True,
                      "messages": [{"role": "user", "content": "count"}]},
            )
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)  # every frame whole: its event line matches its data
    deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert "".join(deltas) == "".join(words)
    assert len(deltas) == 300
