"""Derived state across real daemon processes, stopped gracefully and killed with SIGKILL: the prompt cache, a
server-run round's splice and learned limits come back exactly (from a snapshot and the log's tail), and a log
with a corrupt snapshot, an older-schema snapshot and a torn tail still starts and answers."""

from __future__ import annotations

import re
import signal
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import lmdb
import trio

from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.snapshots import rebuild
from tests.fakes import FakeUpstream, OutputLimit, Reply, serve_fake
from tests.test_agent_loop import CLIENT_TOOLS, FIRST_USER
from tests.test_cache_process import answer, ask, entries, kill, wait_for_entries
from tests.test_daemon_process import Daemon, base_env, daemon, openai_env


async def stop(lynkr: Daemon) -> str:
    """SIGTERM, a clean exit (which writes snapshots), and what the daemon logged."""
    lynkr.process.send_signal(signal.SIGTERM)
    with trio.fail_after(10):
        assert await lynkr.process.wait() == 0
    return lynkr.stderr()


async def metric(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def folded_events(stderr: str) -> int:
    (folded,) = re.findall(r"rebuilt derived state from (\d+) events", stderr)
    return int(folded)


def rebuilt_equals_full_replay(data_dir: Path) -> dict[str, int | None]:
    """Rebuilding from the snapshots gives what folding the whole log gives; the snapshot seq of each state."""
    with LmdbEventStore.open(data_dir / "events") as store:
        from_snapshots = rebuild(store)
        assert from_snapshots.states == rebuild(store, use_snapshots=False).states
        return {origin.name: origin.snapshot_seq for origin in from_snapshots.origins}


async def test_the_prompt_cache_is_identical_after_a_restart_and_after_kill_9(tmp_path: Path) -> None:
    ttl_s = 1.5
    fake = FakeUpstream()
    fake.push(Reply.text("A"), Reply.text("B"), Reply.text("C"), Reply.text("short"), Reply.text("short again"))
    async with serve_fake(fake) as upstream:
        env = base_env(tmp_path, **openai_env(upstream), LYNKR_SNAPSHOT_INTERVAL_S="0.2")
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert [await answer(client, text) for text in ("a", "b")] == ["A", "B"]
            await wait_for_entries(client, 2)  # a store is on disk before the cache holds it
            assert await answer(client, "a") == "A"
            await stop(lynkr)
        assert rebuilt_equals_full_replay(tmp_path / "data")["prompt_cache"] is not None

        # From the shutdown snapshot; then a periodic snapshot, a tail after it (a hit and a store), and kill -9.
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert (await entries(client), await metric(client, "lynkr_prompt_cache_hits_total")) == (2, 1)
            assert await answer(client, "b") == "B"
            await trio.sleep(0.6)
            assert await answer(client, "a") == "A"
            # A hit is recorded without waiting for the disk; the durable store after it commits it too.
            assert await answer(client, "c") == "C"
            await wait_for_entries(client, 3)
            held = await metric(client, "lynkr_prompt_cache_bytes")
            await kill(lynkr)
        assert len(fake.model_calls) == 3

        async with daemon({**env, "PROMPT_CACHE_TTL_MS": str(int(ttl_s * 1000))}) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                assert await entries(client) == 3
                assert await metric(client, "lynkr_prompt_cache_bytes") == held
                assert await metric(client, "lynkr_prompt_cache_hits_total") == 3
                assert await metric(client, "lynkr_prompt_cache_misses_total") == 3
                assert [await answer(client, text) for text in ("a", "b", "c")] == ["A", "B", "C"]
                assert len(fake.model_calls) == 3, "answered from the rebuilt cache, the upstream not called"
                assert await answer(client, "briefly") == "short"
                await wait_for_entries(client, 4)
                stored_at = trio.current_time()
                await kill(lynkr)
            assert folded_events(lynkr.stderr()) < rebuilt_equals_full_replay(tmp_path / "data")["prompt_cache"]

        await trio.sleep_until(stored_at + ttl_s + 0.2)  # the short-lived answer expires while no daemon runs
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await entries(client) == 3, "the expired answer is not rebuilt"
            assert await answer(client, "briefly") == "short again"
            assert await answer(client, "c") == "C"
            assert await metric(client, "lynkr_prompt_cache_hits_total") == 7
            await stop(lynkr)
    assert len(fake.model_calls) == 5
    rebuilt_equals_full_replay(tmp_path / "data")


def _request(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 200, "stream": False, "tools": CLIENT_TOOLS,
            "messages": messages}


async def test_a_server_run_round_is_spliced_into_the_next_request_after_kill_9(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo server > s.txt"}, id="call_bash"),
        Reply.tool_call(name="Agent", arguments={"prompt": "look around"}, id="call_agent", text="Asking a helper."),
        Reply.text("Thanks."),
        Reply.text("Thanks again."),
    )
    async with serve_fake(fake) as upstream:
        env = base_env(tmp_path, **openai_env(upstream), TOOL_EXECUTION_MODE="server")
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=30) as client:
            first = await client.post("/v1/messages", json=_request([FIRST_USER]))
            assert first.status_code == 200, first.text
            await kill(lynkr)  # the rounds were kept durably before the answer went out
        received = first.json()
        assert [(b["type"], b.get("name")) for b in received["content"]] == [("text", None), ("tool_use", "Agent")]
        follow_up = _request([
            FIRST_USER,
            {"role": "assistant", "content": received["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_agent", "content": "helped"}]},
        ])

        def assert_spliced(call: int) -> None:
            saw = fake.model_calls[call].request.json["messages"]
            assert [m["role"] for m in saw if m["role"] != "system"] == ["user", "assistant", "tool", "assistant", "tool"]
            assistants = [m for m in saw if m["role"] == "assistant"]
            assert [[c["id"] for c in m["tool_calls"]] for m in assistants] == [["call_bash"], ["call_agent"]]

        # The splice from the log's tail (no snapshot yet), then from the snapshot the clean stop writes.
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=30) as client:
            second = await client.post("/v1/messages", json=follow_up)
            assert second.json()["content"] == [{"type": "text", "text": "Thanks."}]
            await stop(lynkr)
        assert_spliced(2)
        assert rebuilt_equals_full_replay(tmp_path / "data")["splices"] is not None
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=30) as client:
            third = await client.post("/v1/messages", json=follow_up)
            assert third.json()["content"] == [{"type": "text", "text": "Thanks again."}]
            await stop(lynkr)
        assert_spliced(3)
    assert (tmp_path / "workspace" / "s.txt").read_text() == "server\n"


