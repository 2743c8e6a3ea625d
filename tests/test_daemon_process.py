"""The daemon as a real process: `python -m lynkr` started, signalled, killed and restarted by the test.

Each daemon's stdout and stderr go to files in the test's folder, so a chatty daemon can never block on a full
pipe and a failing test can show what the daemon said.  Fake upstreams run in the test's own trio loop.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from lynkr.cache.events import CacheHit, CacheMiss, CacheStored
from lynkr.events.catalog import DaemonStarted, RequestReceived, ResponseCompleted, UpstreamAttempted
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Recorded
from tests.fakes import FakeUpstream, Reply, serve_fake

START_TIMEOUT_S = 20.0
MESSAGE = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@attrs.define
class Daemon:
    process: trio.Process
    base_url: str
    banner: list[str]
    stderr_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        return self.stderr_path.read_text()


@attrs.frozen
class Exited:
    returncode: int
    stdout: str
    stderr: str


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell may configure the daemon under test."""
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PORT": "0",
        "LYNKR_HOST": "127.0.0.1",
        "LYNKR_DATA_DIR": str(tmp_path / "data"),
        "WORKSPACE_ROOT": str(workspace),
        "LYNKR_SHUTDOWN_GRACE_S": "5",
        # The code under test, when the test run puts it first on the path (a worktree beside an installed copy).
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        **extra,
    }


def openai_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "openai",
        "OPENAI_ENDPOINT": f"{upstream}/v1/chat/completions",
        "OPENAI_API_KEY": "sk-upstream-secret-5678",
        "OPENAI_MODEL": "gpt-test",
    }


_launches = 0


