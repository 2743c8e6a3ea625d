"""Upstream faults through lynkr: retries, timeouts, broken streams, disconnects, fallback and circuit breakers.

Every test ends by showing that the daemon still serves the next request, and reads the stopped daemon's event
log to check what was recorded (one ``upstream.attempted`` per attempt, then ``response.completed`` or
``response.failed``) and that no secret reached the LMDB files.  Timeouts and backoffs are shrunk through the
environment so that the whole module runs in a few seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from lynkr.config import Config
from lynkr.datadir import events_dir
from lynkr.events.catalog import ResponseCompleted, ResponseFailed, UpstreamAttempted
from lynkr.events.records import Event
from tests.conftest import make_config, recorded_events, running_lynkr, sse_events, streamed_text, write_toml
from tests.fakes import FakeUpstream, Reply, serve_fake

UPSTREAM_KEY = "sk-upstream-fault-secret-7781"
CLIENT_KEY = "sk-ant-client-fault-secret-3319"
TEST_TIMEOUT_S = 10

FAST = {
    "LYNKR_MAX_RETRIES": "2",
    "LYNKR_RETRY_BACKOFF_INITIAL_S": "0.01",
    "LYNKR_RETRY_BACKOFF_MAX_S": "0.02",
    "LYNKR_FIRST_BYTE_TIMEOUT_S": "2",
    "LYNKR_IDLE_TIMEOUT_S": "2",
    # Follow-up requests repeat the first one: from the prompt cache they would never reach the upstream whose
    # faults these tests count (whether they did would depend on how soon the first answer's store was durable).
    "PROMPT_CACHE_ENABLED": "false",
}

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "hello"}],
}


def openai_env(upstream: str, **overrides: str) -> dict[str, str]:
    return {
        **FAST,
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_MODEL": "gpt-test",
        **overrides,
    }


def anthropic_env(upstream: str, **overrides: str) -> dict[str, str]:
    return {**FAST, "ANTHROPIC_UPSTREAM_URL": upstream, "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY, **overrides}


@asynccontextmanager
async def lynkr_client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
        yield client


async def post(client: httpx.AsyncClient, *, stream: bool = False, **extra: Any) -> httpx.Response:
    return await client.post(
        "/v1/messages?beta=true",
        json={**REQUEST, "stream": stream, **extra},
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
    )


def attempts(events: list[Event]) -> list[tuple[str, int, int | None, bool]]:
    return [(e.provider, e.attempt, e.status, e.will_retry) for e in events if isinstance(e, UpstreamAttempted)]


def outcomes(events: list[Event]) -> list[tuple[str, int]]:
    """("completed", 200) or ("failed", status) per response, in order."""
    out: list[tuple[str, int]] = []
    for event in events:
        if isinstance(event, ResponseCompleted):
            out.append(("completed", 200))
        elif isinstance(event, ResponseFailed):
            out.append(("failed", event.status))
    return out


def assert_no_secrets_on_disk(config: Config) -> None:
    files = [path for path in events_dir(config.data_dir).iterdir() if path.is_file()]
    assert any(path.name == "data.mdb" for path in files)
    for path in files:
        raw = path.read_bytes()
        for secret in (UPSTREAM_KEY, CLIENT_KEY):
            assert secret.encode() not in raw, f"{secret} leaked into {path.name}"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def hang_up(chunks: AsyncIterator[bytes]) -> None:
    """Close a streamed response mid-body.  A cancellation at the socket read makes httpx drop the connection and
    unwinds its stack of async generators (closing only the outermost one leaves the rest to the garbage collector,
    which trio reports as a ResourceWarning)."""
    with trio.CancelScope() as scope:
        scope.cancel()
        async for _ in chunks:
            pass


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["request-id"].startswith("req_")
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


# -- retries --------------------------------------------------------------------------------------------------


async def test_429_retry_after_is_honoured_before_the_retry_succeeds(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(429, retry_after=0.4, message="slow down"), Reply.text("after the wait"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream))
            async with lynkr_client(config) as client:
                response = await post(client)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "after the wait"}]
    first, second = fake.model_calls
    waited = second.request.received_at - first.request.received_at
    assert waited >= 0.4, f"retried after {waited:.3f} s, before the upstream's Retry-After of 0.4 s"
    events = recorded_events(config.data_dir)
    assert attempts(events) == [("openai", 1, 429, True), ("openai", 2, 200, False)]
    assert outcomes(events) == [("completed", 200)]
    assert_no_secrets_on_disk(config)


async def test_retry_after_ms_is_honoured_too(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(529, headers=(("retry-after-ms", "300"),)), Reply.text("fine now"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            async with lynkr_client(make_config(tmp_path, anthropic_env(upstream))) as client:
                response = await post(client, stream=True)
    assert response.status_code == 200, response.text
    assert streamed_text(sse_events(response.text)) == "fine now"
    first, second = fake.model_calls
    assert second.request.received_at - first.request.received_at >= 0.3


async def test_500_and_529_are_retried_with_growing_backoff_then_succeed(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(500), Reply.status(529), Reply.text("third time lucky"))
    env = openai_env("", LYNKR_RETRY_BACKOFF_INITIAL_S="0.1", LYNKR_RETRY_BACKOFF_MAX_S="0.2")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {**env, "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions"})
            async with lynkr_client(config) as client:
                response = await post(client, stream=True)
                follow_up = await post(client)
    assert response.status_code == 200, response.text
    assert streamed_text(sse_events(response.text)) == "third time lucky"
    times = [call.request.received_at for call in fake.model_calls[:3]]
    # Full jitter over [ceiling/2, ceiling]: the first wait is at least 0.05 s, the second at least 0.1 s.
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1
    assert follow_up.status_code == 200
    events = recorded_events(config.data_dir)
    assert attempts(events) == [
        ("openai", 1, 500, True),
        ("openai", 2, 529, True),
        ("openai", 3, 200, False),
        ("openai", 1, 200, False),
    ]
    assert outcomes(events) == [("completed", 200), ("completed", 200)]


async def test_exhausted_retries_give_the_client_the_upstream_status_as_an_anthropic_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(*[Reply.status(503, message="backend unavailable")] * 3, Reply.text("recovered"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream))
            async with lynkr_client(config) as client:
                response = await post(client, stream=True)
                follow_up = await post(client)
    body = assert_anthropic_error(response, 503, "api_error")
    assert "backend unavailable" in body["error"]["message"]
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "recovered"
    assert len(fake.model_calls) == 4
    events = recorded_events(config.data_dir)
    assert attempts(events)[:3] == [("openai", 1, 503, True), ("openai", 2, 503, True), ("openai", 3, 503, False)]
    failed = [e for e in events if isinstance(e, ResponseFailed)]
    assert [(e.status, e.error_type) for e in failed] == [(503, "api_error")]
    assert "backend unavailable" in failed[0].message
    assert outcomes(events) == [("failed", 503), ("completed", 200)]
    assert_no_secrets_on_disk(config)


async def test_rate_limit_exhausted_becomes_a_429_rate_limit_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(429, message="quota exceeded"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream, LYNKR_MAX_RETRIES="0"))
            async with lynkr_client(config) as client:
                response = await post(client)
                follow_up = await post(client)
    body = assert_anthropic_error(response, 429, "rate_limit_error")
    assert "quota exceeded" in body["error"]["message"]
    assert response.headers.get("retry-after") is None  # the fake sent none, so lynkr invents none
    assert follow_up.status_code == 200
    assert outcomes(recorded_events(config.data_dir)) == [("failed", 429), ("completed", 200)]


async def test_the_upstreams_retry_after_reaches_the_client_when_lynkr_gives_up(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(429, retry_after=7), Reply.status(529, headers=(("retry-after-ms", "2500"),)))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream, LYNKR_MAX_RETRIES="0"))
            async with lynkr_client(config) as client:
                limited = await post(client, stream=True)
                overloaded = await post(client)
    assert_anthropic_error(limited, 429, "rate_limit_error")
    assert limited.headers["retry-after"] == "7"  # the SDKs and the CLI wait as the upstream asked
    assert_anthropic_error(overloaded, 529, "overloaded_error")
    assert overloaded.headers["retry-after-ms"] == "2500"


async def test_anthropic_native_error_body_passes_through_byte_for_byte(tmp_path: Path) -> None:
    # Odd spacing and an extra field: any re-encoding by lynkr would show.
    upstream_body = (
        b'{"type": "error",  "error": {"type": "overloaded_error", "message": "Overloaded", "x_detail": 7},'
        b' "request_id": "req_upstream_42"}'
    )
    fake = FakeUpstream()
    fake.push(*[Reply.status(529, body=upstream_body)] * 3)
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            # Six failures in a row would open the circuit breaker at its default threshold.
            config = make_config(tmp_path, anthropic_env(upstream, LYNKR_BREAKER_FAILURE_THRESHOLD="10"))
            async with lynkr_client(config) as client:
                streamed = await post(client, stream=True)
                fake.push(*[Reply.status(529, body=upstream_body)] * 3)
                whole = await post(client)
                follow_up = await post(client)
    for response in (streamed, whole):
        assert response.status_code == 529
        assert response.content == upstream_body
    assert follow_up.status_code == 200
    assert len(fake.model_calls) == 7
    assert outcomes(recorded_events(config.data_dir)) == [("failed", 529), ("failed", 529), ("completed", 200)]


async def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(400, message="messages: roles must alternate"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream))
            async with lynkr_client(config) as client:
                response = await post(client)
                follow_up = await post(client)
    body = assert_anthropic_error(response, 400, "invalid_request_error")
    assert body["error"]["message"] == "messages: roles must alternate"
    assert len(fake.model_calls) == 2
    log = recorded_events(config.data_dir)
    assert attempts(log) == [("anthropic", 1, 400, False), ("anthropic", 1, 200, False)]
    assert follow_up.status_code == 200
    assert outcomes(log) == [("failed", 400), ("completed", 200)]


# -- timeouts and broken streams ------------------------------------------------------------------------------


async def test_slow_first_byte_beyond_the_timeout_gives_504_timeout_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.slow_first_byte(3.0), Reply.text("fast again"))
    env = openai_env("", LYNKR_FIRST_BYTE_TIMEOUT_S="0.3", LYNKR_MAX_RETRIES="0")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {**env, "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions"})
            async with lynkr_client(config) as client:
                started = time.monotonic()
                response = await post(client, stream=True)
                elapsed = time.monotonic() - started
                follow_up = await post(client)
            slow = fake.model_calls[0]
            with trio.fail_after(1):
                await slow.ended.wait()
    body = assert_anthropic_error(response, 504, "timeout_error")
    assert "LYNKR_FIRST_BYTE_TIMEOUT_S" in body["error"]["message"]
    assert 0.3 <= elapsed < 1.5
    assert slow.outcome == "client_disconnected"  # lynkr gave up on the upstream request
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "fast again"
    events = recorded_events(config.data_dir)
    first = next(e for e in events if isinstance(e, UpstreamAttempted))
    assert first.status is None and first.error is not None and "LYNKR_FIRST_BYTE_TIMEOUT_S" in first.error
    assert outcomes(events) == [("failed", 504), ("completed", 200)]


async def test_stalled_stream_beyond_the_idle_timeout_ends_with_an_sse_error(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.delay_between_chunks(3.0, Reply.text("never finished")), Reply.text("next"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream, LYNKR_IDLE_TIMEOUT_S="0.3"))
            async with lynkr_client(config) as client:
                started = time.monotonic()
                response = await post(client, stream=True)
                elapsed = time.monotonic() - started
                follow_up = await post(client)
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-1] == "error"
    assert events[-1][1]["error"]["type"] == "timeout_error"
    assert "message_stop" not in names
    assert elapsed < 2.0
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "next"
    assert len(fake.model_calls) == 2  # no retry once the stream had started
    log = recorded_events(config.data_dir)
    assert attempts(log)[0][:3] == ("openai", 1, 200)
    assert outcomes(log) == [("failed", 504), ("completed", 200)]


async def test_mid_stream_disconnect_sends_an_sse_error_after_the_content_and_does_not_retry(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.disconnect_after(3, Reply.text("one two three four")), Reply.text("still here"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream))
            async with lynkr_client(config) as client:
                response = await post(client, stream=True)
                await trio.sleep(0.1)  # a retry, if lynkr wrongly made one, would arrive in this window
                calls_after_the_break = len(fake.model_calls)
                follow_up = await post(client, stream=True)
    assert response.status_code == 200
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert streamed_text(events) == "one two "
    assert names[-1] == "error"
    assert names.index("content_block_delta") < names.index("error")
    assert events[-1][1]["type"] == "error" and events[-1][1]["error"]["type"] == "api_error"
    assert calls_after_the_break == 1
    assert fake.model_calls[0].outcome == "dropped"
    assert streamed_text(sse_events(follow_up.text)) == "still here"
    log = recorded_events(config.data_dir)
    broken = next(e for e in log if isinstance(e, UpstreamAttempted))
    assert broken.will_retry is False and broken.error is not None
    assert outcomes(log) == [("failed", 502), ("completed", 200)]


async def test_a_non_streaming_client_gets_an_error_response_not_a_truncated_message(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.disconnect_after(3, Reply.text("one two three four")),
        Reply.delay_between_chunks(3.0, Reply.text("stalls after the first chunk")),
    )
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            # A streamed upstream answer (a modest max_tokens would otherwise be asked for as one JSON body).
            config = make_config(
                tmp_path, openai_env(upstream, LYNKR_IDLE_TIMEOUT_S="0.3", LYNKR_JSON_UPSTREAM_MAX_TOKENS="0")
            )
            async with lynkr_client(config) as client:
                cut = await post(client)
                stalled = await post(client)
    assert_anthropic_error(cut, 502, "api_error")
    assert "LYNKR_IDLE_TIMEOUT_S" in assert_anthropic_error(stalled, 504, "timeout_error")["error"]["message"]
    assert len(fake.model_calls) == 2  # content had been forwarded to the assembler: no retry
    assert outcomes(recorded_events(config.data_dir)) == [("failed", 502), ("failed", 504)]


async def test_anthropic_stream_error_event_after_content_reaches_the_client(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.mid_stream_error("Overloaded", after_chunks=4, reply=Reply.text("partial answer here")))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, anthropic_env(upstream))
            async with lynkr_client(config) as client:
                response = await post(client, stream=True)
                follow_up = await post(client, stream=True)
    events = sse_events(response.text)
    assert streamed_text(events) == "partial "
    assert events[-1][0] == "error"
    assert events[-1][1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert len(fake.model_calls) == 2
    assert streamed_text(sse_events(follow_up.text)) == "ok"
    assert outcomes(recorded_events(config.data_dir)) == [("failed", 529), ("completed", 200)]


async def test_client_disconnect_cancels_the_upstream_request_within_100_ms(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.delay_between_chunks(0.5, Reply.text("a slow answer that goes on")), Reply.text("next"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream))
            async with lynkr_client(config) as client:
                async with client.stream(
                    "POST", "/v1/messages", json={**REQUEST, "stream": True}, headers={"x-api-key": CLIENT_KEY}
                ) as response:
                    assert response.status_code == 200
                    chunks = response.aiter_raw()
                    first = await chunks.__anext__()
                    assert b"message_start" in first
                    await hang_up(chunks)
                left_at = time.monotonic()
                exchange = fake.model_calls[0]
                with trio.fail_after(2):
                    await exchange.ended.wait()
                follow_up = await post(client)
    assert exchange.outcome == "client_disconnected"
    assert exchange.client_disconnected_at is not None
    assert exchange.client_disconnected_at - left_at < 0.1
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "next"
    failed = [e for e in recorded_events(config.data_dir) if isinstance(e, ResponseFailed)]
    assert [(e.status, e.error_type) for e in failed] == [(499, "client_disconnected")]


async def test_a_client_that_gives_up_during_a_retry_wait_ends_the_retries(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(429, retry_after=0.8), Reply.text("too late"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream))
            async with lynkr_client(config) as client:
                with trio.move_on_after(0.3) as gave_up:
                    await post(client, stream=True)
                await trio.sleep(1.0)  # past the Retry-After: a retry that outlived its client would arrive now
                follow_up = await post(client)
    assert gave_up.cancelled_caught
    assert [call.reply for call in fake.model_calls][1:] == [Reply.text("too late")]
    assert follow_up.json()["content"][0]["text"] == "too late"  # the follow-up took the second reply
    failed = [e for e in recorded_events(config.data_dir) if isinstance(e, ResponseFailed)]
    assert [(e.status, e.error_type) for e in failed] == [(499, "client_disconnected")]


# -- several providers, breakers, connection trouble ----------------------------------------------------------


def _primary_and_backup(primary: str, backup: str) -> str:
    return f"""
