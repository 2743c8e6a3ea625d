"""The prompt cache with the real Claude Code CLI: its metadata (a new session id every run), billing line and
cache markers are normalised away, and the second of two identical ``claude -p`` runs is answered from the cache.

(The billing line's ``cc_version`` suffix is derived from the prompt: identical runs send the same one, the next
turn of a conversation another.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.cache.events import CacheHit, CacheStored
from lynkr.events.catalog import RequestReceived
from tests.conftest import make_config, recorded, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import run_claude

pytestmark = pytest.mark.cli

ANSWER = "Hi there, from the upstream."


async def test_two_identical_cli_runs_call_the_upstream_once(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text(ANSWER))
    async with serve_fake(fake) as upstream:
        env = {
            "MODEL_PROVIDER": "azure-anthropic",
            "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "azure-upstream-key",
        }
        # One user's HOME, as in real use: the CLI names its memory folder under HOME in the system prompt, and
        # run_claude would otherwise give each run a fresh one.
        home = {"HOME": str(tmp_path / "home")}
        (tmp_path / "home").mkdir()
        async with running_lynkr(make_config(tmp_path, env)) as lynkr:
            first, second = [
                await run_claude(
                    claude_exe, base_url=lynkr.base_url, prompt="say hi", cwd=claude_workdir, extra_env=home
                )
                for _ in range(2)
            ]

    for result in (first, second):
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.result == ANSWER
    assert len(fake.model_calls) == 1, "the second run was answered by lynkr's cache"
    log = recorded(tmp_path / "data")
    bodies = [r.event.request() for r in log if isinstance(r.event, RequestReceived)]
    assert len(bodies) == 2
    assert all(body["system"][0]["text"].startswith("x-anthropic-billing-header:") for body in bodies)
    assert bodies[0]["metadata"] != bodies[1]["metadata"], "each run is a session of its own"
    stored = [r.event for r in log if isinstance(r.event, CacheStored)]
    hits = [r.event for r in log if isinstance(r.event, CacheHit)]
    assert len(stored) == 1 and [hit.key for hit in hits] == [stored[0].key]
