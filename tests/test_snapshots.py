"""Derived state rebuilt at start: snapshots used when valid, ignored when not, and the daemon's sessions survive
restarts (a graceful stop and kill -9) exactly as a full replay of the log has them."""

from __future__ import annotations

import re
import signal
import struct
import zlib
from pathlib import Path
from typing import Any

import attrs
import httpx
import lmdb
import pytest
import trio

from lynkr.events.catalog import DaemonStopped
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.projections import SESSIONS, SessionsState, decode_sessions, encode_sessions, replay
from lynkr.events.snapshots import DERIVED_STATE, SESSIONS_STATE, rebuild, save_snapshots
from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, serve_fake
from tests.test_daemon_process import MESSAGE, base_env, daemon, openai_env
from tests.test_projections import attempted, completed, failed, request

KiB = 1024


def conversation(sessions: int, turns: int, start: int = 0) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    for turn in range(start, start + turns):
        for n in range(sessions):
            session_id = f"sess-{n}"
            request_id = f"req_{turn}_{n}"
            events.append((session_id, request(request_id, session_id, text=f"turn {turn}")))
            events.append((session_id, attempted(request_id)))
            answer = failed(request_id, session_id) if turn % 5 == 4 else completed(request_id, session_id, f"a{turn}")
            events.append((session_id, answer))
    return events


def full_replay(store: LmdbEventStore) -> SessionsState:
    state: SessionsState = replay(store, {"sessions": SESSIONS})["sessions"]
    return state


def put_snapshot(path: Path, data: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=5)
    try:
        with env.begin(write=True) as txn:
            txn.put(b"sessions", data, db=env.open_db(b"snapshots", txn=txn))
    finally:
        env.close()


def snapshot_bytes(store: LmdbEventStore) -> bytes:
    data = store.load_snapshot("sessions")
    assert data is not None
    return data


@pytest.fixture
def log_with_snapshot(tmp_path: Path) -> Path:
    """A log of 3 sessions, snapshotted after 4 turns each, then 2 more turns each."""
    path = tmp_path / "log"
    with LmdbEventStore.open(path, map_size=1024 * KiB) as store:
        store.append(conversation(3, 4))
        rebuilt = rebuild(store)
        save_snapshots(store, DERIVED_STATE, rebuilt.states, rebuilt.last_seq)
        store.append(conversation(3, 2, start=4))
    return path


def test_encoded_sessions_decode_to_the_same_state_and_keep_folding(tmp_path: Path) -> None:
    with LmdbEventStore.open(tmp_path / "log") as store:
        store.append(conversation(4, 5))
        state = full_replay(store)
    decoded = decode_sessions(encode_sessions(state))
    assert decoded == state
    assert [s.turns for s in decoded.sessions.values()] == [s.turns for s in state.sessions.values()]
    more = [request("later", "sess-1"), completed("later", "sess-1")]
    from tests.test_projections import fold

    assert fold(more, decoded) == fold(more, state)
    assert encode_sessions(decoded) == encode_sessions(state)


