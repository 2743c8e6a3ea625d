"""The reflector's sans-IO parts: scripted transcripts of several kinds of task in, skills out; the skill fold;
the skills block and where it goes."""

from __future__ import annotations

import itertools
from typing import Any

from lynkr.events.records import Event, Recorded
from lynkr.reflect.analysis import ANY_KIND, analyse, classify, observations, skill_id, task_start
from lynkr.reflect.events import SkillLearned, SkillPhrased, SkillReinforced, SkillUsed
from lynkr.reflect.inject import HEADER, rank, skills_block, wants_skills, with_block
from lynkr.reflect.skills import SKILLS, SkillsState, decode_skills, encode_skills

REMINDER = "<system-reminder>\nThe git status is clean. Do not mention this reminder.\n</system-reminder>"
FINAL = {"role": "assistant", "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn",
         "usage": {"input_tokens": 900, "output_tokens": 40, "cache_read_input_tokens": 100}}

_ids = itertools.count(1)


def ask(words: str) -> dict[str, Any]:
    """The user's message as Claude Code sends it: a reminder block, then the typed words."""
    return {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": words}]}


def call(name: str, arguments: dict[str, Any], result: str, *, error: bool = False) -> list[dict[str, Any]]:
    """An assistant message calling one tool, and the user message with its result."""
    tool_id = f"toolu_{next(_ids)}"
    outcome: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id, "content": result}
    if error:
        outcome["is_error"] = True
    return [
        {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": arguments}]},
        {"role": "user", "content": [outcome, {"type": "text", "text": REMINDER}]},
    ]


def debugging_transcript(words: str = "Fix the failing test in calc.py") -> list[dict[str, Any]]:
    """Search, read, a failing test run, read and edit, then the tests pass."""
    return [
        ask(words),
        *call("Grep", {"pattern": "def add"}, "calc.py:3:def add(a, b):"),
        *call("Read", {"file_path": "calc.py"}, "1\tdef add(a, b):\n2\t    return a - b"),
        *call("Bash", {"command": "python -m pytest -q"}, "Exit code 1\nFAILED test_calc.py::test_add\n1 failed",
              error=True),
        *call("Read", {"file_path": "test_calc.py"}, "1\tdef test_add():\n2\t    assert add(1, 2) == 3"),
        *call("Edit", {"file_path": "calc.py", "old_string": "a - b", "new_string": "a + b"}, "The file was updated"),
        *call("Bash", {"command": "python -m pytest -q"}, "3 passed in 0.01s"),
    ]


def documentation_transcript() -> list[dict[str, Any]]:
    return [
        ask("Update the README to document the --json flag"),
        *call("Read", {"file_path": "README.md"}, "# tool\n"),
        *call("Edit", {"file_path": "README.md", "old_string": "# tool", "new_string": "# tool\n--json"}, "ok"),
    ]


def refactoring_transcript() -> list[dict[str, Any]]:
    return [
        ask("Rename parse_args to parse_arguments across the package"),
        *call("Grep", {"pattern": "parse_args"}, "cli.py:1\nmain.py:4"),
        *call("Edit", {"file_path": "cli.py", "old_string": "parse_args", "new_string": "parse_arguments"}, "ok"),
        *call("Edit", {"file_path": "main.py", "old_string": "parse_args", "new_string": "parse_arguments"}, "ok"),
        *call("Bash", {"command": "pytest"}, "12 passed"),
    ]


def adding_tests_transcript() -> list[dict[str, Any]]:
    return [
        ask("Add tests for the tokenizer"),
        *call("Read", {"file_path": "src/tokenizer.py"}, "def tokens(text): ..."),
        *call("Write", {"file_path": "tests/test_tokenizer.py", "content": "def test_tokens(): ..."}, "created"),
        *call("Bash", {"command": "pytest tests/test_tokenizer.py"}, "1 passed"),
    ]


def test_a_debugging_task_yields_its_workflow_and_how_the_failed_test_run_was_recovered() -> None:
    task = analyse(debugging_transcript(), FINAL)
    assert task is not None
    assert task.kind == "debugging"
    assert task.user_words == "Fix the failing test in calc.py"  # the reminder block is not the user's words
    assert task.phases == ("search", "read", "test", "read", "edit", "test")
    assert (task.steps, len(task.calls), task.errors) == (6, 6, 1)
    assert [step.failed for step in task.calls] == [False, False, True, False, False, False]
    (recovery,) = task.recoveries
    assert (recovery.failed_phase, recovery.failed_tool, recovery.actions) == ("test", "Bash", ("read", "edit"))
    assert task.succeeded and task.touched == ("calc.py",)
    assert (task.input_tokens, task.output_tokens) == (1000, 40)

    workflow, recovered = observations(task, session_id="s1", request_id="r1")
    assert workflow.category == "workflow" and workflow.kind == "debugging"
    assert workflow.skill_id == skill_id("workflow", "debugging", task.phases)
    assert workflow.instruction.startswith(
        "For debugging tasks, work in this order: search -> read -> test -> read -> edit -> test"
    )
    assert "test: Bash `python`" in workflow.instruction and "Finish by running the tests." in workflow.instruction
    assert workflow.confidence == 0.6  # an error along the way costs the no-error bonus; ending on tests adds
    assert workflow.evidence["request_id"] == "r1" and workflow.evidence["tool_calls"] == 6
    assert workflow.evidence["tokens"] == 1040
    assert recovered.category == "recovery" and recovered.kind == ANY_KIND
    assert recovered.pattern == ("test", "read", "edit")
    assert recovered.instruction.startswith("When a test step fails (Bash), read -> edit before running it again")


def test_each_kind_of_task_is_told_from_the_users_words_and_what_it_touched() -> None:
    kinds = {
        name: analyse(transcript, FINAL)
        for name, transcript in (
            ("documentation", documentation_transcript()),
            ("refactoring", refactoring_transcript()),
            ("testing", adding_tests_transcript()),
        )
    }
    assert {name: task.kind for name, task in kinds.items() if task is not None} == {
        "documentation": "documentation", "refactoring": "refactoring", "testing": "testing"
    }
    refactoring = kinds["refactoring"]
    assert refactoring is not None and refactoring.phases == ("search", "edit", "test")
    assert refactoring.errors == 0 and not refactoring.recoveries
    [workflow] = observations(refactoring, session_id="s", request_id="r")
    assert workflow.confidence == 0.8
    assert classify("Write hi into out.txt") == "feature"
    assert classify("") == "feature"
    assert classify("please have a look", ["docs/guide.md", "README.md"]) == "documentation"
    assert classify("update these", ["tests/test_a.py"]) == "testing"


def test_only_the_newest_task_counts_and_tool_results_do_not_start_one() -> None:
    first = debugging_transcript()
    second = [ask("Now update the README to mention it"), *call("Read", {"file_path": "README.md"}, "# calc")]
    messages = [*first, {"role": "assistant", "content": [{"type": "text", "text": "Fixed."}]}, *second]
    assert task_start(messages) == len(first) + 1
    task = analyse(messages, FINAL)
    assert task is not None and task.kind == "documentation" and task.phases == ("read",)
    assert observations(task, session_id="s", request_id="r") == []  # one phase is no workflow


def test_a_task_that_never_recovered_or_called_no_tools_teaches_nothing() -> None:
    broken = [ask("Fix the build"), *call("Bash", {"command": "make test"}, "Exit code 2\nerror", error=True)]
    task = analyse(broken, FINAL)
    assert task is not None and task.errors == 1 and not task.succeeded and not task.recoveries
    assert observations(task, session_id="s", request_id="r") == []
    chat = analyse([ask("What does calc.py do?")], FINAL)
    assert chat is not None and chat.calls == ()
    assert analyse([{"role": "user", "content": [{"type": "text", "text": REMINDER}]}], FINAL) is None


# The fold


def records(*events: Event, start: int = 1) -> list[Recorded]:
    return [Recorded(seq=start + n, time_ns=1_000 + n, stream="skills", event=e) for n, e in enumerate(events)]


def fold(recorded: list[Recorded], state: SkillsState | None = None) -> SkillsState:
    state = state if state is not None else SKILLS.initial
    for record in recorded:
        state = SKILLS.apply(state, record)
    return state


def learned(observation_index: int = 0, request_id: str = "r1") -> SkillLearned:
    task = analyse(debugging_transcript(), FINAL)
    assert task is not None
    found = observations(task, session_id="s1", request_id=request_id)[observation_index]
    return SkillLearned(skill_id=found.skill_id, kind=found.kind, category=found.category,
                        pattern=list(found.pattern), instruction=found.instruction, confidence=found.confidence,
                        evidence=found.evidence)


def test_the_skill_fold_learns_reinforces_counts_uses_and_ignores_the_same_task_twice() -> None:
    first = learned()
    again = learned(request_id="r2")
    state = fold(records(
        first,
        SkillReinforced(skill_id=first.skill_id, evidence=again.evidence),
        SkillReinforced(skill_id=first.skill_id, evidence=again.evidence),  # the same task: no change
        again,  # learned again (a race): counts as seeing it again, here the same task
        SkillUsed(session_id="s9", request_id="q1", kind="debugging", skill_ids=[first.skill_id, "sk_unknown"]),
        SkillReinforced(skill_id="sk_unknown", evidence=again.evidence),
        SkillPhrased(skill_id=first.skill_id, text="Search, read, test, fix, re-test.", provider_request_id="p"),
    ))
    skill = state.skills[first.skill_id]
    assert list(state.skills) == [first.skill_id]
    assert skill.tasks == 2 and [e["request_id"] for e in skill.evidence] == ["r1", "r2"]
    assert skill.confidence == 0.7  # 0.6 + 0.4 * 0.25
    assert (skill.uses, skill.used_ns, skill.learned_ns, skill.seen_ns) == (1, 1_004, 1_000, 1_001)
    assert skill.text == "Search, read, test, fix, re-test." and skill.instruction == first.instruction
    assert state.last_seq == 7
    assert decode_skills(encode_skills(state)) == state
    # Events of other topics leave the state as it was.
    from lynkr.events.catalog import DaemonStopped

    assert fold(records(DaemonStopped(reason="x"), start=8), state).skills == state.skills


# Injection


def test_the_skills_block_ranks_fits_the_budget_and_goes_after_the_clients_system_blocks() -> None:
    state = fold(records(learned(0), learned(1)))
    ranked = rank(state.skills.values(), "debugging", now_ns=2_000)
    assert [s.category for s in ranked] == ["recovery", "workflow"]  # same age and use: higher confidence first
    assert rank(state.skills.values(), "documentation", now_ns=2_000) == [ranked[0]]  # a recovery helps any kind
    text, ids = skills_block(ranked, "debugging", budget_tokens=300)
    assert text.startswith(HEADER.format(kind="debugging")) and ids == [s.skill_id for s in ranked]
    small, small_ids = skills_block(ranked, "debugging", budget_tokens=60)
    assert len(small) / 4 <= 60 and len(small_ids) == 1
    assert skills_block(ranked, "debugging", budget_tokens=10) == ("", [])

    system = [{"type": "text", "text": "billing"}, {"type": "text", "text": "You are Claude Code.",
                                                      "cache_control": {"type": "ephemeral"}}]
    request = {"model": "claude-opus-5-5", "system": system, "tools": [{"name": "Bash"}], "messages": []}
    injected = with_block(request, text)
    assert injected["system"][:2] == system and injected["system"][2] == {"type": "text", "text": text}
    assert with_block({"system": "plain"}, "x")["system"] == [{"type": "text", "text": "plain"},
                                                             {"type": "text", "text": "x"}]
    assert wants_skills(request)
    assert not wants_skills({**request, "model": "claude-haiku-4-5-20251001"})
    assert not wants_skills({**request, "tools": []})
