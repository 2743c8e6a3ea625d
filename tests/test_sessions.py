"""Session totals (turns, tokens, models, estimated cost, time upstream) and the `lynkr sessions` listing.

Totals come from real turns through the daemon and a fake Anthropic-wire upstream; the listing is the real
command run as a subprocess, also while a daemon holds the log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.events.catalog import CACHE_PROVIDER, LOOP_PROVIDER, ResponseCompleted
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.projections import SESSIONS, ModelUse, SessionsState, replay
from lynkr.events.records import Recorded
from lynkr.sessions.listing import ago, load_sessions, newest_first, short_count, summarise
from lynkr.upstream.prices import estimated_cost, listed_price
from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.script import Usage
from tests.test_cli import cli_env, lynkr, write_log
from tests.test_projections import request

AZURE = "azure-anthropic"
NS_PER_DAY = 86_400 * 1_000_000_000


def azure_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": AZURE,
        "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic/v1/messages",
        "AZURE_ANTHROPIC_API_KEY": "azure-upstream-key",
    }


def body(text: str, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


async def converse(base_url: str, turns: list[tuple[str, str]]) -> None:
    """(session id, model) per turn, each a fresh question so that the prompt cache never answers."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for number, (session_id, model) in enumerate(turns):
            response = await client.post(
                "/v1/messages", json=body(f"question {number}", model), headers={"x-claude-code-session-id": session_id}
            )
            assert response.status_code == 200, response.text


async def test_totals_after_turns_through_the_daemon(tmp_path: Path) -> None:
    fake = FakeUpstream()
    usage = Usage(input_tokens=1000, output_tokens=200, cached_tokens=4000)
    fake.push(*[Reply.text(f"answer {n}").with_usage(usage) for n in range(4)])
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, azure_env(upstream))
        async with running_lynkr(config) as running:
            await converse(
                running.base_url,
                [("sess-a", "claude-sonnet-4-5"), ("sess-a", "claude-sonnet-4-5"), ("sess-a", "claude-haiku-4-5"),
                 ("sess-b", "claude-sonnet-4-5")],
            )
    state = load_sessions(config.data_dir)
    kinds = {name: provider.kind for name, provider in config.providers.items()}
    newest, older = newest_first(state, kinds)
    assert [newest.session_id, older.session_id] == ["sess-b", "sess-a"]
    assert older.turns == 3 and newest.turns == 1
    assert (older.input_tokens, older.output_tokens, older.cache_read_tokens) == (3000, 600, 12000)
    assert older.models == ("claude-sonnet-4-5", "claude-haiku-4-5")
    assert older.providers == (AZURE,)
    # List prices: sonnet 3 / 15 / 0.30 per million, haiku 1 / 5 / 0.10.
    sonnet = 2 * (1000 * 3 + 200 * 15 + 4000 * 0.30) / 1e6
    haiku = (1000 * 1 + 200 * 5 + 4000 * 0.10) / 1e6
    assert older.cost_usd == pytest.approx(sonnet + haiku)
    assert older.upstream_ms > 0
    assert older.first_activity_ns <= older.last_activity_ns < newest.last_activity_ns
    assert not older.compacted and older.cache_hits == 0
    # What the daemon kept live and snapshotted at shutdown is what a full replay of the log gives.
    with LmdbEventStore.open(config.data_dir / "events", readonly=True) as store:
        replayed: SessionsState = replay(store, {"sessions": SESSIONS})["sessions"]
    assert replayed == state


async def test_a_model_without_a_price_makes_the_cost_unknown_and_local_models_cost_nothing(tmp_path: Path) -> None:
    use = ModelUse("openai", "gpt-test", 1, 100, 10, 0, 0, 5.0)
    assert listed_price("gpt-test") is None
    assert estimated_cost([use], {"openai": "openai"}) is None
    assert estimated_cost([ModelUse("ollama", "qwen2.5-coder", 3, 10**6, 10**5, 0, 0, 9.0)], {"ollama": "ollama"}) == 0
    cached = ModelUse(CACHE_PROVIDER, "claude-sonnet-4-5", 2, 500, 50, 0, 0, 0.0)
    assert estimated_cost([cached], {}) == 0
    # Router prefixes, Databricks endpoint names and dated versions find their family.
    for name in ("anthropic/claude-sonnet-4.5", "databricks-claude-sonnet-4-5", "claude-sonnet-4-5-20250929"):
        assert listed_price(name) == listed_price("claude-sonnet-4-5")
    assert listed_price("gpt-4o-mini") != listed_price("gpt-4o")


def answer(request_id: str, provider: str, output_tokens: int) -> ResponseCompleted:
    return ResponseCompleted(
        request_id=request_id,
        session_id="s",
        provider=provider,
        model="claude-sonnet-4-5",
        message={"model": "gpt-4o", "role": "assistant", "content": [],
                 "usage": {"input_tokens": 100, "output_tokens": output_tokens}},
        latency_ms=250.0,
    )