async def test_learned_limits_survive_kill_9_and_a_snapshot(tmp_path: Path) -> None:
    fake = FakeUpstream(limits=(OutputLimit(16384, wording="openai"),))
    request = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}]}

    def statuses() -> list[int]:
        return [call.reply.http_status for call in fake.model_calls if call.reply is not None]

    async with serve_fake(fake) as upstream:
        env = base_env(
            tmp_path, **{**openai_env(upstream), "OPENAI_MODEL": "house-model"}, PROMPT_CACHE_ENABLED="false"
        )
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert (await client.post("/v1/messages", json=request)).status_code == 200
            await kill(lynkr)
        assert statuses() == [400, 200]
        for _ in range(2):  # from the log after kill -9, then from the snapshot the clean stop wrote
            async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                assert (await client.post("/v1/messages", json=request)).status_code == 200
                await stop(lynkr)
        assert rebuilt_equals_full_replay(tmp_path / "data")["limits"] is not None
    assert statuses() == [400, 200, 200, 200], "no refusal after a restart"
    sent = [call.request.json.get("max_completion_tokens") or call.request.json.get("max_tokens")
            for call in fake.model_calls]
    assert sent == [32000, 16384, 16384, 16384]


def _damage(data_dir: Path) -> None:
    """The prompt cache's snapshot corrupt, the splice table's from an older schema, the last record torn."""
    env = lmdb.open(str(data_dir / "events"), max_dbs=5)
    try:
        with env.begin(write=True) as txn:
            snapshots = env.open_db(b"snapshots", txn=txn)
            cache = bytearray(txn.get(b"prompt_cache", db=snapshots))
            cache[-2] ^= 0xFF
            txn.put(b"prompt_cache", bytes(cache), db=snapshots)
            splices = bytes(txn.get(b"splices", db=snapshots))
            schema, last_seq, record_crc = struct.unpack_from(">IQI", splices, 8)
            body = struct.pack(">IQI", schema - 1, last_seq, record_crc) + splices[24:]
            txn.put(b"splices", struct.pack(">4sI", b"LKS2", zlib.crc32(body)) + body, db=snapshots)
            events = env.open_db(b"events", txn=txn)
            last = txn.cursor(db=events)
            assert last.last()
            txn.put(last.key(), bytes(last.value())[: len(last.value()) // 2], db=events)
    finally:
        env.close()


async def test_a_daemon_starts_and_answers_on_a_corrupt_snapshot_an_older_schema_and_a_torn_tail(
    tmp_path: Path,
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("kept"), Reply.text("new"))
    async with serve_fake(fake) as upstream:
        env = base_env(tmp_path, **openai_env(upstream))
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await answer(client, "keep this") == "kept"
            await wait_for_entries(client, 1)
            await stop(lynkr)
        _damage(tmp_path / "data")
        async with daemon(env) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await entries(client) == 1
            assert await answer(client, "keep this") == "kept"
            assert await answer(client, "something new") == "new"
            response = await client.post("/v1/messages", json=ask("keep this"))
            assert response.json()["usage"]["cache_read_input_tokens"] > 0
            stderr = await stop(lynkr)
    assert len(fake.model_calls) == 2
    assert "ignoring the prompt_cache snapshot and rebuilding it from the log: it is corrupt" in stderr
    assert "ignoring the splices snapshot" in stderr and "this lynkr uses schema" in stderr
    assert "skipping corrupt event log record" in stderr
    assert "Traceback" not in stderr
    rebuilt_equals_full_replay(tmp_path / "data")


async def test_with_the_cache_switched_off_metrics_count_only_the_answers_still_valid(tmp_path: Path) -> None:
    from tests.conftest import make_config, running_lynkr

    fake = FakeUpstream()
    fake.push(Reply.text("long"), Reply.text("brief"))
    async with serve_fake(fake) as upstream:
        async with running_lynkr(make_config(tmp_path, openai_env(upstream))) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                assert await answer(client, "long") == "long"
                await wait_for_entries(client, 1)
        async with running_lynkr(make_config(tmp_path, {**openai_env(upstream), "PROMPT_CACHE_TTL_MS": "300"})) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                assert await answer(client, "brief") == "brief"
                await wait_for_entries(client, 2)
        await trio.sleep(0.4)  # the brief answer's TTL passes
        off = make_config(tmp_path, {**openai_env(upstream), "PROMPT_CACHE_ENABLED": "false"})
        async with running_lynkr(off) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            assert await entries(client) == 1, "the expired answer is not counted as held"
