"""The reflector in the running daemon: a finished task yields skill events, the next request of the same kind
carries the skills block upstream (after the client's system blocks), the live skill set equals a rebuild from
the log, and all of it survives a daemon killed with SIGKILL."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from lynkr.daemon import Running
from lynkr.events.lmdb_store import LmdbEventStore
from lynkr.events.snapshots import DERIVED_STATE, Origin, Rebuilt, rebuild
from lynkr.reflect.events import SkillLearned, SkillPhrased, SkillReinforced, SkillUsed
from lynkr.reflect.inject import HEADER
from lynkr.reflect.skills import SkillsState
from tests.conftest import make_config, recorded_events, running_lynkr
from tests.fakes import FakeUpstream, Reply, serve_fake
from tests.fakes.claude_cli import run_claude
from tests.test_cli import lynkr as lynkr_cli
from tests.test_daemon_process import base_env, daemon
from tests.test_reflect_analysis import ask, call, debugging_transcript

SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli;"},
    {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
]
TOOLS = [{"name": name, "description": f"the {name} tool", "input_schema": {"type": "object"}}
         for name in ("Bash", "Read", "Edit", "Grep", "Write")]


def anthropic_env(upstream: str) -> dict[str, str]:
    return {
        "MODEL_PROVIDER": "azure-anthropic",
        "AZURE_ANTHROPIC_ENDPOINT": f"{upstream}/anthropic/v1/messages",
        "AZURE_ANTHROPIC_API_KEY": "azure-upstream-key",
    }


def request(messages: list[dict[str, Any]], model: str = "claude-opus-5-5") -> dict[str, Any]:
    return {"model": model, "max_tokens": 200, "system": SYSTEM, "tools": TOOLS, "messages": messages}


async def post(base_url: str, body: dict[str, Any], session: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.post("/v1/messages", json=body, headers={"x-claude-code-session-id": session})
        assert response.status_code == 200, response.text


def live_skills(lynkr: Running) -> SkillsState:
    state: SkillsState = lynkr.derived.states["skills"]
    return state


def skills_origin(rebuilt: Rebuilt) -> Origin:
    return next(origin for origin in rebuilt.origins if origin.name == "skills")


async def wait_for(condition: Any, what: str) -> None:
    with trio.fail_after(10):
        while not condition():
            await trio.sleep(0.02)
    assert condition(), what


async def test_a_finished_task_teaches_skills_that_the_next_task_of_its_kind_carries_upstream(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(*(Reply.text(f"answer {n}") for n in range(4)))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, anthropic_env(upstream))
        async with running_lynkr(config) as lynkr:
            await post(lynkr.base_url, request(debugging_transcript()), "task-1")
            await wait_for(lambda: len(live_skills(lynkr).skills) == 2, "a workflow and a recovery were learned")
            first = fake.model_calls[0].request.json
            assert first["system"] == SYSTEM  # nothing learned yet, nothing injected

            words = "Fix the crash in parser.py"
            await post(lynkr.base_url, request([ask(words)]), "task-2")
            injected = fake.model_calls[1].request.json["system"]
            assert injected[:2] == SYSTEM and len(injected) == 3
            block = injected[2]["text"]
            assert block.startswith(HEADER.format(kind="debugging"))
            assert "work in this order: search -> read -> test -> read -> edit -> test" in block
            assert "When a test step fails (Bash), read -> edit" in block

            # The task goes on (a tool result goes back): the very same block, and no second skill.used.
            follow = [ask(words), *call("Read", {"file_path": "parser.py"}, "1\tdef parse(): ...")]
            await post(lynkr.base_url, request(follow), "task-2")
            assert fake.model_calls[2].request.json["system"] == injected
            # The CLI's background requests on a Haiku model get nothing.
            await post(lynkr.base_url, request([ask("Fix a title")], model="claude-haiku-4-5-20251001"), "task-3")
            assert fake.model_calls[3].request.json["system"] == SYSTEM

            await wait_for(lambda: sum(s.uses for s in live_skills(lynkr).skills.values()) == 2, "uses folded")
            live = live_skills(lynkr)
    assert live_skills(lynkr) == live  # as the projector held it when the daemon stopped
    events = recorded_events(config.data_dir)
    learned = [e for e in events if isinstance(e, SkillLearned)]
    assert sorted(e.category for e in learned) == ["recovery", "workflow"]
    assert all(e.evidence["session_id"] == "task-1" for e in learned)
    used = [e for e in events if isinstance(e, SkillUsed)]
    assert [(e.session_id, e.kind, len(e.skill_ids)) for e in used] == [("task-2", "debugging", 2)]
    with LmdbEventStore.open(config.data_dir / "events") as store:
        assert rebuild(store, DERIVED_STATE, use_snapshots=False).states["skills"] == live
        with_snapshot = rebuild(store)
        assert skills_origin(with_snapshot).snapshot_seq is not None and with_snapshot.states["skills"] == live


async def test_with_injection_switched_off_skills_are_learned_but_never_sent(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("fixed"), Reply.text("fixed again"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {**anthropic_env(upstream), "LYNKR_SKILLS_IN_REQUESTS": "false"})
        async with running_lynkr(config) as lynkr:
            await post(lynkr.base_url, request(debugging_transcript()), "task-1")
            await wait_for(lambda: len(live_skills(lynkr).skills) == 2, "skills learned")
            await post(lynkr.base_url, request([ask("Fix the crash in parser.py")]), "task-2")
            assert fake.model_calls[1].request.json["system"] == SYSTEM
    assert not any(isinstance(e, SkillUsed) for e in recorded_events(config.data_dir))


async def test_the_reflector_runs_as_a_supervised_actor_unless_switched_off(tmp_path: Path) -> None:
    for switch, running in (("true", True), ("false", False)):
        (tmp_path / switch).mkdir()
        config = make_config(tmp_path / switch, {"LYNKR_REFLECTOR_ENABLED": switch})
        async with running_lynkr(config) as lynkr, httpx.AsyncClient(base_url=lynkr.base_url) as client:
            metrics = (await client.get("/metrics")).text
        assert ('lynkr_actor_up{actor="reflector"} 1' in metrics) is running, metrics
        assert "skills" in lynkr.derived.states  # the skill set is rebuilt and kept either way


async def test_llm_phrasing_is_asked_once_recorded_and_used_by_injection(tmp_path: Path) -> None:
    phrased = "Search first, read what you find, then edit and re-run the tests."
    fake = FakeUpstream()
    fake.push(Reply.text("fixed"), Reply.text(phrased), Reply.text(phrased), Reply.text("on it"))
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, {**anthropic_env(upstream), "LYNKR_SKILLS_LLM_PHRASING": "true"})
        async with running_lynkr(config) as lynkr:
            await post(lynkr.base_url, request(debugging_transcript()), "task-1")
            await wait_for(
                lambda: [s.text for s in live_skills(lynkr).skills.values()] == [phrased, phrased], "both phrased"
            )
            asked = [call.request.json for call in fake.model_calls[1:3]]
            assert all("Rewrite this coding-agent skill" in body["messages"][0]["content"] for body in asked)
            await post(lynkr.base_url, request([ask("Fix the crash in parser.py")]), "task-2")
            assert f"- {phrased} (confidence" in fake.model_calls[3].request.json["system"][-1]["text"]
            await wait_for(lambda: sum(s.uses for s in live_skills(lynkr).skills.values()) == 2, "uses folded")
            live = live_skills(lynkr)
    assert live_skills(lynkr) == live
    # The answers are in the log: a rebuild has the phrased skills without asking the model again.
    with LmdbEventStore.open(config.data_dir / "events") as store:
        assert rebuild(store, DERIVED_STATE, use_snapshots=False).states["skills"] == live
    assert len(fake.model_calls) == 4
    assert sum(isinstance(e, SkillPhrased) for e in recorded_events(config.data_dir)) == 2


async def test_server_run_rounds_count_as_the_tasks_tool_calls(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Write", arguments={"file_path": "notes.md", "content": "one\n"}, id="toolu_w"),
        Reply.tool_call(name="Bash", arguments={"command": "cat notes.md", "description": "show"}, id="toolu_b"),
        Reply.text("The notes are written."),
        Reply.text("Done again."),
    )
    async with serve_fake(fake) as upstream:
        env = {**anthropic_env(upstream), "TOOL_EXECUTION_MODE": "server"}
        config = make_config(tmp_path, env)
        async with running_lynkr(config) as lynkr:
            await post(lynkr.base_url, request([ask("Create a notes file")]), "loop-1")
            await wait_for(lambda: len(live_skills(lynkr).skills) == 1, "a workflow learned from lynkr's rounds")
            (skill,) = live_skills(lynkr).skills.values()
            assert (skill.kind, skill.pattern) == ("feature", ("edit", "read"))
            assert skill.evidence[0]["tool_calls"] == 2 and skill.evidence[0]["session_id"] == "loop-1"
            assert (config.workspace_root / "notes.md").read_text() == "one\n"
            await post(lynkr.base_url, request([ask("Create a todo file")]), "loop-2")
            assert "work in this order: edit -> read" in fake.model_calls[3].request.json["system"][-1]["text"]
    events = recorded_events(config.data_dir)
    # One task, one analysis: the pool's completions of the loop's rounds are not tasks of their own.
    assert len([e for e in events if isinstance(e, (SkillLearned, SkillReinforced))]) == 1


async def test_skills_survive_kill_9_and_lynkr_skills_explains_them(tmp_path: Path) -> None:
    fake = FakeUpstream()
    fake.push(Reply.text("fixed"), Reply.text("on it"))
    data_dir = tmp_path / "data"
    async with serve_fake(fake) as upstream:
        env = base_env(tmp_path, **anthropic_env(upstream))
        async with daemon(env) as lynkr:
            await post(lynkr.base_url, request(debugging_transcript()), "task-1")

            def skills_on_disk() -> int:
                with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
                    return sum(isinstance(r.event, SkillLearned) for r in store.read(stream="skills"))

            await wait_for(lambda: skills_on_disk() == 2, "the skills are in the log")
            lynkr.process.send_signal(signal.SIGKILL)
            with trio.fail_after(5):
                await lynkr.process.wait()
        with LmdbEventStore.open(data_dir / "events", readonly=True) as store:
            before = rebuild(store, DERIVED_STATE, use_snapshots=False).states["skills"]
        assert len(before.skills) == 2

        async with daemon(env) as lynkr:
            # The restarted daemon rebuilt the skills from the log and injects them.
            await post(lynkr.base_url, request([ask("Fix the crash in parser.py")]), "task-2")
            assert "work in this order: search -> read" in fake.model_calls[1].request.json["system"][-1]["text"]
            lynkr.process.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await lynkr.process.wait() == 0
            assert "Traceback" not in lynkr.stderr()
    with LmdbEventStore.open(data_dir / "events") as store:
        replayed = rebuild(store, DERIVED_STATE, use_snapshots=False).states["skills"]
        from_snapshot = rebuild(store)
    assert skills_origin(from_snapshot).snapshot_seq is not None and from_snapshot.states["skills"] == replayed
    assert {s: (k.tasks, k.confidence) for s, k in replayed.skills.items()} == {
        s: (k.tasks, k.confidence) for s, k in before.skills.items()
    }
    assert sum(s.uses for s in replayed.skills.values()) == 2

    listed = lynkr_cli(tmp_path, "skills", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    skills = json.loads(listed.stdout)
    assert sorted(s["category"] for s in skills) == ["recovery", "workflow"]
    workflow = next(s for s in skills if s["category"] == "workflow")
    assert workflow["uses"] == 1 and workflow["kind"] == "debugging" and "evidence" not in workflow
    explained = lynkr_cli(tmp_path, "skills", workflow["id"][:6], env=env)
    assert explained.returncode == 0, explained.stderr
    assert "session task-1 request" in explained.stdout and "search -> read -> test" in explained.stdout
    missing = lynkr_cli(tmp_path, "skills", "sk_nothing", env=env)
    assert missing.returncode == 1 and "no skill match" in missing.stderr


# The real Claude Code CLI


@pytest.mark.cli
async def test_the_real_cli_teaches_a_skill_that_its_next_run_of_the_same_kind_gets_upstream(
    claude_exe: Path, claude_workdir: Path, tmp_path: Path
) -> None:
    fake = FakeUpstream()
    fake.push(
        Reply.tool_call(name="Bash", arguments={"command": "ls", "description": "list files"}, id="toolu_ls"),
        Reply.tool_call(name="Bash", arguments={"command": "echo hi > out.txt", "description": "write out.txt"},
                        id="toolu_echo"),
        Reply.text("Wrote out.txt."),
        Reply.text("Nothing to do."),
    )
    async with serve_fake(fake) as upstream:
        config = make_config(tmp_path, anthropic_env(upstream))
        async with running_lynkr(config) as lynkr:
            first = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="Write hi into out.txt",
                                     cwd=claude_workdir)
            assert first.returncode == 0 and first.result == "Wrote out.txt.", first.stdout + first.stderr
            assert (claude_workdir / "out.txt").read_text() == "hi\n"
            await wait_for(lambda: len(live_skills(lynkr).skills) == 1, "the CLI's task taught a skill")
            (skill,) = live_skills(lynkr).skills.values()
            assert (skill.kind, skill.pattern) == ("feature", ("search", "edit"))
            assert skill.evidence[0]["session_id"] == first.json["session_id"]

            second = await run_claude(claude_exe, base_url=lynkr.base_url, prompt="Write bye into other.txt",
                                      cwd=claude_workdir)
            assert second.returncode == 0 and second.result == "Nothing to do.", second.stdout + second.stderr
    calls = fake.model_calls
    assert len(calls) == 4
    for call_before in calls[:3]:
        assert not any(HEADER.format(kind="feature") in b["text"] for b in call_before.request.json["system"])
    system = calls[3].request.json["system"]
    # The CLI's own blocks come first (as many as it sends, the billing line leading), then the skills block.
    assert len(system) == len(calls[0].request.json["system"]) + 1
    assert system[0]["text"].startswith("x-anthropic-billing-header")
    assert not any(HEADER.format(kind="feature") in block["text"] for block in system[:-1])
    assert system[-1]["text"].startswith(HEADER.format(kind="feature"))
    assert "work in this order: search -> edit (search: Bash `ls`, edit: Bash `echo`)" in system[-1]["text"]
