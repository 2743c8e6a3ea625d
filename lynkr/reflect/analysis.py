"""What a finished task shows, worked out from its transcript alone: sans-IO and deterministic.

A task is what a person asked for and everything the model did about it, up to a final answer with no further tool
calls.  Claude Code resends the whole conversation with every request, so the last request of a task holds the
task: it starts at the newest user message that carries the person's own words (text outside
``<system-reminder>`` blocks; a message of tool results only is not a new task) and runs through the assistant's
``tool_use`` blocks and the ``tool_result`` blocks that answered them; the final answer closes it.

From that :func:`analyse` derives the tool calls in order, each put in a phase (search, read, edit, test, run),
which of them failed (``is_error``, a non-zero exit code, a failing test run) and what the model did until the
same phase worked again (a recovery), the cost in steps, calls and tokens, and the kind of task, from the
person's words first and the files touched second.  :func:`observations` turns that into the skills a task
supports, each with an id that depends only on what it says, so the same way of working seen twice is one skill.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from lynkr.wire.content import exit_code, result_text, user_words

KINDS = ("debugging", "testing", "refactoring", "documentation", "feature")  # ties go to the earlier kind
ANY_KIND = "any"  # a recovery helps whatever the task

# Word stems that name a kind in a request ("fail" matches "failing" and "failed").
_KIND_STEMS: dict[str, tuple[str, ...]] = {
    "debugging": ("fix", "bug", "error", "fail", "broke", "crash", "debug", "traceback", "exception", "wrong"),
    "testing": ("test", "pytest", "coverage", "unittest", "spec"),
    "refactoring": ("refactor", "rename", "extract", "cleanup", "clean", "restructur", "simplif", "reorganiz",
                    "split", "dedup"),
    "documentation": ("doc", "readme", "docstring", "comment", "changelog", "explain"),
    "feature": ("add", "implement", "create", "build", "support", "new", "write", "make", "introduce"),
}

_WORD = re.compile(r"[a-z]+")

_SEARCH_TOOLS = frozenset({"Grep", "Glob", "LS", "WebSearch", "ToolSearch"})
_READ_TOOLS = frozenset({"Read", "NotebookRead", "WebFetch"})
_EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})
_SHELL_TOOLS = frozenset({"Bash", "shell", "workspace_shell"})

_TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|unittest|tox|nox|jest|vitest|mocha|rspec|phpunit|ctest|"
    r"(npm|pnpm|yarn|bun) (run )?test|go test|cargo test|make (check|test)|mvn test|gradle test)\b"
)
_SEARCH_COMMAND = re.compile(r"^\s*(grep|rg|ag|ack|find|fd|ls|tree|git grep|git ls-files)\b")
_READ_COMMAND = re.compile(r"^\s*(cat|head|tail|less|more|bat|sed -n|nl|git (show|diff|log|blame))\b")
_EDIT_COMMAND = re.compile(r"^\s*(sed -i|perl -pi|patch|git apply|tee)\b|(^|[^>&0-9])>\s*[\w./-]+\s*$")
_TEST_FAILED = re.compile(r"\b\d+ (failed|errors?)\b|^FAILED\b|^FAIL\b|Traceback \(most recent call last\)", re.MULTILINE)

_TEST_FILE = re.compile(r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$")
_DOC_FILE = re.compile(r"(^|/)docs?/|\.(md|rst|adoc|txt)$|(^|/)(README|CHANGELOG|LICENSE)[^/]*$", re.IGNORECASE)


@attrs.frozen(kw_only=True)
class ToolStep:
    """One tool call of the task and how it went."""

    name: str
    phase: str  # search, read, edit, test, run or other
    target: str  # the file or command it was about, cut short
    failed: bool


@attrs.frozen(kw_only=True)
class Recovery:
    """A call that failed, and the phases that followed until the same phase worked again."""

    failed_phase: str
    failed_tool: str
    actions: tuple[str, ...]


@attrs.frozen(kw_only=True)
class TaskAnalysis:
    kind: str
    user_words: str
    steps: int  # assistant messages that called tools
    calls: tuple[ToolStep, ...]
    phases: tuple[str, ...]  # the calls' phases, repeats in a row collapsed
    errors: int
    recoveries: tuple[Recovery, ...]
    succeeded: bool  # the last call worked, and the task ended in a final answer
    input_tokens: int
    output_tokens: int
    touched: tuple[str, ...]  # files edited, in order, each once


@attrs.frozen(kw_only=True)
class Observation:
    """One skill a task supports: its id, what it says and the task's evidence for it."""

    skill_id: str
    kind: str
    category: str
    pattern: tuple[str, ...]
    instruction: str
    confidence: float
    evidence: dict[str, Any]