def test_the_fold_counts_each_round_once_and_keeps_cache_hits_apart() -> None:
    events = [
        request("r1", "s"),
        answer("r1", "openai", 10),  # a server-run loop's two rounds...
        answer("r1", "openai", 20),
        answer("r1", LOOP_PROVIDER, 30),  # ...and the loop's own message, which repeats them
        request("r2", "s"),
        answer("r2", CACHE_PROVIDER, 40),
    ]
    state = SESSIONS.initial
    for seq, event in enumerate(events, start=1):
        state = SESSIONS.apply(state, Recorded(seq=seq, time_ns=seq, stream="s", event=event))
    session = state.sessions["s"]
    assert session.turn_count == 2
    assert session.uses == (
        ModelUse("openai", "gpt-4o", 2, 200, 30, 0, 0, 500.0),
        ModelUse(CACHE_PROVIDER, "gpt-4o", 1, 100, 40, 0, 0, 0.0),
    )
    summary = summarise(session, {})
    assert (summary.input_tokens, summary.output_tokens, summary.cache_hits) == (200, 30, 1)
    assert summary.upstream_ms == 500.0
    assert summary.cost_usd == pytest.approx((200 * 2.5 + 30 * 10) / 1e6)  # the hit cost nothing
    # The loop's answer is still the turn's last word, as the client received it.
    assert session.turns[0].provider == LOOP_PROVIDER


def test_people_read_counts_and_times_in_round_figures() -> None:
    now = 10 * NS_PER_DAY
    assert ago(now - 5 * 10**9, now) == "just now"
    assert ago(now - 5 * 60 * 10**9, now) == "5 min ago"
    assert ago(now - 3 * 3600 * 10**9, now) == "3 h ago"
    assert ago(now - NS_PER_DAY, now) == "yesterday"
    assert ago(now - 3 * NS_PER_DAY, now) == "3 days ago"
    assert ago(now - 9 * NS_PER_DAY, now) == time.strftime("%Y-%m-%d", time.localtime(1 * 86400))
    assert [short_count(n) for n in (999, 1234, 2_500_000)] == ["999", "1.2k", "2.5M"]


# lynkr sessions


def test_sessions_lists_newest_first_as_a_table_and_as_json(tmp_path: Path) -> None:
    from tests.test_cli import conversation

    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "sessions")
    assert ran.returncode == 0, ran.stderr
    header, first, second = ran.stdout.splitlines()
    assert header.split()[:3] == ["SESSION", "TURNS", "TOKENS"]
    # Written in one batch (one time for all): the later record, alpha's last turn, is the newer.
    assert first.split()[:2] == ["sess-alpha", "2"] and second.split()[:2] == ["sess-beta", "1"]
    # The test conversation's model ("claude-sonnet-5-5") has no listed price.
    assert "unknown" in first and "claude-sonnet-5-5" in first and "just now" in first

    listed = json.loads(lynkr(tmp_path, "sessions", "--json").stdout)
    assert [entry["session_id"] for entry in listed] == ["sess-alpha", "sess-beta"]
    alpha_json = listed[0]
    assert alpha_json["turns"] == 2
    assert (alpha_json["input_tokens"], alpha_json["output_tokens"], alpha_json["tokens"]) == (60, 14, 74)
    assert alpha_json["cost_usd"] is None and alpha_json["models"] == ["claude-sonnet-5-5"]
    assert alpha_json["providers"] == ["openai"] and alpha_json["compacted"] is False

    limited = json.loads(lynkr(tmp_path, "sessions", "--json", "--limit", "1").stdout)
    assert [entry["session_id"] for entry in limited] == ["sess-alpha"]
    assert lynkr(tmp_path, "sessions", "--limit", "0").returncode == 2


def test_sessions_says_so_when_there_are_none_and_names_a_missing_log(tmp_path: Path) -> None:
    missing = lynkr(tmp_path, "sessions")
    assert missing.returncode == 1 and "no event log" in missing.stderr and "Traceback" not in missing.stderr
    write_log(tmp_path, [])
    assert lynkr(tmp_path, "sessions").stdout.strip() == "no sessions recorded yet"


async def test_sessions_lists_while_the_daemon_runs(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, azure_env(upstream))
        async with running_lynkr(config) as running:
            await converse(running.base_url, [("sess-live", "claude-sonnet-4-5")] * 2)
            env = cli_env(tmp_path, LYNKR_DATA_DIR=str(config.data_dir), **azure_env(upstream))
            done = await trio.run_process(
                [sys.executable, "-m", "lynkr", "sessions", "--json"], env=env, cwd=env["WORKSPACE_ROOT"],
                capture_stdout=True, capture_stderr=True, check=False, stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, done.stderr
            [live] = json.loads(done.stdout)
            assert live["session_id"] == "sess-live" and live["turns"] == 2
            assert live["cost_usd"] == pytest.approx(2 * (12 * 3 + 5 * 15) / 1e6)  # the fake's default usage


async def test_a_server_run_loop_counts_each_upstream_round_once(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "sleep 0.3; echo hi"}, id="call_1"),
        Reply.text("All done."),
    )
    env = {
        "MODEL_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-upstream-secret-1234",
        "OPENAI_MODEL": "gpt-4o",
        "TOOL_EXECUTION_MODE": "server",
    }
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {**env, "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions"})
        async with running_lynkr(config) as running, httpx.AsyncClient(base_url=running.base_url, timeout=30) as client:
            response = await client.post("/v1/messages", json={**body("work", "claude-sonnet-4-5"), "stream": True},
                                         headers={"x-claude-code-session-id": "sess-loop"})
            assert response.status_code == 200
    state = load_sessions(config.data_dir)
    session = state.sessions["sess-loop"]
    [use] = session.uses
    # Two rounds upstream (the fake's 12 in, 5 out each); the loop's own completion is not a third.
    assert (use.provider, use.model, use.answers) == ("openai", "gpt-4o", 2)
    assert (use.input_tokens, use.output_tokens) == (24, 10)
    # Each round is timed from its own start: the tool's 0.3 s between the rounds is not upstream time.
    [turn] = session.turns
    assert turn.provider == LOOP_PROVIDER and turn.latency_ms is not None
    assert use.upstream_ms < turn.latency_ms - 250
