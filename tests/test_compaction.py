"""`lynkr log compact`: old sessions lose their bulk and keep a summary; everything else stays byte for byte.

Real logs in tmp folders, the real command as a subprocess, and the daemon as a real subprocess where the lock
and start-up matter.  A crash is simulated at each step of the swap, and by killing a compaction mid-write.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from lynkr.agent.events import AGENT_STREAM, TOOLS_STREAM, RoundsKept
from lynkr.cache.events import CACHE_STREAM, CacheEvicted, CacheHit, CacheStored
from lynkr.datadir import compacted_dir, compacting_dir
from lynkr.events.catalog import (
    DaemonStarted,
    LimitLearned,
    RequestReceived,
    ResponseCompleted,
    SessionCompacted,
    UpstreamAttempted,
)
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.projections import SESSIONS, SessionsState, replay
from lynkr.events.records import Event, Recorded
from lynkr.events.transcript import split
from lynkr.tools.events import ToolRan
from lynkr.upstream.recording import UpstreamResponded
from tests.fakes import FakeUpstream, serve_fake
from tests.test_cli import cli_env, lynkr
from tests.test_daemon_process import MESSAGE, base_env, daemon, openai_env

NS_PER_DAY = 86_400 * 1_000_000_000
SHARED = "You are a careful engineer. " * 40  # the same long first message in both sessions: a shared blob
SYSTEM = "Follow the house style. " * 400  # makes every body long enough to be stored content-addressed


def big_request(request_id: str, session_id: str, texts: list[str]) -> RequestReceived:
    messages: list[dict[str, Any]] = [{"role": "user", "content": SHARED}]
    for number, text in enumerate(texts):
        messages.append({"role": "assistant", "content": f"answer {number}: " + "lorem ipsum " * 40})
        messages.append({"role": "user", "content": text + " " + "details " * 60})
    body = {"model": "gpt-4o", "max_tokens": 100, "system": SYSTEM, "messages": messages}
    return RequestReceived.of(request_id=request_id, session_id=session_id, path="/v1/messages", headers={},
                              request=body, body=orjson.dumps(body))


def answered(request_id: str, session_id: str) -> ResponseCompleted:
    return ResponseCompleted(
        request_id=request_id, session_id=session_id, provider="openai", model="claude-sonnet-4-5",
        message={"model": "gpt-4o", "role": "assistant", "content": [{"type": "text", "text": "done"}],
                 "usage": {"input_tokens": 1000, "output_tokens": 100}},
        latency_ms=800.0,
    )


def turns(session_id: str, count: int, prefix: str) -> list[tuple[str, Event]]:
    events: list[tuple[str, Event]] = []
    for turn in range(count):
        request_id = f"{prefix}{turn}"
        events.append((session_id, big_request(request_id, session_id, [f"{prefix} question {n}" for n in range(turn + 1)])))
        events.append((session_id, UpstreamAttempted(request_id=request_id, provider="openai", attempt=1, status=200,
                                                     latency_ms=790.0, error=None, will_retry=False)))
        events.append((session_id, raw_answer(request_id, f"{prefix} raw answer {turn} ".encode() * 40)))
        events.append((session_id, answered(request_id, session_id)))
    return events


def raw_answer(request_id: str, body: bytes) -> UpstreamResponded:
    return UpstreamResponded(request_id=request_id, provider="openai", kind="openai", attempt=1, wire="openai",
                             streamed=False, complete=True, message_id="msg_1", model="gpt-4o", input_tokens=1000,
                             tool_ids="", reads=b"", size=len(body), body=body)


def about_old_session() -> list[tuple[str, Event]]:
    """Records in other streams that concern only the old session: they go with it."""
    return [
        (AGENT_STREAM, RoundsKept(session_id="sess-old", request_id="old0", key="k-old",
                                  messages=[{"role": "assistant", "content": "x" * 500}], results=[])),
        (TOOLS_STREAM, ToolRan(session_id="sess-old", tool_use_id="toolu_1", tool="Bash", canonical="shell",
                               arguments={"command": "ls"}, result_bytes=10, output_bytes=10, exit_code=0,
                               is_error=False, duration_ms=3.0)),
        (CACHE_STREAM, CacheStored(key="key-old", request_id="old1", provider="openai", model="gpt-4o",
                                   message={"content": "y" * 500}, size=520, expires_at_ms=1)),
        (CACHE_STREAM, CacheHit(key="key-old", request_id="old2", session_id="sess-old")),
        (CACHE_STREAM, CacheEvicted(key="key-old", reason="expired")),
    ]


def write_history(tmp_path: Path, now_ns: int) -> Path:
    """sess-old (idle 40 days), sess-new (active now), and records that are nobody's session."""
    events_dir = tmp_path / "data" / "events"
    old = now_ns - 40 * NS_PER_DAY
    with LmdbEventStore.open(events_dir) as store:
        store.append([("daemon", DaemonStarted(version="0.1.0", pid=1, config={}))], time_ns=old)
        store.append(turns("sess-old", 3, "old"), time_ns=old)
        store.append(about_old_session(), time_ns=old)
        store.append([("limits", LimitLearned(provider="openai", model="gpt-4o", kind="output", value=16384))],
                     time_ns=old)
        store.append(turns("sess-new", 2, "new"), time_ns=now_ns)
        store.append([(AGENT_STREAM, RoundsKept(session_id="sess-new", request_id="new0", key="k-new",
                                                messages=[{"role": "assistant", "content": "kept"}], results=[]))],
                     time_ns=now_ns)
    return events_dir


