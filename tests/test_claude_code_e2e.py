"""The real Claude Code CLI, end to end through lynkr, against fake upstreams of each wire format.

The CLI streams `POST {ANTHROPIC_BASE_URL}/v1/messages?beta=true` to lynkr; lynkr translates to the upstream's
format and back.  The scripted upstream first asks for a `Bash` tool call that writes a file in the CLI's working
folder, then answers with final text, so each test proves the whole loop: the CLI parsed lynkr's stream, ran the
tool, and lynkr carried the tool result back upstream in that upstream's own shape.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from lynkr.daemon import Running
from lynkr.datadir import events_dir
from lynkr.events.catalog import RequestReceived, UpstreamAttempted
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.records import Recorded
from tests.conftest import make_config, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import ClaudeResult, run_claude

pytestmark = pytest.mark.cli

PROMPT = "Write hi into out.txt"
COMMAND = "echo hi > out.txt"
FINAL_TEXT = "Wrote out.txt."

EnvFor = Callable[[str], dict[str, str]]


@attrs.frozen(kw_only=True)
class Backend:
    """How lynkr reaches one kind of upstream, and which request path the fake should see for it."""

    env: EnvFor
    wire: Literal["openai", "ollama", "anthropic"]
    path: str
    tool_call_id: str


BACKENDS: dict[str, Backend] = {
    "openai": Backend(
        env=lambda up: {
            "MODEL_PROVIDER": "openai",
            "OPENAI_ENDPOINT": f"{up}/v1/chat/completions",
            "OPENAI_API_KEY": "sk-upstream-openai",
            "OPENAI_MODEL": "gpt-test",
        },
        wire="openai",
        path="/v1/chat/completions",
        tool_call_id="call_abc123",
    ),
    "databricks": Backend(
        env=lambda up: {
            "MODEL_PROVIDER": "databricks",
            "DATABRICKS_API_BASE": up,
            "DATABRICKS_API_KEY": "dapi-upstream",
            "DATABRICKS_ENDPOINT_PATH": "/serving-endpoints/my-llm/invocations",
        },
        wire="openai",
        path="/serving-endpoints/my-llm/invocations",
        # Not a valid Anthropic id: lynkr must encode it for the CLI and decode it on the way back.
        tool_call_id="call.db/7:x",
    ),
    "ollama": Backend(
        env=lambda up: {"MODEL_PROVIDER": "ollama", "OLLAMA_ENDPOINT": up, "OLLAMA_MODEL": "qwen-test"},
        wire="ollama",
        path="/api/chat",
        tool_call_id="ollama_call_1",
    ),
    "azure-anthropic": Backend(
        env=lambda up: {
            "MODEL_PROVIDER": "azure-anthropic",
            "AZURE_ANTHROPIC_ENDPOINT": f"{up}/anthropic/v1/messages",
            "AZURE_ANTHROPIC_API_KEY": "azure-upstream-key",
        },
        wire="anthropic",
        path="/anthropic/v1/messages",
        tool_call_id="toolu_azure_1",
    ),
}


def _tool_then_text(fake: FakeUpstream, tool_call_id: str) -> None:
    fake.push(
        Reply.tool_call(
            name="Bash",
            arguments={"command": COMMAND, "description": "Write hi to out.txt"},
            id=tool_call_id,
            text="I will write the file.",
        ),
        Reply.text(FINAL_TEXT),
    )


@asynccontextmanager
async def _lynkr_in_front_of(
    fake: FakeUpstream, tmp_path: Path, env: EnvFor, extra: Mapping[str, str] | None = None
) -> AsyncIterator[Running]:
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {**env(upstream), **(extra or {})})
        async with running_lynkr(config) as lynkr:
            yield lynkr


def _read_log(data_dir: Path) -> list[Recorded]:
    """Every event lynkr recorded; read after the daemon stopped, so the log is complete."""
    with LmdbEventStore.open(events_dir(data_dir), readonly=True) as store:
        return [
            attrs.evolve(record, event=record.event.whole()) if isinstance(record.event, RequestReceived) else record
            for record in store.read()
        ]


def _assert_tool_loop_succeeded(result: ClaudeResult, workdir: Path) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.is_error, result.stdout
    assert result.result == FINAL_TEXT
    assert (workdir / "out.txt").read_text() == "hi\n"


def _tool_messages(request_json: Any) -> list[dict[str, Any]]:
    return [message for message in request_json["messages"] if message.get("role") == "tool"]


def _received(log: list[Recorded]) -> list[tuple[str, RequestReceived]]:
    return [(record.stream, record.event) for record in log if isinstance(record.event, RequestReceived)]


def _cli_tool_result(log: list[Recorded]) -> dict[str, Any]:
    """The tool_result block the CLI sent lynkr in its last request, as lynkr recorded it."""
    _, last = _received(log)[-1]
    [block] = [b for b in last.request()["messages"][-1]["content"] if b["type"] == "tool_result"]
    return dict(block)


@pytest.mark.parametrize("backend_name", list(BACKENDS))
async def test_cli_runs_a_bash_tool_round_trip_through_each_adapter(
    backend_name: str, claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    backend = BACKENDS[backend_name]
    fake = FakeUpstream()
    _tool_then_text(fake, backend.tool_call_id)
    async with _lynkr_in_front_of(fake, tmp_path, backend.env) as lynkr:
        result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt=PROMPT, cwd=claude_workdir)
        data_dir = lynkr.data_dir

    _assert_tool_loop_succeeded(result, claude_workdir)
    sent_by_cli = _cli_tool_result(_read_log(data_dir))
    # Whatever the upstream called it, the CLI saw an id the Anthropic API would accept.
    assert re.fullmatch(r"[A-Za-z0-9_-]+", sent_by_cli["tool_use_id"])
    calls = fake.model_calls
    assert len(calls) == 2, [call.request.path for call in calls]
    assert all(call.request.path == backend.path for call in calls)
    second = calls[1].request.json
    if backend.wire == "openai":
        [tool_message] = _tool_messages(second)
        assert tool_message["tool_call_id"] == backend.tool_call_id
        assert tool_message["content"] == sent_by_cli["content"]
        [assistant] = [m for m in second["messages"] if m.get("role") == "assistant"]
        assert [call["id"] for call in assistant["tool_calls"]] == [backend.tool_call_id]
        assert second["stream"] is True
    elif backend.wire == "ollama":
        [tool_message] = _tool_messages(second)
        assert tool_message["tool_name"] == "Bash"
        assert tool_message["content"] == sent_by_cli["content"]
    else:
        assistant, user = second["messages"][-2:]
        assert [b["id"] for b in assistant["content"] if b["type"] == "tool_use"] == [backend.tool_call_id]
        [tool_result] = [b for b in user["content"] if b["type"] == "tool_result"]
        assert tool_result == sent_by_cli
        assert calls[1].request.header("x-api-key") == "azure-upstream-key"


async def test_cli_session_id_names_the_stream_of_its_requests(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    _tool_then_text(fake, "call_session_1")
    async with _lynkr_in_front_of(fake, tmp_path, BACKENDS["openai"].env) as lynkr:
        result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt=PROMPT, cwd=claude_workdir)
        data_dir = lynkr.data_dir

    _assert_tool_loop_succeeded(result, claude_workdir)
    session_id = result.json["session_id"]
    received = _received(_read_log(data_dir))
    assert len(received) == 2
    assert {stream for stream, _ in received} == {session_id}
    assert {event.session_id for _, event in received} == {session_id}
    assert {event.headers.get("x-claude-code-session-id") for _, event in received} == {session_id}


async def test_cli_never_sees_an_overloaded_upstream_that_lynkr_retried(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    fake.push(Reply.status(529, message="Overloaded"), Reply.text("after lynkr's retry"))
    fast_retries = {"LYNKR_RETRY_BACKOFF_INITIAL_S": "0.05"}
    async with _lynkr_in_front_of(fake, tmp_path, BACKENDS["openai"].env, fast_retries) as lynkr:
        result = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="say hi", cwd=claude_workdir)
        data_dir = lynkr.data_dir

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.result == "after lynkr's retry"
    assert [call.reply.http_status for call in fake.model_calls if call.reply is not None] == [529, 200]
    log = _read_log(data_dir)
    # One request from the CLI: the retry happened inside lynkr.
    assert len(_received(log)) == 1
    attempts = [record.event for record in log if isinstance(record.event, UpstreamAttempted)]
    assert [(a.attempt, a.status, a.will_retry) for a in attempts] == [(1, 529, True), (2, 200, False)]


async def test_cli_reaches_lynkr_under_a_path_prefix(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    _tool_then_text(fake, "call_prefix_1")
    async with _lynkr_in_front_of(fake, tmp_path, BACKENDS["openai"].env) as lynkr:
        result = await run_claude(
            claude_exe, base_url=f"{lynkr.base_url}/some/prefix", prompt=PROMPT, cwd=claude_workdir
        )

    _assert_tool_loop_succeeded(result, claude_workdir)
    [tool_message] = _tool_messages(fake.model_calls[1].request.json)
    assert tool_message["tool_call_id"] == "call_prefix_1"