model_provider = "primary"

[providers.primary]
kind = "openai"
endpoint = "{primary}/v1"
api_key = "{UPSTREAM_KEY}"
models = {{ main = "gpt-primary" }}
fallback = ["backup"]

[providers.backup]
kind = "anthropic"
endpoint = "{backup}"
api_key = "{UPSTREAM_KEY}"
models = {{ main = "claude-backup" }}
"""


async def test_fallback_to_the_second_provider_when_the_first_keeps_answering_503(tmp_path: Path) -> None:
    primary, backup = FakeUpstream(), FakeUpstream()
    primary.push(*[Reply.status(503)] * 3)
    backup.push(Reply.text("served by backup"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(primary) as primary_url, serve_fake(backup) as backup_url:
            write_toml(tmp_path, _primary_and_backup(primary_url, backup_url))
            config = make_config(tmp_path, FAST)
            async with lynkr_client(config) as client:
                response = await post(client, stream=True)
                follow_up = await post(client)
    assert response.status_code == 200, response.text
    assert streamed_text(sse_events(response.text)) == "served by backup"
    assert backup.model_calls[0].request.json["model"] == "claude-backup"
    assert backup.model_calls[0].request.header("x-api-key") == UPSTREAM_KEY
    assert follow_up.status_code == 200  # the primary is healthy again (its script ran out)
    log = recorded_events(config.data_dir)
    assert attempts(log) == [
        ("primary", 1, 503, True),
        ("primary", 2, 503, True),
        ("primary", 3, 503, False),
        ("backup", 1, 200, False),
        ("primary", 1, 200, False),
    ]
    completed = [e for e in log if isinstance(e, ResponseCompleted)]
    assert [e.provider for e in completed] == ["backup", "primary"]
    assert_no_secrets_on_disk(config)


async def test_circuit_breaker_opens_after_the_threshold_and_skips_the_provider(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(500), Reply.status(500), Reply.text("not reached while open"))
    env = openai_env("", LYNKR_MAX_RETRIES="0", LYNKR_BREAKER_FAILURE_THRESHOLD="2", LYNKR_BREAKER_RESET_S="0.5")
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, {**env, "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions"})
            async with lynkr_client(config) as client:
                first = await post(client)
                second = await post(client)
                skipped = await post(client)
                metrics = (await client.get("/metrics")).text
                health_while_open = (await client.get("/health")).json()["providers"]
                calls_while_open = len(fake.model_calls)
                await trio.sleep(0.6)  # past LYNKR_BREAKER_RESET_S: one trial request goes through
                trial = await post(client)
                after = await post(client)
    assert first.status_code == 500 and second.status_code == 500
    body = assert_anthropic_error(skipped, 529, "overloaded_error")
    assert "'openai'" in body["error"]["message"] and "circuit breaker" in body["error"]["message"]
    assert calls_while_open == 2
    assert 'lynkr_provider_breaker_open{provider="openai"} 1' in metrics
    assert health_while_open == {"openai": {"breaker": "open", "consecutive_failures": 2}}
    assert trial.status_code == 200 and trial.json()["content"][0]["text"] == "not reached while open"
    assert after.status_code == 200
    assert len(fake.model_calls) == 4
    assert outcomes(recorded_events(config.data_dir)) == [
        ("failed", 500),
        ("failed", 500),
        ("failed", 529),
        ("completed", 200),
        ("completed", 200),
    ]


async def test_open_breaker_sends_requests_straight_to_the_fallback(tmp_path: Path) -> None:
    primary, backup = FakeUpstream(), FakeUpstream()
    primary.push(Reply.status(500))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(primary) as primary_url, serve_fake(backup) as backup_url:
            write_toml(tmp_path, _primary_and_backup(primary_url, backup_url))
            env = {**FAST, "LYNKR_MAX_RETRIES": "0", "LYNKR_BREAKER_FAILURE_THRESHOLD": "1"}
            config = make_config(tmp_path, env)
            async with lynkr_client(config) as client:
                opened = await post(client)
                skipping = await post(client)
    assert opened.status_code == 200 and skipping.status_code == 200
    assert len(primary.model_calls) == 1  # the second request never tried the open primary
    assert len(backup.model_calls) == 2
    assert [attempt[:3] for attempt in attempts(recorded_events(config.data_dir))] == [
        ("primary", 1, 500),
        ("backup", 1, 200),
        ("backup", 1, 200),
    ]


async def test_connection_refused_gives_502_naming_the_provider(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("small model answer"))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as live:
            # The main provider points at a port nothing listens on; haiku requests go to a live one.
            write_toml(
                tmp_path,
                f"""
