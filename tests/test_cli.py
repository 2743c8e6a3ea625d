"""The command line as a user runs it: `python -m lynkr log|replay|config` as subprocesses on a real log.

The logs are written straight through `LmdbEventStore.append`; damaged records are put into the LMDB database
underneath it, the way a bad disk or another lynkr version would leave them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import attrs
import lmdb
import pytest

from lynkr.events.catalog import DaemonStarted, RequestReceived, ResponseCompleted, UpstreamAttempted
from lynkr.events.codec import encode_payload
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Event

TIMEOUT_S = 20.0
TOOLS = [{"name": "Bash", "description": "run a command", "input_schema": {"type": "object"}}]


@attrs.frozen
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "LYNKR_DATA_DIR": str(tmp_path / "data"),
        "WORKSPACE_ROOT": str(workspace),
        # The code under test, when the test run puts it first on the path (a worktree beside an installed copy).
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        **extra,
    }


def lynkr(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    environ = env if env is not None else cli_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "lynkr", *args],
        env=environ,
        cwd=environ["WORKSPACE_ROOT"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


# Building a log


def request(request_id: str, session_id: str, user_text: str, *, history: int = 0) -> RequestReceived:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "earlier"}] * history
    messages.append({"role": "user", "content": user_text})
    body = {"model": "claude-sonnet-5-5", "max_tokens": 100, "stream": True, "messages": messages, "tools": TOOLS}
    return RequestReceived.of(
        request_id=request_id,
        session_id=session_id,
        path="/v1/messages",
        headers={"user-agent": "claude-cli"},
        request=body,
        body=orjson.dumps(body),
    )


def completed(request_id: str, session_id: str, content: list[dict[str, Any]], stop: str) -> ResponseCompleted:
    return ResponseCompleted(
        request_id=request_id,
        session_id=session_id,
        provider="openai",
        model="claude-sonnet-5-5",
        message={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": stop,
            "usage": {"input_tokens": 30, "output_tokens": 7},
        },
        latency_ms=42.0,
    )


def attempted(request_id: str) -> UpstreamAttempted:
    return UpstreamAttempted(
        request_id=request_id, provider="openai", attempt=1, status=200, latency_ms=40.0, error=None, will_retry=False
    )


def conversation() -> list[tuple[str, Event]]:
    """Two sessions: alpha asks for a tool and then answers in text; beta answers at once."""
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls -la"}}
    return [
        ("daemon", DaemonStarted(version="0.1.0", pid=4242, config={"port": 8080})),
        ("sess-alpha", request("req_a1", "sess-alpha", "list the files here")),
        ("sess-alpha", attempted("req_a1")),
        ("sess-alpha", completed("req_a1", "sess-alpha", [tool_use], "tool_use")),
        ("sess-beta", request("req_b1", "sess-beta", "say hello")),
        ("sess-beta", attempted("req_b1")),
        ("sess-beta", completed("req_b1", "sess-beta", [{"type": "text", "text": "Hello there"}], "end_turn")),
        ("sess-alpha", request("req_a2", "sess-alpha", "and now summarise", history=2)),
        ("sess-alpha", attempted("req_a2")),
        ("sess-alpha", completed("req_a2", "sess-alpha", [{"type": "text", "text": "Two files: a and b"}], "end_turn")),
    ]


def write_log(tmp_path: Path, events: list[tuple[str, Event]]) -> Path:
    events_dir = tmp_path / "data" / "events"
    with LmdbEventStore.open(events_dir) as store:
        store.append(events)
    return events_dir


def put_raw(events_dir: Path, stream: str, data: bytes) -> int:
    """Store `data` as the next record, beneath the store's own encoding; returns its sequence number."""
    env = lmdb.open(str(events_dir), max_dbs=3)
    try:
        events = env.open_db(b"events")
        by_stream = env.open_db(b"by_stream")
        with env.begin(write=True) as txn:
            cursor = txn.cursor(db=events)
            seq = int.from_bytes(cursor.key(), "big") + 1 if cursor.last() else 1
            key = seq.to_bytes(8, "big")
            txn.put(key, data, db=events)
            txn.put(stream.encode() + b"\x00" + key, b"", db=by_stream)
    finally:
        env.close()
    return seq