@asynccontextmanager
async def daemon(env: Mapping[str, str]) -> AsyncIterator[Daemon]:
    """Start `python -m lynkr`, wait for its banner, and make sure it is gone when the block ends."""
    global _launches
    _launches += 1
    folder = Path(env["HOME"])
    stdout_path = folder / f"daemon-{_launches}.out"
    stderr_path = folder / f"daemon-{_launches}.err"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "lynkr"], stdout=stdout, stderr=stderr, env=dict(env), cwd=env["WORKSPACE_ROOT"]
        )
    try:
        with trio.fail_after(START_TIMEOUT_S):
            while "export ANTHROPIC_API_KEY=" not in stdout_path.read_text():
                if process.poll() is not None:
                    raise AssertionError(f"the daemon exited with {process.returncode}: {stderr_path.read_text()}")
                await trio.sleep(0.02)
        banner = stdout_path.read_text().splitlines()
        url = banner[0].rsplit(" ", 1)[1]
        yield Daemon(process=process, base_url=url, banner=banner, stderr_path=stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def run_to_exit(env: Mapping[str, str], *args: str) -> Exited:
    """Run `python -m lynkr ARGS` to completion (it is expected to fail fast)."""
    with trio.fail_after(START_TIMEOUT_S):
        done = await trio.run_process(
            [sys.executable, "-m", "lynkr", *args],
            env=dict(env),
            cwd=env["WORKSPACE_ROOT"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return Exited(done.returncode, done.stdout.decode(), done.stderr.decode())


def assert_one_clear_line(exited: Exited, *, code: int, mentions: tuple[str, ...]) -> str:
    assert exited.returncode == code, exited.stderr
    assert "Traceback" not in exited.stderr
    lines = exited.stderr.splitlines()
    assert len(lines) == 1, exited.stderr
    line = lines[0]
    assert line.startswith("lynkr: ")
    for text in mentions:
        assert text in line
    return line


def read_log(data_dir: Path) -> tuple[list[Recorded], dict[int, bytes], int]:
    """Every record, the raw bytes by sequence number, and how many records were skipped as corrupt."""
    with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
        raw = dict(store.read_raw())
        records = list(store.read())
        stats = store.stats()
    return records, raw, stats.skipped_corrupt + stats.skipped_unknown


# Shutdown


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_stops_accepting_and_lets_the_open_stream_finish(tmp_path: Path, signum: int) -> None:
    fake = FakeUpstream()
    fake.push(Reply.delay_between_chunks(0.1, Reply.text("one two three four five six seven eight")))
    async with serve_fake(fake) as upstream, daemon(base_env(tmp_path, **openai_env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            async with client.stream("POST", "/v1/messages", json={**MESSAGE, "stream": True}) as response:
                assert response.status_code == 200
                chunks = response.aiter_text()
                received = await chunks.__anext__()
                assert "message_start" in received
                lynkr.process.send_signal(signum)
                await trio.sleep(0.2)
                with pytest.raises(OSError):
                    await trio.open_tcp_stream("127.0.0.1", lynkr.port)
                async for text in chunks:
                    received += text
        with trio.fail_after(10):
            returncode = await lynkr.process.wait()
        assert returncode == 0, lynkr.stderr()
        assert "Traceback" not in lynkr.stderr()
    assert "event: message_stop" in received
    assert "eight" in received
    records, _, skipped = read_log(tmp_path / "data")
    assert skipped == 0
    types = [recorded.event.TYPE for recorded in records]
    assert types[-1] == "daemon.stopped"
    assert types.count("response.completed") == 1
    assert types.index("response.completed") < types.index("daemon.stopped")


async def test_a_second_signal_stops_at_once_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.delay_between_chunks(1.0, Reply.text("one two three four five six seven eight")))
    async with serve_fake(fake) as upstream, daemon(base_env(tmp_path, **openai_env(upstream))) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=10) as client:
            async with client.stream("POST", "/v1/messages", json={**MESSAGE, "stream": True}) as response:
                assert response.status_code == 200
                chunks = response.aiter_text()  # held: a dropped iterator would close the stream
                await chunks.__anext__()
                lynkr.process.send_signal(signal.SIGINT)
                await trio.sleep(0.2)
                lynkr.process.send_signal(signal.SIGINT)  # impatient: the open stream needs seconds more
                with trio.fail_after(5):
                    returncode = await lynkr.process.wait()
                with pytest.raises(httpx.RemoteProtocolError):  # the stream was cut, not finished
                    async for _ in chunks:
                        pass
        stderr = lynkr.stderr()
        assert returncode == 130, stderr
        assert "Traceback" not in stderr
        assert "lynkr: stopped at a second signal" in stderr


# Crash safety


async def _load(base_url: str, stop: trio.Event, answered: list[str]) -> None:
    """Send requests one after another until `stop` is set or the daemon is gone."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while not stop.is_set():
            try:
                response = await client.post("/v1/messages", json=MESSAGE)
            except httpx.TransportError:
                return
            assert response.status_code == 200, response.text
            answered.append(response.headers["request-id"])


def _witness(data_dir: Path) -> dict[int, bytes]:
    """What another reader sees committed right now: all of it must survive a kill."""
    with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
        return dict(store.read_raw())


# The kill cuts requests short by design; httpx then leaves a request body's async generator to the collector.
@pytest.mark.filterwarnings(
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected:ResourceWarning"
)
async def test_kill_9_under_load_loses_nothing_committed_and_leaves_no_partial_record(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    data_dir = tmp_path / "data"
    seen: dict[int, bytes] = {}
    pids: list[int] = []
    answered: list[str] = []
    async with serve_fake(FakeUpstream()) as upstream:
        env.update(openai_env(upstream))
        for _ in range(5):
            async with daemon(env) as lynkr:
                pids.append(lynkr.process.pid)
                stop = trio.Event()
                async with trio.open_nursery() as nursery:
                    before = len(answered)
                    for _ in range(6):
                        nursery.start_soon(_load, lynkr.base_url, stop, answered)
                    # Wait for answers rather than for a fixed time, so a loaded machine still kills mid-load.
                    with trio.fail_after(30):
                        while len(answered) < before + 3:
                            await trio.sleep(0.02)
                    committed = await trio.to_thread.run_sync(_witness, data_dir)
                    await trio.sleep(0.1)
                    lynkr.process.kill()
                    await lynkr.process.wait()
                    stop.set()
                assert lynkr.process.returncode == -signal.SIGKILL
            assert committed.keys() - seen.keys(), "the witness saw nothing new: the load did not reach the log"
            seen.update(committed)
        async with daemon(env) as lynkr:
            pids.append(lynkr.process.pid)
            async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
                response = await client.post("/v1/messages", json=MESSAGE)
            assert response.status_code == 200
            lynkr.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await lynkr.process.wait() == 0
    records, raw, skipped = read_log(data_dir)
    assert skipped == 0
    assert list(raw) == list(range(1, len(raw) + 1)), "sequence numbers have a gap"
    assert len(records) == len(raw)
    assert all(raw[seq] == data for seq, data in seen.items()), "a committed record changed or vanished"
    started = [r.event.pid for r in records if isinstance(r.event, DaemonStarted)]
    assert started == pids
    _assert_each_request_is_a_prefix_of_its_story(records)
    assert len(answered) > 10


def _assert_each_request_is_a_prefix_of_its_story(records: list[Recorded]) -> None:
    """Events are committed in the order they were recorded, so a kill can only cut a request's story short."""
    story: dict[str, list[str]] = {}
    for recorded in records:
        event = recorded.event
        if isinstance(event, (RequestReceived, CacheMiss, CacheHit, UpstreamAttempted, ResponseCompleted, CacheStored)):
            story.setdefault(event.request_id, []).append(event.TYPE)
    # The same request again and again: the prompt cache answers it once an answer is kept.
    missed = ["request.received", "cache.miss", "upstream.attempted", "response.completed", "cache.stored"]
    hit = ["request.received", "cache.hit", "response.completed"]
    assert story
    for request_id, types in story.items():
        assert types in (missed[: len(types)], hit[: len(types)]), (request_id, types)


# Refusing to start


async def test_second_daemon_on_the_same_data_folder_refuses_with_one_line(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    async with daemon(env) as first:
        exited = await run_to_exit(env)
        line = assert_one_clear_line(
            exited, code=1, mentions=(f"pid {first.process.pid}", str(tmp_path / "data"), "LYNKR_DATA_DIR")
        )
        assert "another lynkr daemon" in line
        async with httpx.AsyncClient(base_url=first.base_url, timeout=5) as client:
            health = await client.get("/health")
        assert health.status_code == 200


async def test_port_in_use_is_one_line_naming_the_port_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        exited = await run_to_exit(base_env(tmp_path, PORT=str(port)))
    assert_one_clear_line(exited, code=1, mentions=(f"port {port}", "already in use", "set PORT"))


async def test_unusable_data_folder_is_one_line(tmp_path: Path) -> None:
    # Tests run as root, for whom permissions do not bind: a folder under a regular file cannot exist for anyone.
    (tmp_path / "a-file").write_text("not a folder")
    exited = await run_to_exit(base_env(tmp_path, LYNKR_DATA_DIR=str(tmp_path / "a-file" / "data")))
    assert_one_clear_line(exited, code=1, mentions=(str(tmp_path / "a-file" / "data"), "LYNKR_DATA_DIR"))


@pytest.mark.parametrize(
    ("setting", "mentions"),
    [
        ({"PORT": "abc"}, ("PORT", "'abc'")),
        ({"TOOL_EXECUTION_MODE": "sideways"}, ("TOOL_EXECUTION_MODE", "sideways", "client", "server")),
        ({"lynkr.toml": "port = [\n"}, ("lynkr.toml", "invalid TOML")),
    ],
    ids=["port-not-a-number", "unknown-tool-mode", "broken-toml"],
)
async def test_invalid_configuration_is_one_line_and_exit_2(
    tmp_path: Path, setting: dict[str, str], mentions: tuple[str, ...]
) -> None:
    env = base_env(tmp_path)
    if "lynkr.toml" in setting:
        (Path(env["WORKSPACE_ROOT"]) / "lynkr.toml").write_text(setting.pop("lynkr.toml"))
    env.update(setting)
    exited = await run_to_exit(env)
    line = assert_one_clear_line(exited, code=2, mentions=mentions)
    assert line.startswith("lynkr: configuration error: ")
    assert not (tmp_path / "data").exists(), "nothing may be created before the configuration is valid"


async def test_a_workspace_env_file_with_lines_that_are_not_assignments_warns_once_per_line_and_starts(
    tmp_path: Path,
) -> None:
    env = base_env(tmp_path)
    env_file = Path(env["WORKSPACE_ROOT"]) / ".env"
    env_file.write_text(
        "# the project's own settings\n"
        "source venv/bin/activate\n"  # 2
        "NODE_ENV=development\n"
        "[tool.settings]\n"  # 4
        "GREETING='hello\n"  # 5: never closed
        "LYNKR_RECORDER_BATCH_MAX=32\n"
    )
    async with daemon(env) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
            health = await client.get("/health")
        assert health.status_code == 200
    warnings = [line for line in lynkr.stderr().splitlines() if str(env_file) in line]
    assert len(warnings) == 3, lynkr.stderr()
    assert [warning.split(f"{env_file}:", 1)[1].split(":", 1)[0] for warning in warnings] == ["2", "4", "5"]
    assert all(" WARNING lynkr.config: " in warning and "skipped" in warning for warning in warnings)
    assert "Traceback" not in lynkr.stderr()


async def test_a_broken_line_for_one_of_lynkrs_own_variables_in_env_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    (Path(env["WORKSPACE_ROOT"]) / ".env").write_text("NODE_ENV=development\nLYNKR_API_KEY='half a key\n")
    exited = await run_to_exit(env)
    line = assert_one_clear_line(exited, code=2, mentions=(".env:2", "LYNKR_API_KEY", "write it as LYNKR_API_KEY="))
    assert "half a key" not in line


# The banner


async def test_banner_names_url_workspace_data_provider_and_the_exports(tmp_path: Path) -> None:
    async with serve_fake(FakeUpstream()) as upstream:
        env = base_env(tmp_path, **openai_env(upstream), LYNKR_API_KEY="client-key-42")
        async with daemon(env) as lynkr:
            banner = lynkr.banner
    assert banner[0].startswith("lynkr ") and banner[0].endswith(f"listening on {lynkr.base_url}")
    assert lynkr.base_url.startswith("http://127.0.0.1:") and lynkr.port > 0
    text = "\n".join(banner)
    assert f"workspace  {env['WORKSPACE_ROOT']}" in text
    assert f"data       {env['LYNKR_DATA_DIR']}" in text
    assert f"provider   openai (openai) at {upstream}/v1/chat/completions" in text
    assert banner[-2:] == [f"  export ANTHROPIC_BASE_URL={lynkr.base_url}", "  export ANTHROPIC_API_KEY=client-key-42"]
    assert "sk-upstream-secret-5678" not in text


async def test_banner_without_a_provider_says_what_to_set(tmp_path: Path) -> None:
    async with daemon(base_env(tmp_path)) as lynkr:
        provider = next(line for line in lynkr.banner if line.startswith("  provider"))
        async with httpx.AsyncClient(base_url=lynkr.base_url, timeout=5) as client:
            response = await client.post("/v1/messages", json=MESSAGE)
    assert "none configured" in provider
    assert "MODEL_PROVIDER" in provider
    assert lynkr.banner[-1] == "  export ANTHROPIC_API_KEY=lynkr"
    assert response.status_code == 503
    assert "MODEL_PROVIDER" in response.json()["error"]["message"]


# A large existing log


def _write_history(data_dir: Path, events: int) -> None:
    with LmdbEventStore.open(data_dir / "events") as store:
        batch: list[tuple[str, Any]] = []
        for index in range(events):
            batch.append(
                (
                    f"session-{index % 50}",
                    UpstreamAttempted(
                        request_id=f"req_{index}", provider="openai", attempt=1, status=200, latency_ms=1.5,
                        error=None, will_retry=False,
                    ),
                )
            )
            if len(batch) == 5000:
                store.append(batch)
                batch = []


async def test_start_up_with_a_large_existing_log_is_quick(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    await trio.to_thread.run_sync(_write_history, tmp_path / "data", 50_000)
    started = time.monotonic()
    async with daemon(env) as lynkr:
        async with httpx.AsyncClient(base_url=lynkr.base_url) as client:
            health = await client.get("/health")
        ready_s = time.monotonic() - started
    assert health.status_code == 200
    assert health.json()["ready"] is True
    assert ready_s < 5.0
    records, _, skipped = read_log(tmp_path / "data")
    assert skipped == 0
    assert records[50_000].seq == 50_001 and isinstance(records[50_000].event, DaemonStarted)