model_provider = "dead"

[providers.dead]
kind = "openai"
endpoint = "http://127.0.0.1:{closed_port()}/v1"

[providers.live]
kind = "anthropic"
endpoint = "{live}"

[[routes]]
model = "claude-haiku-*"
provider = "live"
""",
            )
            config = make_config(tmp_path, {**FAST, "LYNKR_MAX_RETRIES": "1"})
            async with lynkr_client(config) as client:
                refused = await post(client, stream=True)
                follow_up = await post(client, model="claude-haiku-5-5")
                health = await client.get("/health")
    body = assert_anthropic_error(refused, 502, "api_error")
    assert "'dead'" in body["error"]["message"]
    assert "connect" in body["error"]["message"]
    assert follow_up.status_code == 200 and follow_up.json()["content"][0]["text"] == "small model answer"
    assert health.status_code == 200
    log = recorded_events(config.data_dir)
    assert [(provider, attempt, status) for provider, attempt, status, _ in attempts(log)] == [
        ("dead", 1, None),
        ("dead", 2, None),
        ("live", 1, 200),
    ]
    first = next(e for e in log if isinstance(e, UpstreamAttempted))
    assert first.error is not None and "cannot connect to provider 'dead'" in first.error
    assert outcomes(log) == [("failed", 502), ("completed", 200)]


async def test_secrets_never_reach_the_log_files(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(401, message="bad key"), Reply.text("fine"), Reply.status(500))
    with trio.fail_after(TEST_TIMEOUT_S):
        async with serve_fake(fake) as upstream:
            config = make_config(tmp_path, openai_env(upstream, LYNKR_MAX_RETRIES="0"))
            async with lynkr_client(config) as client:
                headers: Mapping[str, str] = {"authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY}
                for stream in (False, True, False):
                    await client.post("/v1/messages", json={**REQUEST, "stream": stream}, headers=headers)
                await client.post("/v1/messages/count_tokens", json=REQUEST, headers=headers)
    received = [e for e in recorded_events(config.data_dir) if type(e).__name__ == "RequestReceived"]
    assert len(received) == 3
    assert_no_secrets_on_disk(config)
