"""The real Claude Code CLI against upstreams that refuse more than 16,384 output tokens, configured only through
environment variables (no lynkr.toml, no max_tokens setting).

The CLI asks for 32,000 output tokens or more.  Each fake refuses that the way its real service words it; lynkr
must learn the ceiling from the first refusal, retry before the CLI sees anything, and send the clamped value
from then on.  A deployment named after a model the built-in table knows (gpt-4o) is clamped from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from lynkr.events.catalog import BetasUnsupported, LimitLearned
from tests.conftest import make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, KnownBetas, OutputLimit, Reply, serve_fake
from tests.fakes.claude_cli import run_claude
from tests.fakes.limits import OutputWording, requested_output

pytestmark = pytest.mark.cli

CEILING = 16384
PROMPT = "Write hi into out.txt"
FINAL_TEXT = "Wrote out.txt."


@attrs.frozen(kw_only=True)
class Service:
    wording: OutputWording
    env: Callable[[str], dict[str, str]]
    learns: bool  # the model is unknown to the built-in table, so the first request is refused


SERVICES = {
    "azure-openai": Service(
        wording="azure-openai",
        env=lambda up: {
            "MODEL_PROVIDER": "azure-openai",
            "AZURE_OPENAI_ENDPOINT": up,
            "AZURE_OPENAI_API_KEY": "azure-upstream-key",
            "AZURE_OPENAI_DEPLOYMENT": "team-chat",
        },
        learns=True,
    ),
    "azure-openai-gpt-4o": Service(
        wording="azure-openai",
        env=lambda up: {
            "MODEL_PROVIDER": "azure-openai",
            "AZURE_OPENAI_ENDPOINT": up,
            "AZURE_OPENAI_API_KEY": "azure-upstream-key",
            "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        },
        learns=False,
    ),
    "openai": Service(
        wording="openai",
        env=lambda up: {
            "MODEL_PROVIDER": "openai",
            "OPENAI_ENDPOINT": f"{up}/v1/chat/completions",
            "OPENAI_API_KEY": "sk-upstream-openai",
            "OPENAI_MODEL": "house-model-v2",
        },
        learns=True,
    ),
    "openrouter": Service(
        wording="openrouter",
        env=lambda up: {
            "MODEL_PROVIDER": "openrouter",
            "OPENROUTER_ENDPOINT": f"{up}/api/v1/chat/completions",
            "OPENROUTER_API_KEY": "sk-or-upstream",
            "OPENROUTER_MODEL": "vendor/house-model",
        },
        learns=True,
    ),
}


@pytest.mark.parametrize("service_name", list(SERVICES))
async def test_cli_turns_succeed_against_a_16k_output_ceiling_with_env_configuration_only(
    service_name: str, claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    service = SERVICES[service_name]
    fake = FakeUpstream(limits=(OutputLimit(CEILING, wording=service.wording),))
    fake.push(
        Reply.tool_call(
            name="Bash",
            arguments={"command": "echo hi > out.txt", "description": "Write hi to out.txt"},
            id="call_limits_1",
            text="I will write the file.",
        ),
        Reply.text(FINAL_TEXT),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, service.env(upstream))
        assert all(provider.max_tokens is None for provider in config.providers.values())
        async with running_lynkr(config) as lynkr:
            result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt=PROMPT, cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.is_error, result.stdout
    assert result.result == FINAL_TEXT
    assert (claude_workdir / "out.txt").read_text() == "hi\n"
    asked = [(call.reply.http_status, requested_output(call.request.json)) for call in fake.model_calls if call.reply]
    accepted = [tokens for status, tokens in asked if status == 200]
    refused = [tokens for status, tokens in asked if status != 200]
    assert len(accepted) == 2, asked
    assert accepted == [CEILING, CEILING], "the upstream saw the clamped value"
    lessons = [e for e in recorded_events(tmp_path / "data") if isinstance(e, LimitLearned)]
    if service.learns:
        assert len(refused) == 1 and refused[0] is not None and refused[0] > CEILING, asked
        assert [(lesson.kind, lesson.value) for lesson in lessons] == [("output", CEILING)]
    else:
        assert refused == [] and lessons == [], "the built-in ceiling for gpt-4o needs no refusal"


async def test_cli_turns_succeed_when_an_anthropic_upstream_refuses_its_beta_flags(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    # Bedrock-style refusal: "invalid beta flag", naming none, for any flag at all.
    fake = FakeUpstream(limits=(KnownBetas(frozenset(), wording="bedrock"),))
    fake.push(Reply.text(FINAL_TEXT))
    env = {
        "MODEL_PROVIDER": "azure-anthropic",
        "AZURE_ANTHROPIC_ENDPOINT": "{up}/anthropic/v1/messages",
        "AZURE_ANTHROPIC_API_KEY": "azure-upstream-key",
    }
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {key: value.format(up=upstream) for key, value in env.items()})
        async with running_lynkr(config) as lynkr:
            result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="say it", cwd=claude_workdir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == FINAL_TEXT
    calls = fake.model_calls
    assert calls[0].reply is not None and calls[0].reply.http_status == 400
    assert calls[0].request.header("anthropic-beta"), "the CLI sent beta flags"
    assert [call.reply.http_status for call in calls[1:] if call.reply] == [200] * (len(calls) - 1)
    assert all(call.request.header("anthropic-beta") is None for call in calls[1:])
    [lesson] = [e for e in recorded_events(tmp_path / "data") if isinstance(e, BetasUnsupported)]
    sent = calls[0].request.header("anthropic-beta") or ""
    assert set(lesson.flags) == {flag.strip() for flag in sent.split(",")}
