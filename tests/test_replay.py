"""`lynkr replay SESSION` and `--check` on sessions recorded through the running daemon.

Sessions are recorded by the real daemon in front of fake upstreams speaking each provider's wire format; the
replay runs as a user runs it, `python -m lynkr replay ...` in a subprocess on the stopped daemon's log.  The
changed-converter test runs a copy of the `lynkr` package with one converter line changed, never a patch of the
code under test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import lynkr
from lynkr.config import Config
from lynkr.datadir import events_dir
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.replay.check import differences
from lynkr.replay.layout import duration, size
from lynkr.wire.content import user_words
from lynkr.upstream.recording import UpstreamResponded
from tests.conftest import make_config, running_lynkr
from tests.fakes import Chunking, FakeUpstream, Reply, serve_fake

UPSTREAM_KEY = "upstream-secret-key-0042"
TIMEOUT_S = 30

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}
GREP_TOOL = {
    "name": "Grep",
    "description": "Search files",
    "input_schema": {"type": "object", "properties": {"pattern": {"type": "string"}}},
}

# Every provider kind, by the wire format it speaks: (environment, the upstream path the fake must see).
PROVIDERS: dict[str, dict[str, str]] = {
    "anthropic": {"ANTHROPIC_UPSTREAM_URL": "{u}", "ANTHROPIC_UPSTREAM_API_KEY": UPSTREAM_KEY},
    "azure-anthropic": {"MODEL_PROVIDER": "azure-anthropic", "AZURE_ANTHROPIC_ENDPOINT": "{u}/anthropic",
                        "AZURE_ANTHROPIC_API_KEY": UPSTREAM_KEY},
    "databricks": {"MODEL_PROVIDER": "databricks", "DATABRICKS_API_BASE": "{u}", "DATABRICKS_API_KEY": UPSTREAM_KEY,
                   "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/team-claude/invocations",
                   "MODEL_DEFAULT": "databricks-claude-sonnet-4-5"},
    "azure-openai": {"MODEL_PROVIDER": "azure-openai", "AZURE_OPENAI_ENDPOINT": "{u}",
                     "AZURE_OPENAI_API_KEY": UPSTREAM_KEY, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-team",
                     "AZURE_OPENAI_API_VERSION": "2025-01-01-preview"},
    "openrouter": {"MODEL_PROVIDER": "openrouter", "OPENROUTER_ENDPOINT": "{u}/api/v1/chat/completions",
                   "OPENROUTER_API_KEY": UPSTREAM_KEY, "OPENROUTER_MODEL": "anthropic/claude-sonnet-4.5"},
    "ollama": {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": "{u}", "OLLAMA_MODEL": "qwen3-coder"},
    "openai": {"MODEL_PROVIDER": "openai", "OPENAI_ENDPOINT": "{u}/v1", "OPENAI_API_KEY": UPSTREAM_KEY,
               "OPENAI_MODEL": "gpt-x"},
}
WIRES = {"anthropic": "anthropic", "azure-anthropic": "anthropic", "databricks": "openai", "azure-openai": "openai",
         "openrouter": "openai", "ollama": "ollama", "openai": "openai"}


def body(session: str, text: str, *, stream: bool, max_tokens: int = 1024, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        "tools": [BASH_TOOL],
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": session})},
        **extra,
    }


async def send(config: Config, *requests: dict[str, Any], cached: int | None = None) -> list[httpx.Response]:
    """Each request in turn; with ``cached``, after the first wait until the prompt cache holds that many answers."""
    responses = []
    with trio.fail_after(TIMEOUT_S):
        async with running_lynkr(config) as running, httpx.AsyncClient(base_url=running.base_url,
                                                                        timeout=TIMEOUT_S) as client:
            for request in requests:
                response = await client.post(
                    "/v1/messages", json=request,
                    headers={"x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01"},
                )
                assert response.status_code == 200, response.text
                responses.append(response)
                # A store is kept once it is on disk, a moment after the client got the answer.
                while cached is not None and await cache_entries(client) < cached:
                    await trio.sleep(0.01)
    return responses


async def cache_entries(client: httpx.AsyncClient) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("lynkr_prompt_cache_entries "):
            return float(line.split()[1])
    raise AssertionError("lynkr_prompt_cache_entries is not in /metrics")


def replay(config: Config, *args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_lynkr(config, "replay", *args, pythonpath=pythonpath)


def run_lynkr(config: Config, *args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m lynkr ...` on the daemon's data folder, with the code under test (or ``pythonpath``)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config.data_dir.parent),
        "LANG": "C.UTF-8",
        "LYNKR_DATA_DIR": str(config.data_dir),
        "WORKSPACE_ROOT": str(config.workspace_root),
    }
    path = pythonpath if pythonpath is not None else os.environ.get("PYTHONPATH")
    if path:
        env["PYTHONPATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "lynkr", *args], env=env, cwd=config.workspace_root,
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )


def answers_in_log(config: Config) -> list[tuple[UpstreamResponded, bytes]]:
    with LmdbEventStore.open(events_dir(config.data_dir), readonly=True) as store:
        return [(r.event, r.event.raw()) for r in store.read(topics=(UpstreamResponded.TYPE,))
                if isinstance(r.event, UpstreamResponded)]


async def record_provider_session(tmp_path: Path, provider: str, *, session: str) -> Config:
    """Four turns through ``provider``: a streamed tool call, a streamed answer cut at its length limit, one JSON
    body, and a non-streaming client whose long answer streams upstream."""
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "ls -la"}, id="call_1", text="Let me look.")
        .with_chunking(Chunking(text_fragments=4, argument_fragments=3)),
        Reply.text("Cut short at the").with_stop("length"),
        Reply.text("Short and whole."),
        Reply.text("A long answer, streamed upstream.", reasoning="thinking it over", signature="sig-1"),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {k: v.format(u=upstream) for k, v in PROVIDERS[provider].items()})
        await send(
            config,
            body(session, "list the files", stream=True, max_tokens=32000),
            body(session, "go on at length", stream=True, max_tokens=32000),
            body(session, "one JSON body please", stream=False),
            body(session, "a long one", stream=False, max_tokens=32000, thinking={"type": "adaptive"}),
        )
    assert len(fake.model_calls) == 4
    return config


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_replay_check_passes_on_a_session_recorded_through_each_provider(tmp_path: Path, provider: str) -> None:
    config = await record_provider_session(tmp_path, provider, session=f"sess-{provider}")
    recorded = answers_in_log(config)
    wire = WIRES[provider]
    assert [(answer.wire, answer.streamed, answer.complete) for answer, _ in recorded] == [
        (wire, True, True), (wire, True, True), (wire, False, True), (wire, True, True)
    ]
    assert all(raw and len(raw) == answer.size == sum(answer.read_sizes) for answer, raw in recorded)
    assert all(len(answer.read_sizes) > 1 for answer, _ in recorded if answer.streamed)  # the reads, as they came
    # What the two streaming clients were sent is kept too; an Anthropic upstream's bytes went out as they came,
    # and are stored once.
    assert [answer.sent_digest != b"" for answer, _ in recorded] == [True, True, False, False]
    if wire == "anthropic":
        assert all(answer.sent_digest == answer.digest for answer, _ in recorded[:2])
    ran = replay(config, f"sess-{provider}", "--check")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines()[-1] == "checked 4 recorded upstream answers of 4 turns: no differences"
    as_json = json.loads(replay(config, f"sess-{provider}", "--check", "--json").stdout)
    assert (as_json["checked"], as_json["differences"]) == (4, [])


async def test_replay_check_flags_a_changed_converter_run_from_a_copy_of_lynkr(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    config = await record_provider_session(tmp_path / "run", "openai", session="sess-changed")
    copy = tmp_path / "changed"
    shutil.copytree(Path(lynkr.__file__).parent, copy / "lynkr", ignore=shutil.ignore_patterns("__pycache__"))
    converter = copy / "lynkr" / "wire" / "openai.py"
    source = converter.read_text()
    assert source.count('"length": "max_tokens",') == 1
    converter.write_text(source.replace('"length": "max_tokens",', '"length": "end_turn",'))

    changed = replay(config, "sess-changed", "--check", pythonpath=str(copy))
    assert changed.returncode == 1, changed.stdout + changed.stderr
    found = [line for line in changed.stdout.splitlines() if "client got" in line]
    # The answer the upstream cut at its length limit: in the message, and in the SSE the client was sent.
    assert all(line.startswith("turn 2 (") and " openai attempt 1: " in line for line in found), found
    message_line, sse_line = (line.split(" openai attempt 1: ")[1] for line in found)
    assert message_line == "stop_reason: client got 'max_tokens', now 'end_turn'"
    assert re.fullmatch(r"sse\[\d+\]\.data\.delta\.stop_reason: client got 'max_tokens', now 'end_turn'", sse_line)
    assert changed.stdout.splitlines()[-1] == "checked 4 recorded upstream answers of 4 turns: 2 differences"
    as_json = json.loads(replay(config, "sess-changed", "--check", "--json", pythonpath=str(copy)).stdout)
    assert [(d["turn"], d["path"], d["client_got"], d["now"]) for d in as_json["differences"]] == [
        (2, "stop_reason", "max_tokens", "end_turn"), (2, sse_line.split(":")[0], "max_tokens", "end_turn")
    ]
    unchanged = replay(config, "sess-changed", "--check")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr


async def test_raw_upstream_bytes_in_the_log_carry_no_secret(tmp_path: Path) -> None:
    fake = FakeUpstream()
    # An upstream that echoes its key back, in the stream and in a JSON body.
    fake.push(Reply.text(f"your key is {UPSTREAM_KEY}, keep it safe"), Reply.text(f"again: {UPSTREAM_KEY}"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {k: v.format(u=upstream) for k, v in PROVIDERS["openai"].items()})
        responses = await send(config, body("sess-secret", "tell me", stream=True),
                               body("sess-secret", "once more", stream=False))
    assert UPSTREAM_KEY in responses[0].text  # the client got what the upstream said
    recorded = answers_in_log(config)
    assert len(recorded) == 2
    for _, raw in recorded:
        assert UPSTREAM_KEY.encode() not in raw
        assert b"***" in raw
    with LmdbEventStore.open(events_dir(config.data_dir), readonly=True) as store:
        for record in store.read():
            assert UPSTREAM_KEY not in repr(record.event.to_payload())
    logged = run_lynkr(config, "log", "--type", "upstream.responded", "--json")
    lines = [json.loads(line)["payload"] for line in logged.stdout.splitlines()]
    assert [(len(p["digest"]), bool(p["sent_digest"]), sum(p["reads"]) == p["size"]) for p in lines] == [
        (64, True, True), (64, False, True)
    ]
    assert UPSTREAM_KEY not in logged.stdout
    # Masked alike in the bytes and in the message the log keeps, the check still matches.
    ran = replay(config, "sess-secret", "--check")
    assert ran.returncode == 0, ran.stdout + ran.stderr


async def test_replay_shows_words_tool_gists_tool_runs_cache_hits_and_rounded_durations(tmp_path: Path) -> None:
    session = "sess-layout"
    reminder = "<system-reminder>\nThe date is today. Do not mention this.\n</system-reminder>"
    first = body(session, "", stream=True)
    first["messages"] = [{"role": "user", "content": [{"type": "text", "text": reminder},
                                                      {"type": "text", "text": "please make a file"}]}]
    grep_result = "src/a.py:1: hit\nsrc/b.py:2: hit\n"
    second = body(session, "", stream=True)
    second["tools"] = [BASH_TOOL, GREP_TOOL]
    second["messages"] = [
        {"role": "user", "content": "where is hit?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_g1", "name": "Grep", "input": {"pattern": "hit"}},
            {"type": "tool_use", "id": "toolu_b1", "name": "Bash", "input": {"command": "./run"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_g1", "content": grep_result, "is_error": False},
            {"type": "tool_result", "tool_use_id": "toolu_b1", "is_error": True,
             "content": [{"type": "text", "text": "Exit code 3\nhello\nerr"}]},
            {"type": "text", "text": "<system-reminder>unused</system-reminder>"},
        ]},
    ]
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo made-it"}, id="call_1"),
        Reply.text("Made it."),
        Reply.status(503, message="busy, try again"),
        Reply.text("Found two."),
    )
    async with serve_fake(fake) as upstream:
        env = {k: v.format(u=upstream) for k, v in PROVIDERS["openai"].items()}
        # The first turn loops on the server (lynkr runs Bash); the next two go straight through, the third
        # from the prompt cache.  The same log, two daemon lives.
        server = make_config(tmp_path, {**env, "TOOL_EXECUTION_MODE": "server"})
        await send(server, first)
        client = make_config(tmp_path, {**env, "LYNKR_RETRY_BACKOFF_INITIAL_S": "0.01"})
        await send(client, second, second, cached=1)
    assert len(fake.model_calls) == 4

    shown = replay(client, session)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"session {session}: 3 turns, 1 cache hits, 1 tool runs")
    turn1, turn2, turn3 = text.split("── turn ")[1:]
    assert "   user      please make a file\n" in turn1
    assert "system-reminder" not in text and "The date is today" not in text
    assert re.search(r"   tool run  Bash ok, exit 0 in \d+(\.\d)? (ms|s), \d+ B: made-it\n", turn1), turn1
    for round_ in (1, 2):
        assert re.search(rf"   upstream  openai #1 \(round {round_}\): 200 in \d+(\.\d)? (ms|s)  "
                         r"\[openai stream, [\d.]+ (B|kB) recorded\]", turn1), turn1
    assert "   round     1: stop tool_use, lynkr ran Bash" in turn1
    assert "   loop      ended end_turn after 2 rounds, 1 tool calls\n" in turn1
    assert "response  from agent-loop" in turn1 and "Made it." in turn1
    assert "   result    Grep ok, 32 B: src/a.py:1: hit\n   result    Bash error, exit 3, 21 B: hello\n" in turn2
    assert re.search(r"   upstream  openai #1: 503 in \d+(\.\d)? (ms|s), upstream answered 503, retrying\n",
                     turn2), turn2
    assert re.search(r"   upstream  openai #2: 200 in \d+(\.\d)? (ms|s)  \[openai stream", turn2), turn2
    assert "[tool_result]" not in text
    assert "   cache     hit, key " in turn3 and "response  from prompt-cache" in turn3
    assert "upstream" not in turn3
    assert not re.search(r"\d\.\d{2,} (ms|s)\b", text)  # no raw float latencies
    assert re.search(r"response  from openai in \d+(\.\d)? (ms|s), stop end_turn", turn2)

    facts = json.loads(replay(client, session, "--json").stdout)
    assert facts["session_id"] == session and (facts["cache_hits"], facts["tool_runs"]) == (1, 1)
    one, two, three = facts["turns"]
    assert one["request"]["user"] == "please make a file"
    [run] = one["tool_runs"]
    assert (run["tool"], run["exit_code"], run["is_error"], run["first_line"]) == ("Bash", 0, False, "made-it")
    assert run["duration"] == duration(run["duration_ms"]) and run["duration"] in turn1
    assert [(r["step"], r["tools"]) for r in one["rounds"]] == [(1, ["Bash"]), (2, [])]
    assert one["loop"] == {"reason": "end_turn", "steps": 2, "tool_calls": 1} and two["loop"] is None
    assert two["request"]["tool_results"] == [
        {"tool": "Grep", "tool_use_id": "toolu_g1", "is_error": False, "exit_code": None,
         "first_line": "src/a.py:1: hit", "bytes": 32, "size": "32 B"},
        {"tool": "Bash", "tool_use_id": "toolu_b1", "is_error": True, "exit_code": 3, "first_line": "hello",
         "bytes": 21, "size": "21 B"},
    ]
    assert two["request"]["user"] == ""
    assert three["cache_hit"] is not None and three["response"]["provider"] == "prompt-cache"
    assert three["response"]["content"] == two["response"]["content"]
    assert [(a["round"], a["status"]) for a in one["attempts"]] == [(1, 200), (2, 200)]
    assert [(a["attempt"], a["status"], a["will_retry"], a["recorded"] and a["recorded"]["wire"])
            for a in two["attempts"]] == [(1, 503, True, None), (2, 200, False, "openai")]
    assert three["attempts"] == []

    checked = replay(client, session, "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert any(line.startswith("turn 3 (") and "answered from the prompt cache" in line for line in lines)
    assert lines[-1] == "checked 3 recorded upstream answers of 3 turns: no differences"  # two rounds, one direct


async def test_an_answer_that_broke_off_is_kept_shown_and_named_but_not_compared(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.disconnect_after(3, Reply.text("one two three four five six")), Reply.text("whole"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {k: v.format(u=upstream) for k, v in PROVIDERS["openai"].items()})
        with trio.fail_after(TIMEOUT_S):
            async with running_lynkr(config) as running, httpx.AsyncClient(base_url=running.base_url) as client:
                broken = await client.post("/v1/messages", json=body("sess-broken", "go", stream=True))
                whole = await client.post("/v1/messages", json=body("sess-broken", "again", stream=True))
    assert "event: error" in broken.text and "whole" in whole.text
    [(cut, cut_raw), (done, _)] = answers_in_log(config)
    assert (cut.complete, done.complete) == (False, True)
    assert cut_raw and len(cut.read_sizes) >= 3  # what arrived before the connection broke
    checked = replay(config, "sess-broken", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert any(line.startswith("turn 1 (") and line.endswith("openai attempt 1 broke off mid-answer; not compared")
               for line in lines), lines
    assert lines[-1] == "checked 1 recorded upstream answers of 2 turns: no differences"
    first = replay(config, "sess-broken").stdout.split("── turn ")[1]
    assert re.search(r"upstream  openai #1: 200 in [\d.]+ (ms|s), the upstream connection broke mid-stream", first)
    assert "failed    " in first


def test_check_differences_name_paths_and_absent_values() -> None:
    then = {"content": [{"type": "text", "text": "a"}], "stop_reason": "end_turn"}
    now = {"content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}], "usage": {}}
    assert [(path, repr(old), repr(new)) for path, old, new in differences(then, now)] == [
        ("content[0].text", "'a'", "'b'"),
        ("content[1]", "(absent)", "{'type': 'text', 'text': 'c'}"),
        ("stop_reason", "'end_turn'", "(absent)"),
        ("usage", "(absent)", "{}"),
    ]
    assert list(differences({"n": 1}, {"n": 1.0})) == [("n", 1, 1.0)]  # a type change is a difference
    assert list(differences(then, then)) == []


def test_a_log_from_before_raw_answers_were_recorded_says_so(tmp_path: Path) -> None:
    from lynkr.events.catalog import RequestReceived, ResponseCompleted

    config = make_config(tmp_path)
    request = body("sess-old", "hello", stream=True)
    with LmdbEventStore.open(events_dir(config.data_dir)) as store:
        store.append([
            ("sess-old", RequestReceived.of(request_id="req_old", session_id="sess-old", path="/v1/messages",
                                            headers={}, request=request, body=json.dumps(request).encode())),
            ("sess-old", ResponseCompleted(request_id="req_old", session_id="sess-old", provider="openai",
                                           model="m", message={"content": [{"type": "text", "text": "hi"}]},
                                           latency_ms=1234.5)),
        ])
    ran = replay(config, "sess-old", "--check")
    assert ran.returncode == 0, ran.stderr
    assert "turn 1 (req_old): no upstream bytes recorded (logged before lynkr recorded them); not checked" in ran.stdout
    assert "nothing in this session could be checked" in ran.stderr
    shown = replay(config, "sess-old")
    assert "response  from openai in 1.2 s" in shown.stdout


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(0.42, "0.4 ms"), (9.96, "10 ms"), (340.4, "340 ms"), (999.7, "1.0 s"), (1234, "1.2 s"), (42_000, "42 s"),
     (180_000, "3 min"), (5_400_000, "1.5 h")],
)
def test_durations_are_rounded_to_what_a_person_reads(ms: float, shown: str) -> None:
    assert duration(ms) == shown


def test_sizes_and_user_words() -> None:
    assert [size(n) for n in (812, 1234, 34_500, 3_400_000)] == ["812 B", "1.2 kB", "34 kB", "3.4 MB"]
    assert user_words([{"type": "text", "text": "<system-reminder>x</system-reminder>\nfix it"}]) == "fix it"
    assert user_words("<system-reminder>only a reminder</system-reminder>") == ""


@pytest.mark.cli
async def test_a_real_claude_code_session_replays_with_its_words_and_checks_clean(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    from tests.fakes.claude_cli import run_claude

    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "echo hi > out.txt", "description": "Write hi"},
                        id="call_cli_1", text="I will write the file."),
        Reply.text("Wrote out.txt."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {k: v.format(u=upstream) for k, v in PROVIDERS["openai"].items()})
        with trio.fail_after(120):
            async with running_lynkr(config) as running:
                result = await run_claude(claude_exe, base_url=running.base_url, prompt="Write hi into out.txt",
                                          cwd=claude_workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    session = result.json["session_id"]

    shown = replay(config, session)
    assert shown.returncode == 0, shown.stderr
    first, second = shown.stdout.split("── turn ")[1:]
    assert "   user      Write hi into out.txt\n" in first, first
    assert "system-reminder" not in shown.stdout
    assert re.search(r"   result    Bash ok, \d+ B", second), second
    checked = replay(config, session, "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1] == "checked 2 recorded upstream answers of 2 turns: no differences"