def test_start_up_folds_only_the_tail_after_a_valid_snapshot(log_with_snapshot: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        rebuilt = rebuild(store)
        assert rebuilt.origins[0].snapshot_seq == 36 and rebuilt.origins[0].ignored is None
        assert rebuilt.events_folded == 18
        assert rebuilt.states["sessions"] == full_replay(store)
        assert rebuild(store, use_snapshots=False).states == rebuilt.states


def _assert_ignored_and_rebuilt(path: Path, why: str) -> None:
    with LmdbEventStore.open(path) as store:
        rebuilt = rebuild(store)
        (origin,) = [origin for origin in rebuilt.origins if origin.name == "sessions"]
        assert origin.snapshot_seq is None
        assert origin.ignored is not None and why in origin.ignored
        assert rebuilt.events_folded == store.last_seq()
        assert rebuilt.states["sessions"] == full_replay(store)


def test_a_corrupt_snapshot_is_ignored_and_rebuilt(log_with_snapshot: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        damaged = bytearray(snapshot_bytes(store))
    damaged[len(damaged) // 2] ^= 0xFF
    put_snapshot(log_with_snapshot, bytes(damaged))
    _assert_ignored_and_rebuilt(log_with_snapshot, "corrupt")
    put_snapshot(log_with_snapshot, b"LKS")
    _assert_ignored_and_rebuilt(log_with_snapshot, "corrupt")


def test_a_snapshot_whose_state_does_not_decode_is_ignored(log_with_snapshot: Path) -> None:
    body = struct.pack(">IQI", SESSIONS_STATE.schema, 0, 0) + b"\xc1 not msgpack"
    put_snapshot(log_with_snapshot, struct.pack(">4sI", b"LKS2", zlib.crc32(body)) + body)
    _assert_ignored_and_rebuilt(log_with_snapshot, "does not decode")


def test_a_snapshot_from_an_older_schema_is_ignored(log_with_snapshot: Path) -> None:
    newer = attrs.evolve(SESSIONS_STATE, schema=SESSIONS_STATE.schema + 1)
    with LmdbEventStore.open(log_with_snapshot) as store:
        rebuilt = rebuild(store, (newer,))
        (origin,) = rebuilt.origins
        assert origin.snapshot_seq is None and origin.ignored is not None and f"schema {SESSIONS_STATE.schema}," in origin.ignored
        assert rebuilt.states["sessions"] == full_replay(store)


def test_a_snapshot_of_another_log_is_stale_and_ignored(log_with_snapshot: Path, tmp_path: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        snapshot = snapshot_bytes(store)
    other = tmp_path / "other"
    with LmdbEventStore.open(other) as store:
        store.append(conversation(2, 3))  # fewer events than the snapshot folded
    put_snapshot(other, snapshot)
    _assert_ignored_and_rebuilt(other, "stale")
    with LmdbEventStore.open(other) as store:
        store.append(conversation(2, 10, start=3))  # now more, but record 36 is not the one it folded
    _assert_ignored_and_rebuilt(other, "stale")


def test_a_torn_tail_starts_correctly(log_with_snapshot: Path) -> None:
    env = lmdb.open(str(log_with_snapshot), max_dbs=5)
    try:
        with env.begin(write=True) as txn:
            events = env.open_db(b"events", txn=txn)
            last = txn.cursor(db=events)
            assert last.last()
            torn = bytes(last.value())[: len(last.value()) // 2]
            txn.put(last.key(), torn, db=events)
    finally:
        env.close()
    with LmdbEventStore.open(log_with_snapshot) as store:
        rebuilt = rebuild(store)
        assert rebuilt.origins[0].snapshot_seq == 36
        assert rebuilt.states["sessions"] == full_replay(store)
        assert store.stats().skipped_corrupt >= 1
        (answer,) = [t for t in rebuilt.states["sessions"].sessions["sess-2"].turns if t.request_id == "req_5_2"]
        assert answer.message is None  # the torn record was its answer


def test_deleting_every_snapshot_changes_nothing_but_time(log_with_snapshot: Path) -> None:
    with LmdbEventStore.open(log_with_snapshot) as store:
        with_snapshot = rebuild(store).states
        store.delete_snapshots()
        assert store.load_snapshot("sessions") is None
        assert rebuild(store).states == with_snapshot


# The daemon


async def test_the_running_daemon_keeps_sessions_live_and_snapshots_them_at_shutdown(tmp_path: Path) -> None:
    fake = FakeUpstream()
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, openai_env(upstream))
        async with running_lynkr(config) as lynkr:
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
                for n in range(3):
                    headers = {"x-claude-code-session-id": f"live-{n % 2}"}
                    response = await client.post("/v1/messages", json=MESSAGE, headers=headers)
                    assert response.status_code == 200
            def finished_turns() -> int:
                sessions = lynkr.derived.states["sessions"].sessions.values()
                return sum(turn.finished for session in sessions for turn in session.turns)

            with trio.fail_after(5):
                while finished_turns() < 3:  # the events are folded once the recorder has committed them
                    await trio.sleep(0.01)
            live: SessionsState = lynkr.derived.states["sessions"]
            assert [len(live.sessions[s].turns) for s in ("live-0", "live-1")] == [2, 1]
    with LmdbEventStore.open(config.data_dir / "events") as store:
        rebuilt = rebuild(store)
        assert rebuilt.origins[0].snapshot_seq is not None
        assert rebuilt.states["sessions"] == full_replay(store)
        assert dict(rebuilt.states["sessions"].sessions) == dict(live.sessions)


def _sessions_after_restart(data_dir: Path) -> tuple[SessionsState, SessionsState, int | None]:
    """The sessions the last daemon snapshotted at shutdown, a full replay up to that point, and its seq."""
    with LmdbEventStore.open(data_dir / "events") as store:
        rebuilt = rebuild(store)
        snapshot_seq = rebuilt.origins[0].snapshot_seq
        return rebuilt.states["sessions"], full_replay(store), snapshot_seq


@pytest.mark.filterwarnings(
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected:ResourceWarning"
)
async def test_sessions_are_identical_after_a_restart_and_after_kill_9(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    data_dir = tmp_path / "data"

    async def converse(base_url: str, turns: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            for n in range(turns):
                headers = {"x-claude-code-session-id": f"sess-{n % 3}"}
                response = await client.post("/v1/messages", json=MESSAGE, headers=headers)
                assert response.status_code == 200

    async with serve_fake(FakeUpstream()) as upstream:
        env.update(openai_env(upstream), LYNKR_SNAPSHOT_INTERVAL_S="0.2")
        async with daemon(env) as lynkr:
            await converse(lynkr.base_url, 6)
            lynkr.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await lynkr.process.wait() == 0
        before, replayed, snapshot_seq = _sessions_after_restart(data_dir)
        assert snapshot_seq is not None and before == replayed
        assert sum(len(s.turns) for s in before.sessions.values()) == 6

        # kill -9 after a periodic snapshot and more turns: the next daemon folds the tail onto the snapshot.
        async with daemon(env) as lynkr:
            await converse(lynkr.base_url, 4)
            await trio.sleep(0.6)
            await converse(lynkr.base_url, 2)
            lynkr.process.kill()
            await lynkr.process.wait()
        async with daemon(env) as lynkr:
            await converse(lynkr.base_url, 1)
            lynkr.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await lynkr.process.wait() == 0
            stderr = lynkr.stderr()
            assert "Traceback" not in stderr
    after, replayed, snapshot_seq = _sessions_after_restart(data_dir)
    assert snapshot_seq is not None and after == replayed
    # A kill may lose what was not yet committed (the last turns), never what was.
    assert 6 + 4 + 1 <= sum(len(s.turns) for s in after.sessions.values()) <= 13
    # The last daemon started from the periodic snapshot the killed one wrote, not from the whole log.
    (folded,) = re.findall(r"rebuilt derived state from (\d+) events", stderr)
    assert int(folded) < snapshot_seq / 2
    with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
        assert isinstance(list(store.read())[-1].event, DaemonStopped)


# lynkr replay --rebuild


def test_replay_rebuild_folds_the_whole_log_reports_counts_and_writes_snapshots(tmp_path: Path) -> None:
    from tests.test_cli import lynkr, write_log

    events_dir = write_log(tmp_path, conversation(3, 4))
    with LmdbEventStore.open(events_dir) as store:
        store.save_snapshot("sessions", b"stale garbage")  # ignored: --rebuild never reads snapshots
    ran = lynkr(tmp_path, "replay", "--rebuild")
    assert ran.returncode == 0, ran.stderr
    assert "rebuilt from 36 events in" in ran.stdout
    assert "sessions: 3 sessions, 12 turns" in ran.stdout
    with LmdbEventStore.open(events_dir) as store:
        rebuilt = rebuild(store)
        assert rebuilt.origins[0].snapshot_seq == 36 and rebuilt.events_folded == 0
        assert rebuilt.states["sessions"] == full_replay(store)
    refused = lynkr(tmp_path, "replay", "some-session", "--rebuild")
    assert refused.returncode == 2 and "leave out the session id" in refused.stderr


# The projector


async def test_a_projector_that_falls_behind_catches_up_from_the_log(tmp_path: Path) -> None:
    from functools import partial

    from lynkr.actors import projector
    from lynkr.actors.projector import LiveState
    from lynkr.actors.recorder import Append, Hub, Recorder
    from lynkr.actors.recorder import run as run_recorder
    from lynkr.events.scrub import Scrubber

    with LmdbEventStore.open(tmp_path / "log", map_size=4096 * KiB) as store:
        store.append(conversation(2, 2))  # history before the daemon started
        rebuilt = rebuild(store)
        live = LiveState(states=rebuilt.states, last_seq=rebuilt.last_seq)
        send, receive = trio.open_memory_channel[Append](4096)
        hub = Hub()
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(run_recorder, store, receive, scrubber=Scrubber(), hub=hub))
            recorder = Recorder(send, hub)
            await nursery.start(
                partial(projector.run, store, hub, DERIVED_STATE, live, interval_s=3600.0, buffer=2)
            )
            # Queued without yielding: the recorder commits them in one batch and publishes more than the
            # projector's buffer holds, so the hub drops it and it must catch up from the log.
            for stream, event in conversation(3, 4, start=2):
                send.send_nowait(Append(stream=stream, event=event))
            await recorder.record_durably("daemon", DaemonStopped(reason="marker"))
            with trio.fail_after(10):
                while live.last_seq < store.last_seq():
                    await trio.sleep(0.01)
            assert hub.statistics().dropped_subscribers >= 1
            assert live.states["sessions"] == full_replay(store)
            nursery.cancel_scope.cancel()
        # Stopping wrote a snapshot of what it had folded.
        again = rebuild(store)
        assert again.origins[0].snapshot_seq == live.last_seq and again.events_folded == 0