def assert_clean_failure(ran: Ran, *mentions: str) -> None:
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    for text in mentions:
        assert text in lines[0]


# log


def test_log_prints_every_event_oldest_first(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "log")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == 10
    assert [int(line.split()[0]) for line in lines] == list(range(1, 11))
    assert "daemon.started" in lines[0] and "pid=4242" in lines[0]
    assert "response.completed" in lines[-1]


def test_log_filters_by_type_with_a_prefix_pattern(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "log", "--type", "response.*", "--type", "daemon.started", "--json")
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [event["type"] for event in events] == ["daemon.started"] + ["response.completed"] * 3
    assert [event["seq"] for event in events] == [1, 4, 7, 10]
    first = events[1]
    assert first["stream"] == "sess-alpha" and first["version"] == 1
    assert first["payload"]["message"]["content"][0]["name"] == "Bash"
    assert first["time"].endswith("Z")


def test_log_filters_by_session_and_keeps_the_last_n(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "log", "--session", "sess-alpha", "--last", "2", "--json")
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(e["seq"], e["type"]) for e in events] == [(9, "upstream.attempted"), (10, "response.completed")]
    everything = lynkr(tmp_path, "log", "--session", "sess-beta")
    assert [int(line.split()[0]) for line in everything.stdout.splitlines()] == [5, 6, 7]


