"""The HTTP edge of the Messages API: validation, limits, routes, auth, health, metrics, h2c and session ids.

Everything here runs through a real daemon on loopback; a fake upstream stands in for the provider where a
request has to get that far.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from lynkr.config import Config
from lynkr.events.catalog import RequestReceived
from lynkr.wire.tokens import estimate_tokens
from tests.conftest import make_config, recorded, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake

UPSTREAM_KEY = "sk-upstream-edge-secret-5150"
TEST_TIMEOUT_S = 10
# What the CLI and the SDKs send with every body; a bare byte stream would be refused as not JSON (415).
JSON_HEADERS = {"content-type": "application/json"}

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hello"}],
}


def openai_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_MODEL": "gpt-test",
    }


@asynccontextmanager
async def edge(tmp_path: Path, env: dict[str, str] | None = None) -> AsyncIterator[tuple[httpx.AsyncClient, Config]]:
    """A daemon in front of a fake OpenAI upstream (unless ``env`` configures otherwise), and a client for it."""
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream) if env is None else env)
            async with running_lynkr(config) as lynkr:
                async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
                    yield client, config


def error_of(response: httpx.Response, status: int, error_type: str) -> str:
    """The error message, after checking the status, the Anthropic error shape and the request id."""
    assert response.status_code == status, response.text
    request_id = response.headers.get("request-id", "")
    assert request_id.startswith("req_")
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == request_id
    message: str = body["error"]["message"]
    return message


# -- validation and limits ------------------------------------------------------------------------------------


async def test_malformed_json_is_a_400_that_says_so(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        response = await client.post(
            "/v1/messages", content=b'{"model": "x", "max_tokens": 5,', headers={"content-type": "application/json"}
        )
        not_an_object = await client.post("/v1/messages", json=["a", "list"])
    assert "not valid JSON" in error_of(response, 400, "invalid_request_error")
    assert "JSON object" in error_of(not_an_object, 400, "invalid_request_error")


async def test_structurally_wrong_request_names_the_field_path(tmp_path: Path) -> None:
    bad_tool_result = {
        **REQUEST,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "output"}]}],
    }
    no_max_tokens = {key: value for key, value in REQUEST.items() if key != "max_tokens"}
    bad_role = {**REQUEST, "messages": [{"role": "robot", "content": "hi"}]}
    async with edge(tmp_path) as (client, _):
        tool_result = await client.post("/v1/messages", json=bad_tool_result)
        missing = await client.post("/v1/messages", json=no_max_tokens)
        role = await client.post("/v1/messages", json=bad_role)
    assert error_of(tool_result, 400, "invalid_request_error").startswith("messages.0.content.0.tool_use_id:")
    assert error_of(missing, 400, "invalid_request_error").startswith("max_tokens:")
    assert error_of(role, 400, "invalid_request_error").startswith("messages.0.role:")


async def test_body_over_the_limit_is_413_request_too_large(tmp_path: Path) -> None:
    async def chunked_body() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {**openai_env(upstream), "LYNKR_MAX_BODY_BYTES": "4096"})
            async with running_lynkr(config) as lynkr:
                async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
                    padded = {**REQUEST, "system": "x" * 5000}
                    declared = await client.post("/v1/messages", json=padded)
                    streamed = await client.post("/v1/messages", content=chunked_body(), headers=JSON_HEADERS)
                    small = await client.post("/v1/messages", json=REQUEST)
    assert "LYNKR_MAX_BODY_BYTES" in error_of(declared, 413, "request_too_large")
    assert "LYNKR_MAX_BODY_BYTES" in error_of(streamed, 413, "request_too_large")
    assert small.status_code == 200
    assert len(fake.model_calls) == 1


async def test_unknown_routes_are_404_not_found_error(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        for method, path in (("GET", "/v2/anything"), ("POST", "/v1/complete"), ("DELETE", "/v1/messages")):
            response = await client.request(method, path)
            assert path in error_of(response, 404, "not_found_error")


async def test_every_response_carries_a_request_id(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        responses = [
            await client.post("/v1/messages", json=REQUEST),
            await client.post("/v1/messages", json={**REQUEST, "stream": True}),
            await client.post("/v1/messages", content=b"{"),
            await client.get("/nowhere"),
            await client.head("/"),
            await client.get("/v1/models"),
            await client.post("/v1/messages/count_tokens", json=REQUEST),
            await client.get("/health"),
            await client.get("/metrics"),
        ]
    ids = [response.headers.get("request-id") for response in responses]
    assert all(request_id and re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ids), ids
    assert len(set(ids)) == len(ids)


# -- routes the CLI uses --------------------------------------------------------------------------------------


async def test_head_on_the_root_and_on_a_prefix_is_200(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        for path in ("/", "/some/prefix", "/some/prefix/", "/api/hello"):
            response = await client.head(path)
            assert response.status_code == 200, path
            assert response.content == b""


async def test_a_path_prefix_and_the_beta_query_reach_the_messages_route(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        whole = await client.post("/some/prefix/v1/messages?beta=true", json=REQUEST)
        streamed = await client.post("/some/prefix/v1/messages?beta=true", json={**REQUEST, "stream": True})
        counted = await client.post("/some/prefix/v1/messages/count_tokens?beta=true", json=REQUEST)
    assert whole.status_code == 200 and whole.json()["content"] == [{"type": "text", "text": "ok"}]
    assert streamed.status_code == 200 and "event: message_stop" in streamed.text
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0


async def test_models_list_and_lookup(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        listing = await client.get("/v1/models?limit=1000")
        one = await client.get("/v1/models/claude-sonnet-4-5-20250929")
        missing = await client.get("/v1/models/no-such-model")
        prefixed = await client.get("/gateway/v1/models")
    assert listing.status_code == 200
    page = listing.json()
    ids = [model["id"] for model in page["data"]]
    assert "claude-sonnet-4-5-20250929" in ids
    assert all(model["type"] == "model" and model["display_name"] for model in page["data"])
    assert page["has_more"] is False
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])
    assert one.status_code == 200
    assert one.json()["id"] == "claude-sonnet-4-5-20250929" and one.json()["type"] == "model"
    assert "no-such-model" in error_of(missing, 404, "not_found_error")
    assert prefixed.json() == page


async def test_event_logging_batch_is_accepted(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        response = await client.post("/api/event_logging/batch", json={"events": [{"event_type": "x"}]})
    assert response.status_code == 200
    assert response.json() == {}


# -- count_tokens ---------------------------------------------------------------------------------------------


async def test_count_tokens_estimate_grows_with_system_tools_and_messages(tmp_path: Path) -> None:
    base: dict[str, Any] = {"model": REQUEST["model"], "messages": [{"role": "user", "content": "hello there"}]}
    with_system = {**base, "system": "You are a careful assistant. " * 40}
    tool = {
        "name": "Bash",
        "description": "Run a shell command in the workspace and return its output. " * 5,
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }
    with_tools = {**with_system, "tools": [tool, {**tool, "name": "Shell"}]}
    with_turns = {
        **with_tools,
        "messages": [
            *base["messages"],
            {"role": "assistant", "content": "Sure, what should I run?"},
            {"role": "user", "content": "List every file in the repository, recursively, with sizes."},
        ],
    }
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            async with running_lynkr(make_config(tmp_path, openai_env(upstream))) as lynkr:
                async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
                    counts = []
                    for body in (base, with_system, with_tools, with_turns):
                        response = await client.post("/v1/messages/count_tokens?beta=true", json=body)
                        assert response.status_code == 200, response.text
                        assert list(response.json()) == ["input_tokens"]
                        counts.append(response.json()["input_tokens"])
    assert 0 < counts[0] < counts[1] < counts[2] < counts[3]
    assert counts[1] - counts[0] > 100  # 1200 characters of system prompt are not free
    assert fake.exchanges == []  # an OpenAI-format upstream has no count endpoint: nothing was sent


async def test_count_tokens_asks_an_anthropic_native_upstream(tmp_path: Path) -> None:
    counting, not_counting = FakeUpstream(), FakeUpstream(count_tokens=False)
    body = {"model": REQUEST["model"], "messages": REQUEST["messages"], "system": "Be brief."}
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(counting) as up_counting, serve_fake(not_counting) as up_not_counting:
            answers = []
            for index, upstream in enumerate((up_counting, up_not_counting)):
                env = {"ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY}
                folder = tmp_path / str(index)
                folder.mkdir()
                async with running_lynkr(make_config(folder, env)) as lynkr:
                    async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
                        response = await client.post(
                            "/v1/messages/count_tokens?beta=true",
                            json=body,
                            headers={"anthropic-version": "2023-06-01", "anthropic-beta": "token-counting-2024-11-01"},
                        )
                        assert response.status_code == 200, response.text
                        answers.append(response.json()["input_tokens"])
    (asked,) = counting.requests
    assert asked.method == "POST" and asked.path == "/v1/messages/count_tokens"
    assert asked.header("x-api-key") == UPSTREAM_KEY
    assert asked.header("anthropic-beta") == "token-counting-2024-11-01"
    assert asked.json["messages"] == body["messages"] and asked.json["system"] == "Be brief."
    assert answers[0] == max(1, len(asked.body) // 4)  # the fake's own count, not lynkr's estimate
    # An upstream answering 404 (as Databricks does) falls back to the offline estimate.
    assert [request.path for request in not_counting.requests] == ["/v1/messages/count_tokens"]
    assert answers[1] == estimate_tokens(body)


# -- configuration and auth -----------------------------------------------------------------------------------


async def test_no_provider_configured_gives_an_error_naming_the_variables(tmp_path: Path) -> None:
    async with edge(tmp_path, env={}) as (client, _):
        response = await client.post("/v1/messages", json=REQUEST)
        streamed = await client.post("/v1/messages", json={**REQUEST, "stream": True})
        health = await client.get("/health")
        counted = await client.post("/v1/messages/count_tokens", json=REQUEST)
    for answer in (response, streamed):
        assert answer.status_code >= 500
        message = answer.json()["error"]["message"]
        for name in ("MODEL_PROVIDER", "DATABRICKS_API_BASE", "OLLAMA_MODEL", "lynkr.toml"):
            assert name in message, name
    assert health.status_code == 200
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0


async def test_lynkr_api_key_is_required_when_set(tmp_path: Path) -> None:
    key = "sk-lynkr-local-key-777"
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            # The prompt cache off: both accepted requests must reach the upstream for the count below.
            config = make_config(
                tmp_path, {**openai_env(upstream), "LYNKR_API_KEY": key, "PROMPT_CACHE_ENABLED": "false"}
            )
            async with running_lynkr(config) as lynkr:
                async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
                    missing = await client.post("/v1/messages", json=REQUEST)
                    wrong = await client.post("/v1/messages", json=REQUEST, headers={"x-api-key": "sk-wrong"})
                    count = await client.post("/v1/messages/count_tokens", json=REQUEST)
                    models = await client.get("/v1/models")
                    by_header = await client.post("/v1/messages", json=REQUEST, headers={"x-api-key": key})
                    by_bearer = await client.post(
                        "/v1/messages", json=REQUEST, headers={"authorization": f"Bearer {key}"}
                    )
                    health = await client.get("/health")
    for refused in (missing, wrong, count, models):
        assert "LYNKR_API_KEY" in error_of(refused, 401, "authentication_error")
    assert by_header.status_code == 200 and by_bearer.status_code == 200
    assert len(fake.model_calls) == 2  # refused requests never reached the upstream
    assert health.status_code == 200


# -- observability --------------------------------------------------------------------------------------------


async def test_health_reports_every_actor_with_its_mailbox(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        await client.post("/v1/messages", json=REQUEST)
        response = await client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["ready"] is True
    assert health["uptime_s"] >= 0 and health["version"]
    actors = health["actors"]
    assert {"recorder", "providers", "session", "edge"} <= set(actors)
    for name in ("recorder", "providers", "session"):
        actor = actors[name]
        assert actor["running"] is True and actor["restarts"] == 0
        mailbox = actor["mailbox"]
        assert set(mailbox) >= {"capacity", "depth", "peak_depth", "received"}
        assert 0 <= mailbox["depth"] <= mailbox["peak_depth"] <= mailbox["capacity"]
    assert actors["session"]["mailbox"]["received"] >= 1
    assert actors["providers"]["mailbox"]["received"] >= 1


@attrs.frozen
class PromSample:
    name: str
    labels: dict[str, str]
    value: float


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
_SAMPLE_LINE = re.compile(rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? (\S+)$")
_HELP_LINE = re.compile(rf"^# HELP ({_NAME}) .*$")
_TYPE_LINE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


def parse_prometheus(text: str) -> tuple[dict[str, str], list[PromSample]]:
    """Check the text exposition format line by line; return the declared types and the samples."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: list[PromSample] = []
    for line in text.splitlines():
        if line.startswith("# HELP"):
            assert _HELP_LINE.match(line), line
        elif line.startswith("# TYPE"):
            match = _TYPE_LINE.match(line)
            assert match, line
            assert match.group(1) not in types, f"TYPE declared twice: {line}"
            types[match.group(1)] = match.group(2)
        else:
            match = _SAMPLE_LINE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample {name} before its TYPE line"
            parsed = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"', labels or ""))
            samples.append(PromSample(name=name, labels=parsed, value=float(value)))
    return types, samples


