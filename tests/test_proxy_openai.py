"""/v1/messages through lynkr to a fake OpenAI-format upstream, with the official anthropic SDK as the client."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx

from tests.conftest import make_config, running_lynkr, sse_events, write_toml
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


# -- short tool-call ids (Mistral-family models) --------------------------------------------------------------

SHORT_IDS = "[a-zA-Z0-9]{9}"


async def test_short_tool_call_ids_round_trip_through_an_upstream_that_takes_no_other(tmp_path: Path) -> None:
    write_toml(tmp_path, '[providers.openai]\noptions = { tool_id_scheme = "short9" }\n')
    fake = FakeUpstream(tool_call_ids=SHORT_IDS)
    fake.push(Reply.tool_call(name="Bash", arguments={"command": "ls"}, id="a1B2c3D4e"), Reply.text("done"))
    tools = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]
    # The conversation began on an Anthropic upstream, whose toolu_ id Mistral would refuse.
    earlier = [
        {"role": "user", "content": "list files, twice"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01AbCdEfGhIjKlMnOpQrStUv", "name": "Bash",
                                           "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01AbCdEfGhIjKlMnOpQrStUv",
                                      "content": "a.txt"}]},
    ]
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            first = await client.post("/v1/messages", json={"model": "claude-sonnet-5-5", "max_tokens": 100,
                                                            "messages": earlier, "tools": tools})
            assert first.status_code == 200, first.text
            tool_use = first.json()["content"][0]
            transcript = [*earlier, {"role": "assistant", "content": [tool_use]},
                          {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"],
                                                        "content": "a.txt"}]}]
            second = await client.post("/v1/messages", json={"model": "claude-sonnet-5-5", "max_tokens": 100,
                                                             "messages": transcript, "tools": tools})
    assert tool_use["id"] == "a1B2c3D4e"  # the upstream's id reaches the client as it is
    assert second.status_code == 200, second.text
    assert [exchange.reply is not None for exchange in fake.exchanges] == [True, True]  # nothing was refused
    sent = fake.model_calls[1].request.json["messages"]
    calls = [call["id"] for message in sent for call in message.get("tool_calls", ())]
    results = [message["tool_call_id"] for message in sent if message["role"] == "tool"]
    assert calls == results
    assert calls[1] == "a1B2c3D4e"  # and goes back to the upstream exactly as it issued it
    assert calls[0] != "toolu_01AbCdEfGhIjKlMnOpQrStUv" and len(calls[0]) == 9 and calls[0].isalnum()


async def test_without_the_option_the_strict_fake_refuses_a_toolu_id(tmp_path: Path) -> None:
    fake = FakeUpstream(tool_call_ids=SHORT_IDS)
    transcript = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01Ab", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Ab", "content": "x"}]},
    ]
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            response = await client.post("/v1/messages", json={"model": "claude-sonnet-5-5", "max_tokens": 100,
                                                               "messages": transcript})
    assert response.status_code == 400
    assert "must be a-z, A-Z, 0-9, with a length of 9" in response.json()["error"]["message"]
    assert fake.model_calls == []


# -- structured output ----------------------------------------------------------------------------------------


async def test_structured_output_reaches_the_upstream_as_response_format(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
              "additionalProperties": False}
    fake = FakeUpstream()
    fake.push(Reply.text('{"answer": "42"}'))
    async with serve_fake(fake) as upstream, running_lynkr(make_config(tmp_path, _env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            response = await client.post("/v1/messages", json={
                "model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "answer?"}],
                "output_config": {"format": {"type": "json_schema", "schema": schema}},
            })
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == '{"answer": "42"}'
    sent = fake.model_calls[0].request.json
    assert sent["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}
    }
    assert "output_config" not in sent


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
