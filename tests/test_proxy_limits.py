"""Upstream limits through a real lynkr: output ceilings learned from refusals, context windows, long-context
routing, and anthropic-beta flags an upstream does not know.

Each fake upstream enforces its limit the way the real service words the refusal (tests/fakes/limits.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from lynkr.config import Config, ConfigError
from lynkr.daemon import run_daemon
from lynkr.events.catalog import BetasUnsupported, LimitLearned, ResponseCompleted, UpstreamAttempted
from lynkr.upstream.learned import LIMITS_STREAM
from lynkr.wire.tokens import estimate_tokens
from tests.conftest import make_config, recorded, recorded_events, running_lynkr, write_toml
from tests.fakes import ContextWindow, FakeUpstream, KnownBetas, OutputLimit, serve_fake

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "messages": [{"role": "user", "content": "hello"}],
}
LONG_TEXT = "the quick brown fox jumps over the lazy dog " * 120  # ~5 kB: ~1300 tokens
LONG_REQUEST: dict[str, Any] = {**REQUEST, "messages": [{"role": "user", "content": LONG_TEXT}]}

EnvFor = Callable[[str], dict[str, str]]

# Env-only providers whose model the built-in table does not know, so that the limit has to be learned.
ENV_BACKENDS: dict[str, EnvFor] = {
    "openai": lambda up: {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{up}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-up",
        "OPENAI_MODEL": "house-model",
    },
    "azure-openai": lambda up: {
        "MODEL_PROVIDER": "azure-openai",
        "AZURE_OPENAI_ENDPOINT": up,
        "AZURE_OPENAI_API_KEY": "azure-key",
        "AZURE_OPENAI_DEPLOYMENT": "team-deployment",
    },
    "openrouter": lambda up: {
        "MODEL_PROVIDER": "openrouter",
        "OPENROUTER_ENDPOINT": f"{up}/api/v1/chat/completions",
        "OPENROUTER_API_KEY": "sk-or-up",
        "OPENROUTER_MODEL": "vendor/house-model",
    },
    "databricks": lambda up: {
        "MODEL_PROVIDER": "databricks",
        "DATABRICKS_API_BASE": up,
        "DATABRICKS_API_KEY": "dapi-up",
        "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/my-llm/invocations",
    },
    "anthropic": lambda up: {"ANTHROPIC_UPSTREAM_URL": up, "ANTHROPIC_UPSTREAM_API_KEY": "sk-ant-up"},
}


@asynccontextmanager
async def _client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    # These tests repeat a request to see what the first one taught; the prompt cache would answer it instead.
    config = attrs.evolve(config, prompt_cache=attrs.evolve(config.prompt_cache, enabled=False))
    async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
        yield client


async def _post(
    client: httpx.AsyncClient, request: dict[str, Any] = REQUEST, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/v1/messages?beta=true", json=request, headers=headers or {})


def _sent_output(fake: FakeUpstream) -> list[int | None]:
    out = []
    for call in fake.model_calls:
        body = call.request.json
        out.append(body.get("max_completion_tokens") or body.get("max_tokens"))
    return out


def _statuses(fake: FakeUpstream) -> list[int]:
    return [call.reply.http_status for call in fake.model_calls if call.reply is not None]


@pytest.mark.parametrize("wording", ["openai", "azure-openai", "openrouter", "databricks", "anthropic"])
async def test_an_output_refusal_is_retried_clamped_and_learned(wording: str, tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(OutputLimit(16384, wording=wording),))  # type: ignore[arg-type]
    async with serve_fake(fake) as upstream, _client(make_config(tmp_path, ENV_BACKENDS[wording](upstream))) as client:
        first = await _post(client)
        second = await _post(client)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert _statuses(fake) == [400, 200, 200], "the client never saw the 400, and it came only once"
    assert _sent_output(fake) == [32000, 16384, 16384]
    log = recorded(tmp_path / "data")
    lessons = [(record.stream, record.event) for record in log if isinstance(record.event, LimitLearned)]
    assert len(lessons) == 1
    stream, lesson = lessons[0]
    assert (stream, lesson.provider, lesson.kind, lesson.value) == (LIMITS_STREAM, wording, "output", 16384)
    attempts = [(e.attempt, e.status, e.will_retry) for e in (r.event for r in log) if isinstance(e, UpstreamAttempted)]
    assert attempts == [(1, 400, True), (2, 200, False), (1, 200, False)]


async def test_a_learned_output_limit_survives_a_daemon_restart(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(OutputLimit(16384, wording="azure-openai"),))
    async with serve_fake(fake) as upstream:
        env = ENV_BACKENDS["azure-openai"](upstream)
        async with _client(make_config(tmp_path, env)) as client:
            assert (await _post(client)).status_code == 200
        assert _statuses(fake) == [400, 200]
        before = len(fake.model_calls)
        async with _client(make_config(tmp_path, env)) as client:  # the same data folder
            restarted = await _post(client)
    assert restarted.status_code == 200, restarted.text
    after_restart = fake.model_calls[before:]
    assert [call.reply.http_status for call in after_restart if call.reply] == [200], "no 400 the second time"
    assert _sent_output(fake)[before:] == [16384]


async def test_a_builtin_ceiling_needs_no_refusal_at_all(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(OutputLimit(16384, wording="azure-openai"),))
    async with serve_fake(fake) as upstream:
        env = {**ENV_BACKENDS["azure-openai"](upstream), "AZURE_OPENAI_DEPLOYMENT": "gpt-4o"}
        async with _client(make_config(tmp_path, env)) as client:
            response = await _post(client)
    assert response.status_code == 200, response.text
    assert _statuses(fake) == [200]
    assert _sent_output(fake) == [16384]


async def test_vllm_context_refusal_with_room_for_output_is_retried_with_that_room(tmp_path: Path) -> None:
    window = 20000
    fake = FakeUpstream(limits=(ContextWindow(window, wording="vllm"),))
    async with serve_fake(fake) as upstream, _client(make_config(tmp_path, ENV_BACKENDS["openai"](upstream))) as client:
        response = await _post(client)
    assert response.status_code == 200, response.text
    assert _statuses(fake) == [400, 200]
    refused, accepted = fake.model_calls
    input_tokens = len(refused.request.body) // 4
    assert accepted.request.json["max_tokens"] == window - input_tokens
    [lesson] = [e for e in recorded_events(tmp_path / "data") if isinstance(e, LimitLearned)]
    assert (lesson.kind, lesson.value) == ("context", window)


TWO_PROVIDERS = """
model_provider = "primary"
[providers.primary]
kind = "openai"
endpoint = "{small}/v1"
models = {{ main = "small-window-model" }}
fallback = ["backup"]
[providers.backup]
kind = "openai"
endpoint = "{large}/v1"
models = {{ main = "large-window-model" }}
"""


@pytest.mark.parametrize("wording", ["openai", "llama.cpp", "ollama", "openrouter"])
async def test_a_context_overflow_falls_to_the_next_provider_that_holds_it(wording: str, tmp_path: Path) -> None:
    small = FakeUpstream(limits=(ContextWindow(500, wording=wording),))  # type: ignore[arg-type]
    large = FakeUpstream()
    async with serve_fake(small) as small_url, serve_fake(large) as large_url:
        write_toml(tmp_path, TWO_PROVIDERS.format(small=small_url, large=large_url))
        async with _client(make_config(tmp_path)) as client:
            long = await _post(client, {**LONG_REQUEST, "max_tokens": 100})
            short = await _post(client, {**REQUEST, "max_tokens": 100})
            long_again = await _post(client, {**LONG_REQUEST, "max_tokens": 100})

    assert (long.status_code, short.status_code, long_again.status_code) == (200, 200, 200), long.text
    assert _statuses(small)[:1] == [400], "not retried on the provider that cannot hold it"
    assert len(large.model_calls) >= 2
    events = recorded_events(tmp_path / "data")
    completed = [e.provider for e in events if isinstance(e, ResponseCompleted)]
    assert completed == ["backup", "primary", "backup"]
    if wording != "ollama":  # Ollama's refusal names no window, so there is nothing to learn from it
        [lesson] = [e for e in events if isinstance(e, LimitLearned)]
        assert (lesson.provider, lesson.kind, lesson.value) == ("primary", "context", 500)
        assert len(small.model_calls) == 2, "once learned, the long request skips the small window"


async def test_an_overflow_with_nowhere_to_go_names_the_window_and_the_estimate(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(ContextWindow(500, wording="openai"),))
    async with serve_fake(fake) as upstream, _client(make_config(tmp_path, ENV_BACKENDS["openai"](upstream))) as client:
        response = await _post(client, LONG_REQUEST)
        again = await _post(client, LONG_REQUEST)
    for answer in (response, again):
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert f"about {estimate_tokens(LONG_REQUEST)} tokens" in body["error"]["message"]
        assert "openai (500 tokens)" in body["error"]["message"]
    assert len(fake.model_calls) == 1, "the second request knew better than to ask"


async def test_a_configured_context_window_refuses_without_an_upstream_call(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        write_toml(
            tmp_path,
            f'[providers.openai]\nendpoint = "{upstream}/v1"\nmodels = {{ main = "m" }}\n'
            'options = { context_window = "600" }\n',
        )
        async with _client(make_config(tmp_path)) as client:
            long = await _post(client, LONG_REQUEST)
            short = await _post(client, {**REQUEST, "max_tokens": 32000})
    assert long.status_code == 400
    assert "openai (600 tokens)" in long.json()["error"]["message"]
    assert short.status_code == 200
    [call] = fake.model_calls
    assert call.request.json["max_tokens"] == 600 - estimate_tokens(REQUEST), "the output fits beside the input"


ROUTED = """
model_provider = "primary"
[providers.primary]
kind = "openai"
endpoint = "{primary}/v1"
models = {{ main = "short-model" }}
[providers.long]
kind = "openai"
endpoint = "{long}/v1"
models = {{ main = "long-model" }}
[[routes]]
min_input_tokens = 1000
provider = "long"
"""


async def test_min_input_tokens_sends_long_requests_to_their_route(tmp_path: Path) -> None:
    primary, long = FakeUpstream(), FakeUpstream()
    async with serve_fake(primary) as primary_url, serve_fake(long) as long_url:
        write_toml(tmp_path, ROUTED.format(primary=primary_url, long=long_url))
        async with _client(make_config(tmp_path)) as client:
            assert (await _post(client, LONG_REQUEST)).status_code == 200
            assert (await _post(client)).status_code == 200
    assert estimate_tokens(LONG_REQUEST) > 1000 > estimate_tokens(REQUEST)
    assert [call.request.json["model"] for call in long.model_calls] == ["long-model"]
    assert [call.request.json["model"] for call in primary.model_calls] == ["short-model"]


BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,brand-new-2026-11-01"


async def test_an_unknown_beta_named_by_the_upstream_is_dropped_retried_and_remembered(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(KnownBetas({"claude-code-20250219", "interleaved-thinking-2025-05-14"}),))
    async with serve_fake(fake) as upstream:
        env = ENV_BACKENDS["anthropic"](upstream)
        async with _client(make_config(tmp_path, env)) as client:
            first = await _post(client, {**REQUEST, "max_tokens": 100}, {"anthropic-beta": BETAS})
        async with _client(make_config(tmp_path, env)) as client:  # restarted: still remembered
            second = await _post(client, {**REQUEST, "max_tokens": 100}, {"anthropic-beta": BETAS})
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert _statuses(fake) == [400, 200, 200]
    known = "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert [call.request.header("anthropic-beta") for call in fake.model_calls] == [BETAS, known, known]
    [lesson] = [e for e in recorded_events(tmp_path / "data") if isinstance(e, BetasUnsupported)]
    assert (lesson.provider, lesson.flags) == ("anthropic", ("brand-new-2026-11-01",))


async def test_an_unnamed_invalid_beta_flag_drops_every_flag_once(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(KnownBetas({"claude-code-20250219"}, wording="bedrock"),))
    async with serve_fake(fake) as up, _client(make_config(tmp_path, ENV_BACKENDS["anthropic"](up))) as client:
        response = await _post(client, {**REQUEST, "max_tokens": 100}, {"anthropic-beta": BETAS})
        again = await _post(client, {**REQUEST, "max_tokens": 100}, {"anthropic-beta": BETAS})
    assert (response.status_code, again.status_code) == (200, 200), response.text
    assert _statuses(fake) == [400, 200, 200]
    assert [call.request.header("anthropic-beta") for call in fake.model_calls] == [BETAS, None, None]


async def test_drop_betas_option_drops_flags_from_the_first_request(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(KnownBetas({"claude-code-20250219", "interleaved-thinking-2025-05-14"}),))
    async with serve_fake(fake) as upstream:
        write_toml(
            tmp_path,
            f'[providers.anthropic]\nendpoint = "{upstream}"\napi_key = "sk-ant-up"\n'
            'options = { drop_betas = "brand-new-2026-11-01, other-flag" }\n',
        )
        async with _client(make_config(tmp_path)) as client:
            response = await _post(client, {**REQUEST, "max_tokens": 100}, {"anthropic-beta": BETAS})
    assert response.status_code == 200, response.text
    assert _statuses(fake) == [200]
    known = "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert fake.model_calls[0].request.header("anthropic-beta") == known


async def test_a_refusal_after_the_clamped_retry_reaches_the_client(tmp_path: Path) -> None:
    # An upstream whose stated limit is not its real one gets one clamped retry, not a loop.
    liar = FakeUpstream(limits=(OutputLimit(16384, wording="openai"), OutputLimit(100, wording="openai")))
    async with serve_fake(liar) as upstream, _client(make_config(tmp_path, ENV_BACKENDS["openai"](upstream))) as client:
        response = await _post(client)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "at most 100 completion tokens" in response.json()["error"]["message"]
    assert _sent_output(liar) == [32000, 16384]


async def test_an_unusable_context_window_option_stops_the_daemon_with_a_clear_message(tmp_path: Path) -> None:
    toml = '[providers.openai]\nendpoint = "http://127.0.0.1:9/v1"\noptions = { context_window = "big" }\n'
    write_toml(tmp_path, toml)
    with pytest.raises(ConfigError, match=r"providers\.openai\.options\.context_window = 'big' is not a positive"):
        await run_daemon(make_config(tmp_path))