def _find(samples: list[PromSample], name: str, **labels: str) -> Iterator[PromSample]:
    return (s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_metrics_are_valid_prometheus_text_with_counters_histograms_and_log_figures(tmp_path: Path) -> None:
    async with edge(tmp_path) as (client, _):
        for _ in range(3):
            await client.post("/v1/messages", json=REQUEST)
            # The answer is kept once it is on disk, a moment after the client has it: then the next one hits.
            with trio.fail_after(2):
                while "\nlynkr_prompt_cache_entries 1\n" not in (await client.get("/metrics")).text:
                    await trio.sleep(0.01)
        await client.get("/nowhere")
        # The recorder commits in batches, shortly after the responses went out: wait for the last batch.
        # One daemon.started, one tools.worker_started, the indexer's index.run_started and index.run_finished (the
        # workspace is empty), then request.received and response.completed per request; the first also
        # cache.miss, upstream.responded, upstream.attempted and cache.stored, the others one cache.hit each.
        with trio.fail_after(2):
            while True:
                response = await client.get("/metrics")
                if "\nlynkr_eventlog_events_total 16\n" in response.text:
                    break
                await trio.sleep(0.01)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_prometheus(response.text)
    assert types["lynkr_http_requests_total"] == "counter"
    assert types["lynkr_http_request_duration_seconds"] == "histogram"
    messages = list(_find(samples, "lynkr_http_requests_total", route="messages", method="POST", status="200"))
    assert [sample.value for sample in messages] == [3.0]
    assert next(_find(samples, "lynkr_http_requests_total", route="unknown", status="404")).value == 1.0

    buckets = list(_find(samples, "lynkr_http_request_duration_seconds_bucket", route="messages"))
    bounds = [float(sample.labels["le"]) for sample in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    counts = [sample.value for sample in buckets]
    assert counts == sorted(counts), "histogram buckets must be cumulative"
    total = next(_find(samples, "lynkr_http_request_duration_seconds_count", route="messages")).value
    assert counts[-1] == total == 3.0
    assert next(_find(samples, "lynkr_http_request_duration_seconds_sum", route="messages")).value > 0
    assert types["lynkr_prompt_cache_hit_ratio"] == "gauge"
    cache = {name: next(_find(samples, name)).value for name in (
        "lynkr_prompt_cache_entries", "lynkr_prompt_cache_hits_total", "lynkr_prompt_cache_misses_total",
        "lynkr_prompt_cache_hit_ratio",
    )}
    assert cache == {
        "lynkr_prompt_cache_entries": 1.0, "lynkr_prompt_cache_hits_total": 2.0,
        "lynkr_prompt_cache_misses_total": 1.0, "lynkr_prompt_cache_hit_ratio": pytest.approx(2 / 3, abs=1e-5),
    }
    assert next(_find(samples, "lynkr_prompt_cache_bytes")).value > 0

    assert next(_find(samples, "lynkr_eventlog_last_seq")).value == 16
    assert next(_find(samples, "lynkr_eventlog_batches_total")).value >= 1
    assert next(_find(samples, "lynkr_eventlog_size_bytes")).value > 0
    assert next(_find(samples, "lynkr_actor_up", actor="providers")).value == 1.0
    assert next(_find(samples, "lynkr_provider_breaker_open", provider="openai")).value == 0.0


async def test_h2c_prior_knowledge_clients_are_served(tmp_path: Path) -> None:
    fake = FakeUpstream()
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            async with running_lynkr(make_config(tmp_path, openai_env(upstream))) as lynkr:
                async with httpx.AsyncClient(base_url=lynkr.base_url, http1=False, http2=True) as client:
                    whole = await client.post("/v1/messages", json=REQUEST)
                    async with client.stream("POST", "/v1/messages", json={**REQUEST, "stream": True}) as stream:
                        streamed = (await stream.aread()).decode()
                    health = await client.get("/health")
    assert whole.http_version == "HTTP/2" and whole.status_code == 200
    assert whole.json()["content"] == [{"type": "text", "text": "ok"}]
    assert whole.headers["request-id"].startswith("req_")
    assert stream.http_version == "HTTP/2"
    assert "event: message_start" in streamed and "event: message_stop" in streamed
    assert health.http_version == "HTTP/2" and health.status_code == 200


# -- session ids ----------------------------------------------------------------------------------------------


async def test_session_id_comes_from_the_header_then_metadata_then_a_stable_fingerprint(tmp_path: Path) -> None:
    def metadata(session: str) -> dict[str, Any]:
        user_id = json.dumps({"device_id": "f" * 64, "account_uuid": "", "session_id": session})
        return {"user_id": user_id}

    second_turn = [
        *REQUEST["messages"],
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "and again"},
    ]
    async with edge(tmp_path) as (client, config):
        sent = [
            ({"x-claude-code-session-id": "hdr-session"}, {**REQUEST, "metadata": metadata("ignored-meta")}),
            ({}, {**REQUEST, "metadata": metadata("meta-session")}),
            ({}, {**REQUEST, "metadata": {"user_id": "user_ab12_account__session_0c5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}}),
            ({}, REQUEST),
            ({}, {**REQUEST, "messages": second_turn}),
            ({}, {**REQUEST, "messages": [{"role": "user", "content": "a different conversation"}]}),
        ]
        for headers, body in sent:
            response = await client.post("/v1/messages", json=body, headers=headers)
            assert response.status_code == 200, response.text
    received = [record for record in recorded(config.data_dir) if isinstance(record.event, RequestReceived)]
    assert len(received) == len(sent)
    for record in received:
        assert isinstance(record.event, RequestReceived)
        assert record.stream == record.event.session_id
    streams = [record.stream for record in received]
    assert streams[:3] == ["hdr-session", "meta-session", "0c5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"]
    fingerprint, same_conversation, other_conversation = streams[3:]
    assert fingerprint.startswith("fp-")
    assert same_conversation == fingerprint  # later turns of one conversation stay in its session
    assert other_conversation.startswith("fp-") and other_conversation != fingerprint


async def test_a_provider_pool_crash_mid_stream_ends_the_stream_with_an_error_not_a_hang(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.delay_between_chunks(0.2, Reply.text("one two three four five six seven eight")))
    async with serve_fake(fake) as upstream:
        env = {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions", "OPENAI_MODEL": "m"}
        async with running_lynkr(make_config(tmp_path, env)) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url) as client:
            body = {"model": "m", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "x"}]}
            with trio.fail_after(10):
                async with client.stream("POST", "/v1/messages", json=body) as response:
                    assert response.status_code == 200
                    seen = b""
                    async for chunk in response.aiter_bytes():
                        if not seen:
                            lynkr.mailboxes["providers"].send_nowait(None)  # a message the pool cannot handle
                        seen += chunk
    assert b"event: message_start" in seen
    assert b"event: error" in seen and b"lost this request" in seen
    assert b"message_stop" not in seen