def read_all(events_dir: Path) -> tuple[dict[int, bytes], list[Recorded]]:
    """Raw records by seq, and decoded records with request bodies joined."""
    with LmdbEventStore.open(events_dir, readonly=True) as store:
        raw = dict(store.read_raw())
        decoded = [
            Recorded(seq=r.seq, time_ns=r.time_ns, stream=r.stream, event=r.event.whole())
            if isinstance(r.event, RequestReceived) else r
            for r in store.read()
        ]
    return raw, decoded


def blob_digests(records: list[Recorded], session_id: str) -> set[bytes]:
    """The digests of every blob (and chain node) the session's request bodies are stored as."""
    return {
        digest
        for record in records
        if record.stream == session_id and isinstance(record.event, RequestReceived)
        for digest in split(record.event.body).blobs
    }


def listing(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    ran = lynkr(tmp_path, "sessions", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    return {entry["session_id"]: entry for entry in json.loads(ran.stdout)}


def totals(entry: dict[str, Any]) -> dict[str, Any]:
    """What a summary must keep of a session."""
    keys = ("turns", "input_tokens", "output_tokens", "cost_usd", "models", "providers", "first_activity_ns",
            "last_activity_ns", "upstream_ms")
    return {key: entry[key] for key in keys}


def test_compaction_keeps_a_summary_drops_the_bulk_and_keeps_the_rest_byte_identical(tmp_path: Path) -> None:
    now_ns = time.time_ns()
    events_dir = write_history(tmp_path, now_ns)
    raw_before, before = read_all(events_dir)
    listed_before = listing(tmp_path)

    ran = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert ran.returncode == 0, ran.stderr
    assert "compacted 1 sessions idle for more than 30 days" in ran.stdout
    aside = [path for path in (tmp_path / "data").iterdir() if path.name.startswith("events.before-compaction-")]
    assert len(aside) == 1 and str(aside[0]) in ran.stdout
    assert not compacting_dir(tmp_path / "data").exists() and not compacted_dir(tmp_path / "data").exists()

    raw_after, after = read_all(events_dir)
    kept_streams = {"sess-new", "daemon", "limits"}
    # Every record of the new session and of the streams about no session: the same bytes at the same seq.
    for record in before:
        if record.stream in kept_streams:
            assert raw_after[record.seq] == raw_before[record.seq]
    new_requests = [r.event for r in before if r.stream == "sess-new" and isinstance(r.event, RequestReceived)]
    assert [r.event for r in after if r.stream == "sess-new" and isinstance(r.event, RequestReceived)] == new_requests
    assert all(request.body for request in new_requests)  # joined from the blobs still in the new log
    # The old session is one summary, at the seq of its last dropped record.
    [summary] = [r for r in after if r.stream == "sess-old"]
    assert isinstance(summary.event, SessionCompacted)
    assert summary.event.turns == 3 and summary.event.events_dropped == 12 + 3
    assert summary.seq == max(r.seq for r in before if _about_old(r))
    # What concerned only the old session went with it; the new session's splice record stayed.
    assert not [r for r in after if r.stream in (TOOLS_STREAM, CACHE_STREAM)]
    assert [r.event.session_id for r in after if isinstance(r.event, RoundsKept)] == ["sess-new"]
    assert [type(r.event) for r in after if r.stream in ("daemon", "limits")] == [DaemonStarted, LimitLearned]
    # Blobs only the old session used are gone; the shared first message and system prompt stayed.
    old_blobs, new_blobs = blob_digests(before, "sess-old"), blob_digests(before, "sess-new")
    assert old_blobs - new_blobs and old_blobs & new_blobs
    with LmdbEventStore.open(events_dir, readonly=True) as store:
        assert all(store.blob(digest) is None for digest in old_blobs - new_blobs)
        assert all(store.blob(digest) is not None for digest in new_blobs)
        assert store.load_snapshot("sessions") is None  # derived: rebuilt by the next start
        # The raw upstream answers kept for `replay --check` go with their session, and stay with the others.
        answers = {r.stream: r.event.digest for r in before if isinstance(r.event, UpstreamResponded)}
        assert store.blob(answers["sess-old"]) is None and store.blob(answers["sess-new"]) is not None
    assert os.path.getsize(events_dir / "data.mdb") < os.path.getsize(aside[0] / "data.mdb")

    listed_after = listing(tmp_path)
    assert listed_after["sess-old"]["compacted"] is True and listed_after["sess-new"]["compacted"] is False
    assert totals(listed_after["sess-old"]) == totals(listed_before["sess-old"])
    assert listed_after["sess-new"] == listed_before["sess-new"]
    # Compacting again finds nothing more to drop.
    again = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert again.returncode == 0 and "nothing to compact" in again.stdout


def _about_old(record: Recorded) -> bool:
    return record.stream == "sess-old" or getattr(record.event, "session_id", None) == "sess-old"


def test_compaction_needs_a_retention_and_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    events_dir = write_history(tmp_path, time.time_ns())
    raw_before, _ = read_all(events_dir)
    refused = lynkr(tmp_path, "log", "compact")
    assert refused.returncode == 2 and "LYNKR_RETAIN_DAYS" in refused.stderr
    dry = lynkr(tmp_path, "log", "compact", "--dry-run", env=cli_env(tmp_path, LYNKR_RETAIN_DAYS="30"))
    assert dry.returncode == 0, dry.stderr
    assert "would compact 1 sessions" in dry.stdout
    assert read_all(events_dir)[0] == raw_before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["daemon.lock", "events"]


# The swap, interrupted


def compacted_copy(tmp_path: Path, now_ns: int) -> Path:
    """The log a finished compaction of write_history's log writes, made in a folder of its own."""
    other = tmp_path / "other"
    write_history(other, now_ns)
    assert lynkr(other, "log", "compact", "--retain-days", "30").returncode == 0
    return other / "data" / "events"


def test_a_leftover_half_written_copy_is_discarded_and_the_old_log_serves(tmp_path: Path) -> None:
    events_dir = write_history(tmp_path, time.time_ns())
    raw_before, _ = read_all(events_dir)
    half = compacting_dir(tmp_path / "data")
    half.mkdir()
    (half / "data.mdb").write_bytes(b"\0" * 4096)  # a crash while writing the copy
    assert listing(tmp_path)["sess-old"]["compacted"] is False
    ran = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert ran.returncode == 0, ran.stderr
    assert listing(tmp_path)["sess-old"]["compacted"] is True
    assert not half.exists()
    assert read_all(events_dir)[0] != raw_before


async def test_a_swap_stopped_at_either_rename_is_finished_by_the_next_daemon(tmp_path: Path) -> None:
    now_ns = time.time_ns()
    data_dir = tmp_path / "data"
    # Crash after the copy was marked complete, before the old log moved aside: both are whole.
    write_history(tmp_path, now_ns)
    shutil.copytree(compacted_copy(tmp_path, now_ns), compacted_dir(data_dir))
    assert listing(tmp_path)["sess-old"]["compacted"] is False  # readers still see the old log
    await _run_daemon_once(tmp_path)
    assert listing(tmp_path)["sess-old"]["compacted"] is True
    assert not compacted_dir(data_dir).exists()

    # Crash after the old log moved aside, before the new one took its place: readers use the new one.
    shutil.rmtree(data_dir)
    shutil.rmtree(tmp_path / "other")
    write_history(tmp_path, now_ns)
    shutil.copytree(compacted_copy(tmp_path, now_ns), compacted_dir(data_dir))
    (data_dir / "events").rename(data_dir / "events.before-compaction-crashed")
    assert listing(tmp_path)["sess-old"]["compacted"] is True
    await _run_daemon_once(tmp_path)
    assert (data_dir / "events").is_dir() and not compacted_dir(data_dir).exists()
    assert listing(tmp_path)["sess-old"]["compacted"] is True


async def _run_daemon_once(tmp_path: Path) -> None:
    async with serve_fake(FakeUpstream()) as upstream:
        env = {**base_env(tmp_path), **openai_env(upstream)}
        async with daemon(env) as running:
            running.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await running.process.wait() == 0


def test_killing_a_compaction_at_any_moment_leaves_a_whole_log(tmp_path: Path) -> None:
    now_ns = time.time_ns()
    events_dir = write_history(tmp_path, now_ns)
    with LmdbEventStore.open(events_dir) as store:  # a larger log, so that the copy takes a while
        store.append(turns("sess-bulk", 60, "bulk"), time_ns=now_ns - 50 * NS_PER_DAY)
    expected = listing(tmp_path)
    env = cli_env(tmp_path)
    for delay in (0.0, 0.3, 0.6):
        process = subprocess.Popen([sys.executable, "-m", "lynkr", "log", "compact", "--retain-days", "30"],
                                   env=env, cwd=env["WORKSPACE_ROOT"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not compacting_dir(tmp_path / "data").exists() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(delay)
        process.kill()
        process.wait()
        # Whatever the moment, a reader finds one whole log: the old one or the compacted one.
        now = listing(tmp_path)
        for session_id in ("sess-old", "sess-bulk"):
            assert totals(now[session_id]) == totals(expected[session_id])
        assert now["sess-new"] == expected["sess-new"]
    finished = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert finished.returncode == 0, finished.stderr
    final = listing(tmp_path)
    assert final["sess-old"]["compacted"] and final["sess-bulk"]["compacted"]
    assert totals(final["sess-bulk"]) == totals(expected["sess-bulk"])


# With the daemon


async def test_compaction_refuses_while_the_daemon_runs_and_the_daemon_starts_on_the_compacted_log(
    tmp_path: Path,
) -> None:
    now_ns = time.time_ns()
    write_history(tmp_path, now_ns)
    async with serve_fake(FakeUpstream()) as upstream:
        env = {**base_env(tmp_path), **openai_env(upstream)}
        async with daemon(env) as running:
            refused = await trio.to_thread.run_sync(
                lambda: lynkr(tmp_path, "log", "compact", "--retain-days", "30")
            )
            assert refused.returncode == 1
            assert "cannot compact the log while the daemon runs" in refused.stderr
            assert "Traceback" not in refused.stderr
            running.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await running.process.wait() == 0
        assert lynkr(tmp_path, "log", "compact", "--retain-days", "30").returncode == 0
        compacted = listing(tmp_path)
        async with daemon(env) as running:
            async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as client:
                response = await client.post("/v1/messages", json=MESSAGE,
                                             headers={"x-claude-code-session-id": "sess-new"})
                assert response.status_code == 200
            running.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await running.process.wait() == 0
    after = listing(tmp_path)
    assert after["sess-old"] == compacted["sess-old"]
    assert after["sess-new"]["turns"] == compacted["sess-new"]["turns"] + 1
    # The daemon's snapshot of the compacted log is what a full replay of it gives.
    with LmdbEventStore.open(tmp_path / "data" / "events", readonly=True) as store:
        replayed: SessionsState = replay(store, {"sessions": SESSIONS})["sessions"]
    from lynkr.sessions.listing import load_sessions

    assert load_sessions(tmp_path / "data") == replayed
    # The summary, now in the daemon's snapshot, is not compacted again.
    again = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert again.returncode == 0 and "nothing to compact" in again.stdout


def test_a_session_named_like_a_shared_stream_takes_only_its_own_records(tmp_path: Path) -> None:
    now_ns = time.time_ns()
    events_dir = write_history(tmp_path, now_ns)
    with LmdbEventStore.open(events_dir) as store:  # a client that called its session "daemon"
        store.append(turns("daemon", 1, "odd"), time_ns=now_ns - 40 * NS_PER_DAY)
    ran = lynkr(tmp_path, "log", "compact", "--retain-days", "30")
    assert ran.returncode == 0, ran.stderr
    _, after = read_all(events_dir)
    in_daemon_stream = [type(r.event) for r in after if r.stream == "daemon"]
    # The daemon's own record stays; the session's request and answer go (its attempt names no session, and
    # stays: what cannot be told apart is kept).
    assert DaemonStarted in in_daemon_stream and SessionCompacted in in_daemon_stream
    assert RequestReceived not in in_daemon_stream and ResponseCompleted not in in_daemon_stream