def task_start(messages: Sequence[Any]) -> int | None:
    """The index of the message that starts the current task (the newest with the user's own words)."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user" and user_words(message.get("content")):
            return index
    return None


def classify(words: str, touched: Sequence[str] = ()) -> str:
    """The kind of task: the person's words count twice, the files touched once; ties go to the earlier kind."""
    scores = dict.fromkeys(KINDS, 0)
    for word in _WORD.findall(words.lower()):
        for kind, stems in _KIND_STEMS.items():
            if word.startswith(stems):
                scores[kind] += 2
    if touched:
        if all(_TEST_FILE.search(path) for path in touched):
            scores["testing"] += 1
        if all(_DOC_FILE.search(path) for path in touched):
            scores["documentation"] += 1
    best = max(scores.values())
    return next(kind for kind in KINDS if scores[kind] == best) if best else "feature"


def analyse(messages: Sequence[Any], final: Mapping[str, Any]) -> TaskAnalysis | None:
    """The task that ``final`` (an assistant message without tool calls) finished; None without one."""
    start = task_start(messages)
    if start is None:
        return None
    words = user_words(messages[start].get("content"))
    pending: dict[str, tuple[str, Mapping[str, Any]]] = {}
    calls: list[ToolStep] = []
    steps = 0
    for message in messages[start + 1 :]:
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        blocks = [b for b in message["content"] if isinstance(b, dict)]
        if message.get("role") == "assistant":
            uses = [b for b in blocks if b.get("type") in ("tool_use", "server_tool_use")]
            steps += bool(uses)
            for block in uses:
                arguments = block.get("input")
                arguments = arguments if isinstance(arguments, dict) else {}
                pending[str(block.get("id"))] = (str(block.get("name", "")), arguments)
        elif message.get("role") == "user":
            for block in blocks:
                if block.get("type") != "tool_result" or str(block.get("tool_use_id")) not in pending:
                    continue
                name, arguments = pending.pop(str(block.get("tool_use_id")))
                calls.append(_step(name, arguments, block))
    usage = final.get("usage") if isinstance(final.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    touched = tuple(dict.fromkeys(step.target for step in calls if step.phase == "edit" and step.target))
    phases = _collapsed(step.phase for step in calls)
    return TaskAnalysis(
        kind=classify(words, touched),
        user_words=words,
        steps=steps,
        calls=tuple(calls),
        phases=phases,
        errors=sum(step.failed for step in calls),
        recoveries=_recoveries(calls),
        succeeded=bool(calls) and not calls[-1].failed,
        input_tokens=_int(usage.get("input_tokens")) + _int(usage.get("cache_read_input_tokens"))
        + _int(usage.get("cache_creation_input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        touched=touched,
    )


def observations(task: TaskAnalysis, *, session_id: str, request_id: str) -> list[Observation]:
    """The skills ``task`` supports: its workflow (when it worked and had two phases or more), and each recovery."""
    evidence = {
        "session_id": session_id,
        "request_id": request_id,
        "kind": task.kind,
        "task": task.user_words[:160],
        "phases": list(task.phases),
        "steps": task.steps,
        "tool_calls": len(task.calls),
        "errors": task.errors,
        "tokens": task.input_tokens + task.output_tokens,
    }
    found: list[Observation] = []
    if task.succeeded and len(task.phases) >= 2:
        tools = _tools_by_phase(task.calls)
        hints = ", ".join(f"{phase}: {tools[phase]}" for phase in task.phases if phase in tools)
        confidence = 0.5 + (0.2 if task.errors == 0 else 0.0) + (0.1 if task.phases[-1] == "test" else 0.0)
        confidence -= 0.1 if len(task.calls) > 15 else 0.0
        found.append(
            Observation(
                skill_id=skill_id("workflow", task.kind, task.phases),
                kind=task.kind,
                category="workflow",
                pattern=task.phases,
                instruction=f"For {task.kind} tasks, work in this order: {' -> '.join(task.phases)} ({hints})."
                + (" Finish by running the tests." if task.phases[-1] == "test" else ""),
                confidence=round(confidence, 2),
                evidence=evidence,
            )
        )
    for recovery in dict.fromkeys(task.recoveries):
        pattern = (recovery.failed_phase, *recovery.actions)
        found.append(
            Observation(
                skill_id=skill_id("recovery", ANY_KIND, pattern),
                kind=ANY_KIND,
                category="recovery",
                pattern=pattern,
                instruction=f"When a {recovery.failed_phase} step fails ({recovery.failed_tool}), "
                f"{' -> '.join(recovery.actions) or 'retry'} before running it again; that recovered before.",
                confidence=0.6,
                evidence=evidence,
            )
        )
    return found


def skill_id(category: str, kind: str, pattern: Sequence[str]) -> str:
    digest = hashlib.sha256("\x1f".join((category, kind, *pattern)).encode()).hexdigest()
    return f"sk_{digest[:10]}"


def _step(name: str, arguments: Mapping[str, Any], result: Mapping[str, Any]) -> ToolStep:
    command = str(arguments.get("command", "")) if name in _SHELL_TOOLS or "command" in arguments else ""
    phase = _phase(name, command)
    target = command[:120] if command else str(
        arguments.get("file_path") or arguments.get("path") or arguments.get("pattern") or arguments.get("query") or ""
    )[:200]
    text = result_text(result.get("content"))
    failed = bool(result.get("is_error")) or exit_code(text) not in (None, 0)
    if phase == "test" and _TEST_FAILED.search(text):
        failed = True
    return ToolStep(name=name, phase=phase, target=target, failed=failed)


def _phase(name: str, command: str) -> str:
    if command:
        if _TEST_COMMAND.search(command):
            return "test"
        if _SEARCH_COMMAND.search(command):
            return "search"
        if _READ_COMMAND.search(command):
            return "read"
        if _EDIT_COMMAND.search(command):
            return "edit"
        return "run"
    if name in _SEARCH_TOOLS:
        return "search"
    if name in _READ_TOOLS:
        return "read"
    if name in _EDIT_TOOLS:
        return "edit"
    lowered = name.lower()  # lynkr's and MCP tools: their names say what they do
    for phase, words in (("test", ("test",)), ("search", ("search", "grep", "glob", "find", "symbol", "refs", "map")),
                         ("edit", ("write", "edit", "patch", "replace")), ("read", ("read", "cat", "view", "show"))):
        if any(word in lowered for word in words):
            return phase
    return "other"


def _collapsed(phases: Any) -> tuple[str, ...]:
    out: list[str] = []
    for phase in phases:
        if phase != "other" and (not out or out[-1] != phase):
            out.append(phase)
    return tuple(out)


def _recoveries(calls: Sequence[ToolStep]) -> tuple[Recovery, ...]:
    found: list[Recovery] = []
    index = 0
    while index < len(calls):
        step = calls[index]
        if not step.failed:
            index += 1
            continue
        for later in range(index + 1, len(calls)):
            if calls[later].phase == step.phase and not calls[later].failed:
                between = (c.phase for c in calls[index + 1 : later] if c.phase != step.phase)
                found.append(Recovery(failed_phase=step.phase, failed_tool=step.name, actions=_collapsed(between)))
                index = later
                break
        else:
            break  # never recovered in this task: nothing to learn from it
        index += 1
    return tuple(found)


def _tools_by_phase(calls: Sequence[ToolStep]) -> dict[str, str]:
    tools: dict[str, str] = {}
    for step in calls:
        if step.phase not in tools and step.phase != "other":
            program = f" `{step.target.split()[0]}`" if step.name in _SHELL_TOOLS and step.target else ""
            tools[step.phase] = step.name + program
    return tools


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
