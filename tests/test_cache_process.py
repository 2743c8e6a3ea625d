"""The prompt cache across real daemon processes killed with SIGKILL: what was stored is served after the
restart, and what expired meanwhile never comes back."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.test_daemon_process import MESSAGE, Daemon, base_env, daemon, openai_env


def ask(text: str) -> dict[str, Any]:
    return {**MESSAGE, "messages": [{"role": "user", "content": text}]}


async def entries(client: httpx.AsyncClient) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("lynkr_prompt_cache_entries "):
            return float(line.split()[1])
    raise AssertionError("lynkr_prompt_cache_entries not in /metrics")


async def answer(client: httpx.AsyncClient, text: str) -> str:
    response = await client.post("/v1/messages", json=ask(text))
    assert response.status_code == 200, response.text
    return str(response.json()["content"][0]["text"])


async def wait_for_entries(client: httpx.AsyncClient, count: int) -> None:
    with trio.fail_after(5):
        while await entries(client) != count:
            await trio.sleep(0.02)


async def kill(lynkr: Daemon) -> None:
    lynkr.process.send_signal(signal.SIGKILL)
    with trio.fail_after(5):
        await lynkr.process.wait()


async def test_stored_answers_survive_kill_9_and_expired_ones_never_come_back(tmp_path: Path) -> None:
    ttl_s = 1.5
    fake = FakeUpstream()
    fake.push(Reply.text("kept"), Reply.text("short-lived"), Reply.text("asked again"))
    async with serve_fake(fake) as upstream:
        env = base_env(tmp_path, **openai_env(upstream))
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await answer(client, "keep this") == "kept"
            await wait_for_entries(client, 1)  # a store is on disk before the cache holds it
            await kill(lynkr)

        async with daemon({**env, "PROMPT_CACHE_TTL_MS": str(int(ttl_s * 1000))}) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                assert await entries(client) == 1
                assert await answer(client, "keep this") == "kept"
                assert len(fake.model_calls) == 1, "answered from the rebuilt cache"
                assert await answer(client, "briefly") == "short-lived"
                await wait_for_entries(client, 2)
                stored_at = trio.current_time()
                await kill(lynkr)

        await trio.sleep_until(stored_at + ttl_s + 0.2)
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await entries(client) == 1, "the expired answer is not rebuilt"
            assert await answer(client, "keep this") == "kept"
            assert await answer(client, "briefly") == "asked again"
            await kill(lynkr)
    assert len(fake.model_calls) == 3