def test_log_follow_prints_an_event_appended_after_it_started(tmp_path: Path) -> None:
    events_dir = write_log(tmp_path, conversation())
    env = cli_env(tmp_path)
    follower = subprocess.Popen(
        [sys.executable, "-m", "lynkr", "log", "--follow", "--json", "--type", "upstream.*"],
        env=env,
        cwd=env["WORKSPACE_ROOT"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        lines = _read_lines(follower, count=3)
        assert [json.loads(line)["seq"] for line in lines] == [3, 6, 9]
        with LmdbEventStore.open(events_dir) as store:
            store.append([("sess-beta", request("req_b2", "sess-beta", "again")), ("sess-beta", attempted("req_b2"))])
        [line] = _read_lines(follower, count=1)
        appended = json.loads(line)
        assert (appended["seq"], appended["type"]) == (12, "upstream.attempted")
        assert appended["payload"]["request_id"] == "req_b2"
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=TIMEOUT_S)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 130
    assert b"Traceback" not in stderr


def _read_lines(process: subprocess.Popen[bytes], *, count: int) -> list[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + TIMEOUT_S
    buffered = b""
    lines: list[str] = []
    while len(lines) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {lines} after {TIMEOUT_S} s"
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if readable:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, "the follower exited"
            buffered += chunk
            *complete, buffered = buffered.split(b"\n")
            lines.extend(line.decode() for line in complete)
    assert not buffered and len(lines) == count, (lines, buffered)
    return lines


def test_log_without_a_log_says_where_it_looked(tmp_path: Path) -> None:
    ran = lynkr(tmp_path, "log")
    assert_clean_failure(ran, str(tmp_path / "data" / "events"), "LYNKR_DATA_DIR")


# replay


def test_replay_lists_the_sessions(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "replay")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "sess-alpha  2 turns  last model claude-sonnet-5-5",
        "sess-beta  1 turns  last model claude-sonnet-5-5",
    ]
    assert "replayed 10 events" in ran.stderr and "(0 skipped" in ran.stderr


def test_replay_shows_one_session_turn_by_turn(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "replay", "sess-al")  # a unique prefix is enough
    assert ran.returncode == 0, ran.stderr
    alpha_events = sum(1 for stream, _ in conversation() if stream == "sess-alpha")
    assert f"replayed {alpha_events} events" in ran.stderr  # through the by-stream index, not the whole log
    text = ran.stdout
    assert text.startswith("session sess-alpha: 2 turns")
    first, second = text.split("── turn 1")[1].split("── turn 2")
    assert "req_a1" in first and "user      list the files here" in first
    assert "1 tools" in first and "streaming" in first
    assert "stop tool_use" in first and "tokens in 30 out 7" in first
    assert 'tool_use  Bash {"command": "ls -la"}  [toolu_01]' in first
    assert "req_a2" in second and "3 messages" in second
    assert "text      Two files: a and b" in second
    assert "Hello there" not in text


def test_replay_json_is_the_transcript_as_data(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "replay", "sess-alpha", "--json")
    assert ran.returncode == 0, ran.stderr
    transcript = json.loads(ran.stdout)
    assert transcript["session_id"] == "sess-alpha"
    assert [turn["request_id"] for turn in transcript["turns"]] == ["req_a1", "req_a2"]
    assert transcript["turns"][0]["response"]["content"][0]["input"] == {"command": "ls -la"}
    assert transcript["turns"][1]["response"]["content"][0]["text"] == "Two files: a and b"


def test_replay_of_an_unknown_session_is_a_clear_error(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "replay", "sess-gamma")
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    assert "lynkr: no session match 'sess-gamma'; run `lynkr replay` to list them" in ran.stderr.splitlines()


def test_replay_skips_and_counts_a_corrupt_record_and_an_unknown_event_type(tmp_path: Path) -> None:
    events = conversation()
    events_dir = write_log(tmp_path, events[:4])
    payload = request("req_x", "sess-alpha", "lost").to_payload()
    good = encode_payload(time.time_ns(), "sess-alpha", "request.received", 1, payload)
    put_raw(events_dir, "sess-alpha", good[:-3] + b"\xff\xff\xff")  # a torn write: the checksum no longer fits
    put_raw(events_dir, "sess-alpha", encode_payload(time.time_ns(), "sess-alpha", "plugin.removed", 1, {"n": 1}))
    with LmdbEventStore.open(events_dir) as store:
        store.append(events[4:])
    ran = lynkr(tmp_path, "replay")
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "replayed 12 events" in ran.stderr and "(2 skipped as corrupt or unknown)" in ran.stderr
    assert ran.stdout.splitlines()[0] == "sess-alpha  2 turns  last model claude-sonnet-5-5"
    shown = lynkr(tmp_path, "replay", "sess-alpha")
    assert shown.returncode == 0 and "Two files: a and b" in shown.stdout


def test_replay_of_a_record_from_a_newer_lynkr_is_a_clear_error(tmp_path: Path) -> None:
    events_dir = write_log(tmp_path, conversation())
    put_raw(events_dir, "sess-beta", encode_payload(time.time_ns(), "sess-beta", "response.completed", 99, {}))
    for command in ("replay", "log"):
        ran = lynkr(tmp_path, command)
        assert_clean_failure(ran, "'response.completed' has version 99", "upgrade lynkr")
        assert ran.returncode == 1


def test_replay_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    events = conversation()
    write_log(tmp_path, events * 2000)
    env = cli_env(tmp_path)
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lynkr", "replay"],
            env=env,
            cwd=env["WORKSPACE_ROOT"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=TIMEOUT_S) == 0
    finally:
        os.close(controller)
    text = output.decode()
    assert "replaying [" + "." * 30 + "]   0% 0/20,000" in text
    assert "replaying [" + "#" * 30 + "] 100% 20,000/20,000" in text
    assert "replayed 20000 events" in text


def test_replay_without_a_terminal_draws_no_bar(tmp_path: Path) -> None:
    write_log(tmp_path, conversation())
    ran = lynkr(tmp_path, "replay")
    assert "replaying [" not in ran.stderr + ran.stdout


# config


def test_config_masks_every_secret(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path,
        MODEL_PROVIDER="openai",
        OPENAI_API_KEY="sk-the-real-upstream-key-0001",
        OPENAI_ENDPOINT="http://127.0.0.1:9/v1/chat/completions",
        LYNKR_API_KEY="the-real-client-key-0002",
    )
    plain = lynkr(tmp_path, "config", env=env)
    as_json = lynkr(tmp_path, "config", "--json", env=env)
    for ran in (plain, as_json):
        assert ran.returncode == 0, ran.stderr
        assert "sk-the-real-upstream-key-0001" not in ran.stdout + ran.stderr
        assert "the-real-client-key-0002" not in ran.stdout + ran.stderr
        assert "***" in ran.stdout
    settings = json.loads(as_json.stdout)
    assert settings["model_provider"] == "openai"
    assert settings["providers"]["openai"]["endpoint"] == "http://127.0.0.1:9/v1/chat/completions"
    assert 'model_provider = "openai"' in plain.stdout.splitlines()


def test_config_sources_say_where_each_value_came_from(tmp_path: Path) -> None:
    env = cli_env(
        tmp_path,
        MODEL_PROVIDER="azure-openai",
        AZURE_OPENAI_ENDPOINT="https://res.openai.azure.com",
        AZURE_OPENAI_API_KEY="the-azure-key-0003",
        AZURE_OPENAI_DEPLOYMENT="gpt-4o",
        AZURE_OPENAI_MAX_TOKENS="16384",
    )
    workspace = Path(env["WORKSPACE_ROOT"])
    (workspace / "lynkr.toml").write_text("idle_timeout_s = 33\n")
    (workspace / ".env").write_text("PORT=8091\nnot an assignment\n")
    plain = lynkr(tmp_path, "config", "--sources", env=env)
    as_json = lynkr(tmp_path, "config", "--sources", "--json", env=env)
    assert plain.returncode == 0 and as_json.returncode == 0, plain.stderr + as_json.stderr
    lines = plain.stdout.splitlines()
    for line in (
        'host = "127.0.0.1"  # default',
        "port = 8091  # .env (PORT)",
        "idle_timeout_s = 33.0  # lynkr.toml (idle_timeout_s)",
        'model_provider = "azure-openai"  # environment (MODEL_PROVIDER)',
        "providers.azure-openai.max_tokens = 16384  # environment (AZURE_OPENAI_MAX_TOKENS)",
        'providers.azure-openai.api_key = "***"  # environment (AZURE_OPENAI_API_KEY)',
    ):
        assert line in lines, line
    rows = {row["setting"]: row for row in json.loads(as_json.stdout)}
    assert rows["providers.azure-openai.options.deployment"] == {
        "setting": "providers.azure-openai.options.deployment",
        "value": "gpt-4o",
        "source": "environment (AZURE_OPENAI_DEPLOYMENT)",
    }
    assert "the-azure-key-0003" not in plain.stdout + as_json.stdout + plain.stderr
    assert plain.stderr.count("not KEY=value") == 1, "the skipped .env line is reported, once"


# help


@pytest.mark.parametrize(
    ("args", "explains"),
    [
        ((), "run Claude Code against other LLM back ends"),
        (("serve",), "Run the daemon in the foreground until SIGINT or SIGTERM."),
        (("replay",), "show one session's transcript turn by turn"),
        (("log",), "--follow"),
        (("config",), "with every secret masked"),
    ],
    ids=["lynkr", "serve", "replay", "log", "config"],
)
def test_help_on_every_command_exits_0_and_explains_it(tmp_path: Path, args: tuple[str, ...], explains: str) -> None:
    ran = lynkr(tmp_path, *args, "--help")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage: lynkr")
    assert explains in " ".join(ran.stdout.split())
    assert ran.stderr == ""


def test_config_file_is_taken_before_or_after_the_command(tmp_path: Path) -> None:
    toml = tmp_path / "elsewhere.toml"
    toml.write_text("port = 9123\n")
    for args in (("--config", str(toml), "config", "--json"), ("config", "--json", "--config", str(toml))):
        ran = lynkr(tmp_path, *args)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["port"] == 9123
    assert json.loads(lynkr(tmp_path, "config", "--json").stdout)["port"] == 8080
