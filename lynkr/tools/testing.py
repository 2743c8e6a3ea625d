"""``workspace_test_run``, ``workspace_test_history`` and ``workspace_test_summary``.

A run uses ``WORKSPACE_TEST_COMMAND`` when set, else a command detected from the workspace's files, under
``WORKSPACE_TEST_TIMEOUT_MS`` (the whole process group is killed when it passes).  Its output is parsed
(:mod:`test_parsers`) and the run is returned as a :class:`TestRan` event, which the ``tests`` projection
folds into the history the other two tools read.  The git policy's "tests must pass" rule runs the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import pygit2
import trio

from lynkr.config import Config
from lynkr.events.records import Event
from lynkr.tools.base import Action, Projection, Sandbox, Tool, ToolContext, ToolResult, ToolSpec
from lynkr.tools.declared import Arguments, DeclaredTool, count_argument, error, schema
from lynkr.tools.environ import without_credentials
from lynkr.tools.subprocess_group import Finished, run_in_group
from lynkr.tools.test_events import TestOutcome, TestRan
from lynkr.tools.test_parsers import ParsedRun, parse

PART = "tests"
KEPT_RUNS = 200  # the history keeps this many newest runs
# Per-test outcomes kept in one run's event, so a suite of 50,000 tests does not put megabytes in the log.
# Failures are kept first: they are what flaky-test detection and recent failures are about.
RECORDED_TESTS = 2000
_NPM_PLACEHOLDER = 'echo "Error: no test specified" && exit 1'


# --- finding and running the tests --------------------------------------------------------------------------


def detect_test_command(workspace: Path) -> str | None:
    """The test command a developer would type in this workspace, from the files it has; None if nothing fits."""
    python_markers = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini")
    tests_folder = workspace / "tests"
    if any((workspace / name).is_file() for name in python_markers) or (
        tests_folder.is_dir() and any(tests_folder.glob("*.py"))
    ):
        venv_python = workspace / ".venv" / "bin" / "python"
        python = str(venv_python) if venv_python.is_file() else "python3"
        # -rA names every test with its outcome, and --durations=0 times them: history and flakiness need both.
        return f"{python} -m pytest -q -rA --durations=0"
    package = workspace / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(package.read_text(encoding="utf-8")).get("scripts", {})
        except (OSError, ValueError, AttributeError):
            scripts = {}
        script = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(script, str) and script.strip() and script.strip() != _NPM_PLACEHOLDER:
            return "npm test --silent"
        return "node --test"
    if (workspace / "go.mod").is_file():
        return "go test -v ./..."
    if (workspace / "Cargo.toml").is_file():
        return "cargo test"
    return None


def chosen_command(workspace: Path, configured: str | None) -> str | None:
    return configured if configured else detect_test_command(workspace)


@attrs.frozen(kw_only=True)
class Outcome:
    command: str
    finished: Finished
    parsed: ParsedRun

    @property
    def passed(self) -> bool:
        return not self.finished.timed_out and self.finished.exit_code == 0

    def headline(self) -> str:
        parsed, finished = self.parsed, self.finished
        status = (
            f"timed out after {finished.duration_ms / 1000:.1f} s and was killed"
            if finished.timed_out
            else f"exit code {finished.exit_code}, {finished.duration_ms / 1000:.1f} s"
        )
        return (
            f"Tests: {parsed.passed} passed, {parsed.failed} failed, {parsed.skipped} skipped "
            f"({parsed.framework}; {status}) - `{self.command}`"
        )


async def run_tests(
    workspace: Path, environ: Mapping[str, str], command: str, timeout_ms: int, sandbox: Sandbox | None = None
) -> Outcome:
    finished = await run_in_group(command, cwd=workspace, environ=environ, timeout_s=timeout_ms / 1000, sandbox=sandbox)
    return Outcome(command=command, finished=finished, parsed=parse(finished.output))


def recorded_tests(tests: Sequence[TestOutcome]) -> tuple[TestOutcome, ...]:
    if len(tests) <= RECORDED_TESTS:
        return tuple(tests)
    failed = [test for test in tests if test[1] == "failed"]
    others = [test for test in tests if test[1] != "failed"]
    return tuple((failed + others)[:RECORDED_TESTS])


def _revision(workspace: Path) -> str | None:
    """The commit the workspace is at, so the summary can tell a flaky test from one that changed."""
    try:
        found = pygit2.discover_repository(str(workspace))
        if found is None:
            return None
        repo = pygit2.Repository(found)
        return None if repo.head_is_unborn or repo.is_bare else str(repo.head.target)
    except pygit2.GitError:
        return None


# --- history ------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TestHistory:
    __test__ = False

    runs: tuple[TestRan, ...] = ()  # oldest first, at most KEPT_RUNS
    total: int = 0  # runs ever recorded, so run numbers stay stable after old ones drop out


def apply(history: TestHistory, event: Event) -> TestHistory:
    if not isinstance(event, TestRan):
        return history
    return TestHistory(runs=(*history.runs, event)[-KEPT_RUNS:], total=history.total + 1)


PROJECTIONS: tuple[Projection, ...] = (Projection(name=PART, initial=TestHistory, apply=apply),)


# --- the tools ----------------------------------------------------------------------------------------------


def tools(config: Config) -> list[Tool]:
    return [
        DeclaredTool(
            spec=ToolSpec(
                name="workspace_test_run",
                description="Run the workspace's tests (WORKSPACE_TEST_COMMAND, else detected: pytest, npm test / "
                "node --test, go test, cargo test) and report pass/fail/skip counts and failing tests.",
                input_schema=schema({"timeout_ms": {"type": "integer", "minimum": 1}}),
                kinds=("test.run",),
            ),
            describe=_test_action,
            implementation=_run,
        ),
        DeclaredTool(
            spec=ToolSpec(
                name="workspace_test_history",
                description="The most recent test runs, newest first, with their counts and failing tests.",
                input_schema=schema({"limit": {"type": "integer", "minimum": 1, "maximum": 200}}),
                kinds=("test.read",),
            ),
            describe=_read_action,
            implementation=_history,
        ),
        DeclaredTool(
            spec=ToolSpec(
                name="workspace_test_summary",
                description="Across recent test runs: flaky tests (both passed and failed), the slowest tests, and "
                "recent failures.",
                input_schema=schema({"runs": {"type": "integer", "minimum": 1, "maximum": 200}}),
                kinds=("test.read",),
            ),
            describe=_read_action,
            implementation=_summary,
        ),
    ]


def _test_action(arguments: Arguments) -> Sequence[Action]:
    return [Action(kind="test.run")]


def _read_action(arguments: Arguments) -> Sequence[Action]:
    return [Action(kind="test.read")]


async def _run(arguments: Arguments, context: ToolContext) -> ToolResult:
    limit_ms = int(context.settings.test_timeout_ms)
    timeout_ms = min(count_argument(arguments, "timeout_ms", limit_ms, low=1, high=10**9), limit_ms)
    command = await trio.to_thread.run_sync(chosen_command, context.workspace, context.settings.test_command)
    if command is None and context.index is not None:
        # The index reads more manifests (Maven, Gradle, Bundler, Composer, .NET) than the quick detection.
        command = await trio.to_thread.run_sync(context.index.detected_test_command)
    if command is None:
        return error(
            "no test command: set WORKSPACE_TEST_COMMAND, or add what a test runner needs (pyproject.toml or a "
            "tests/ folder for pytest, package.json, go.mod, Cargo.toml)"
        )
    try:
        outcome = await run_tests(
            context.workspace, without_credentials(context.environ), command, timeout_ms, context.sandbox
        )
    except OSError as exc:
        return error(f"the test command could not start in {context.workspace}: {exc}")
    revision = await trio.to_thread.run_sync(_revision, context.workspace)
    parsed, finished = outcome.parsed, outcome.finished
    ran = TestRan(
        command=command,
        framework=parsed.framework,
        exit_code=finished.exit_code,
        timed_out=finished.timed_out,
        passed=parsed.passed,
        failed=parsed.failed,
        skipped=parsed.skipped,
        duration_ms=round(finished.duration_ms, 3),
        failures=parsed.failures[:RECORDED_TESTS],
        tests=recorded_tests(parsed.tests),
        revision=revision,
        at=time.time(),
    )
    lines = [outcome.headline()]
    if parsed.failures:
        lines.append("Failing: " + ", ".join(parsed.failures[:50]))
    if finished.timed_out:
        lines.append(f"The whole process group was killed at the {timeout_ms} ms timeout (WORKSPACE_TEST_TIMEOUT_MS).")
    # The end of the output holds the failures' details and the summary; the runner cuts what is too long.
    lines.extend(["", "Output (end):", _tail(finished.output, int(context.settings.output_limit_bytes) // 2)])
    return ToolResult(
        content="\n".join(lines), is_error=finished.timed_out, exit_code=finished.exit_code, events=(ran,)
    )


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} characters before this ...]\n{text[-limit:]}"


def _history_of(context: ToolContext) -> TestHistory:
    history: TestHistory = context.state.part(PART)
    return history


def _describe(number: int, run: TestRan) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.at))
    status = "timed out" if run.timed_out else f"exit {run.exit_code}"
    at = f" @{run.revision[:7]}" if run.revision else ""
    line = (
        f"#{number} {when} {run.framework}: {run.passed} passed, {run.failed} failed, {run.skipped} skipped, "
        f"{status}, {run.duration_ms / 1000:.1f} s{at}"
    )
    if run.failures:
        line += "\n    failing: " + ", ".join(run.failures[:20]) + (" ..." if len(run.failures) > 20 else "")
    return line


async def _history(arguments: Arguments, context: ToolContext) -> ToolResult:
    limit = count_argument(arguments, "limit", 10, low=1, high=KEPT_RUNS)
    history = _history_of(context)
    if not history.runs:
        return ToolResult(content="No test runs yet; workspace_test_run runs them.")
    first_number = history.total - len(history.runs) + 1
    numbered = list(enumerate(history.runs, start=first_number))[-limit:]
    return ToolResult(content="\n".join(_describe(number, run) for number, run in reversed(numbered)))


@attrs.frozen(kw_only=True)
class Summary:
    runs: int
    flaky: tuple[tuple[str, int, int, bool], ...]  # name, passes, failures, flipped on one unchanged revision
    slowest: tuple[tuple[str, float], ...]  # name, mean duration in ms
    recent_failures: tuple[tuple[str, int], ...]  # name, failing runs among the window


def summarize(runs: Sequence[TestRan], top: int = 10) -> Summary:
    outcomes: dict[str, list[tuple[str, str | None]]] = {}
    durations: dict[str, list[float]] = {}
    failing: dict[str, int] = {}
    ever_failed = {name for run in runs for name in run.failures}
    for run in runs:
        named = {name for name, _, _ in run.tests}
        for name, outcome, duration_ms in run.tests:
            outcomes.setdefault(name, []).append((outcome, run.revision))
            if duration_ms is not None:
                durations.setdefault(name, []).append(duration_ms)
        for name in run.failures:
            failing[name] = failing.get(name, 0) + 1
            if name not in named:
                outcomes.setdefault(name, []).append(("failed", run.revision))
        # A plain `pytest` (or go test without -v) names only failing tests.  A run that finished and was
        # understood, but did not list a test that failed elsewhere, passed it.
        if not run.timed_out and run.framework != "unknown":
            for name in ever_failed - named - set(run.failures):
                outcomes.setdefault(name, []).append(("passed", run.revision))
    flaky = []
    for name, seen in outcomes.items():
        passes = sum(1 for outcome, _ in seen if outcome == "passed")
        failures = sum(1 for outcome, _ in seen if outcome == "failed")
        if passes and failures:
            by_revision: dict[str | None, set[str]] = {}
            for outcome, revision in seen:
                by_revision.setdefault(revision, set()).add(outcome)
            same = any(
                revision is not None and {"passed", "failed"} <= found for revision, found in by_revision.items()
            )
            flaky.append((name, passes, failures, same))
    flaky.sort(key=lambda item: (not item[3], -min(item[1], item[2]), item[0]))
    means = sorted(((name, sum(values) / len(values)) for name, values in durations.items()), key=lambda item: -item[1])
    latest = runs[-1].failures if runs else ()
    recent = sorted(failing.items(), key=lambda item: (item[0] not in latest, -item[1], item[0]))
    return Summary(
        runs=len(runs), flaky=tuple(flaky), slowest=tuple(means[:top]), recent_failures=tuple(recent[: top * 2])
    )


async def _summary(arguments: Arguments, context: ToolContext) -> ToolResult:
    window = count_argument(arguments, "runs", 20, low=1, high=KEPT_RUNS)
    runs = _history_of(context).runs[-window:]
    if not runs:
        return ToolResult(content="No test runs yet; workspace_test_run runs them.")
    summary = summarize(runs)
    lines = [f"Over the last {summary.runs} test runs:", "", "Flaky (both passed and failed):"]
    lines.extend(
        f"  {name}: passed {passes}x, failed {failures}x" + (" (on the same unchanged commit)" if same else "")
        for name, passes, failures, same in summary.flaky
    )
    if not summary.flaky:
        lines.append("  none")
    lines.append("Slowest (mean duration):")
    lines.extend(f"  {name}: {mean:.1f} ms" for name, mean in summary.slowest)
    if not summary.slowest:
        lines.append("  no durations in the output")
    latest = runs[-1]
    lines.append(f"Recent failures (the latest run had {latest.failed}):")
    lines.extend(
        f"  {name}: failed in {count} of {summary.runs} runs" + (" - failing now" if name in latest.failures else "")
        for name, count in summary.recent_failures
    )
    if not summary.recent_failures:
        lines.append("  none")
    return ToolResult(content="\n".join(lines))

