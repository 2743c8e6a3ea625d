"""workspace_test_run / _history / _summary, the output parsers, and the process-group timeout.

Samples under tests/samples/test_runs: pytest.txt, node_tap.txt, node_spec.txt and cargo.txt are real output
captured from pytest 8, node 20's test runner (both reporters) and cargo test on this machine; jest.txt,
vitest.txt and go_*.txt follow those tools' documented output, which are not installed here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from lynkr.tools import testing
from lynkr.tools.base import ToolState
from lynkr.tools.subprocess_group import run_in_group
from lynkr.tools.test_events import TestRan
from lynkr.tools.test_parsers import parse
from tests.conftest import make_config
from tests.tool_context import Bench, bench

SAMPLES = Path(__file__).parent / "samples" / "test_runs"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_pytest_output_gives_counts_failures_and_durations() -> None:
    run = parse(sample("pytest.txt"))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("pytest", 3, 2, 1)
    assert run.failures == ("tests/test_a.py::test_fail", "tests/test_a.py::TestK::test_param[2]")
    outcomes = {name: (outcome, ms) for name, outcome, ms in run.tests}
    assert outcomes["tests/test_a.py::test_slow"] == ("passed", 20.0)
    assert outcomes["tests/test_a.py::TestK::test_param[1]"] == ("passed", None)


@pytest.mark.parametrize("name", ["node_tap.txt", "node_spec.txt"])
def test_node_test_runner_output_in_both_reporters(name: str) -> None:
    run = parse(sample(name))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("node", 2, 3, 1)
    assert run.failures == ("fails", "suite > inner bad", "suite")
    names = [test_name for test_name, _, _ in run.tests]
    assert names == ["adds", "fails", "skipped", "suite > inner ok", "suite > inner bad", "suite"]
    assert all(ms is not None and ms > 0 for _, _, ms in run.tests)
    assert dict((n, o) for n, o, _ in run.tests)["skipped"] == "skipped"


def test_cargo_output() -> None:
    run = parse(sample("cargo.txt"))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("cargo", 1, 1, 1)
    assert run.failures == ("tests::it_fails",)
    assert ("tests::slow_one", "skipped", None) in run.tests


def test_jest_output() -> None:
    run = parse(sample("jest.txt"))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("jest", 3, 1, 1)
    assert run.failures == ("math › adds badly",)
    assert ("adds", "passed", 2.0) in run.tests and ("later", "skipped", None) in run.tests


def test_vitest_output() -> None:
    run = parse(sample("vitest.txt"))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("vitest", 1, 1, 1)
    assert run.failures == ("src/sum.test.ts > math > adds badly",)


def test_go_test_output_verbose_and_quiet() -> None:
    run = parse(sample("go_verbose.txt"))
    assert (run.framework, run.passed, run.failed, run.skipped) == ("go", 4, 1, 1)
    assert run.failures == ("TestSub",)
    assert ("TestTable/case_1", "passed", 250.0) in run.tests
    quiet = parse(sample("go_quiet.txt"))
    assert (quiet.framework, quiet.failed) == ("go", 0)


def test_a_huge_suite_records_a_bounded_number_of_outcomes_failures_first() -> None:
    output = "\n".join(f"PASSED t.py::test_{i}" for i in range(5000)) + "\nFAILED t.py::test_bad - x\n"
    run = parse(output + "1 failed, 5000 passed in 9.00s\n")
    assert (run.passed, run.failed, len(run.tests)) == (5000, 1, 5001)
    kept = testing.recorded_tests(run.tests)
    assert len(kept) == testing.RECORDED_TESTS
    assert kept[0] == ("t.py::test_bad", "failed", None)


def test_unrecognized_output_is_unknown_not_a_crash() -> None:
    assert parse("make: *** [all] Error 2\n").framework == "unknown"
    assert parse("\x1b[32m2 passed\x1b[0m in 0.01s\n").passed == 2


def test_the_test_command_is_detected_from_the_workspace(tmp_path: Path) -> None:
    def detected(*files: str) -> str | None:
        folder = tmp_path / "-".join(files).replace("/", "_")
        for name in files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text('{"scripts": {"test": "jest"}}' if name == "package.json" else "")
        return testing.detect_test_command(folder)

    assert (detected("pyproject.toml") or "").endswith("-m pytest -q -rA --durations=0")
    assert (detected("tests/test_x.py") or "").endswith("-m pytest -q -rA --durations=0")
    assert detected("package.json") == "npm test --silent"
    assert detected("go.mod") == "go test -v ./..."
    assert detected("Cargo.toml") == "cargo test"
    assert detected("README.md") is None
    bare_node = tmp_path / "bare-node"
    bare_node.mkdir()
    (bare_node / "package.json").write_text('{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}')
    assert testing.detect_test_command(bare_node) == "node --test"


def _bench(tmp_path: Path, env: dict[str, str] | None = None) -> Bench:
    config = make_config(tmp_path, env)
    return bench(config, testing.tools(config), testing.PROJECTIONS)


def python_project(workspace: Path) -> None:
    """A pytest project whose .venv is this interpreter, so detection finds a Python that has pytest."""
    (workspace / "pyproject.toml").write_text("")
    (workspace / ".venv" / "bin").mkdir(parents=True)
    (workspace / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_things.py").write_text(
        "import pathlib, time, pytest\n"
        "def test_ok():\n    assert True\n"
        "def test_slow():\n    time.sleep(0.05)\n"
        "def test_flaky():\n"
        "    counter = pathlib.Path('runs.txt')\n"
        "    runs = int(counter.read_text()) if counter.exists() else 0\n"
        "    counter.write_text(str(runs + 1))\n"
        "    assert runs % 2 == 1\n"
        "def test_broken():\n    assert 1 == 2\n"
        "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n"
    )


async def test_a_real_pytest_run_is_parsed_and_recorded(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    python_project(b.workspace)
    result = await b.run("workspace_test_run")
    assert isinstance(result.content, str)
    assert not result.is_error and result.exit_code == 1
    assert result.content.splitlines()[0].startswith("Tests: 2 passed, 2 failed, 1 skipped (pytest; exit code 1, ")
    assert "Failing: tests/test_things.py::test_flaky, tests/test_things.py::test_broken" in result.content
    (ran,) = result.events
    assert isinstance(ran, TestRan)
    assert ran.command.startswith(str(b.workspace / ".venv" / "bin" / "python"))
    assert (ran.passed, ran.failed, ran.skipped, ran.timed_out, ran.revision) == (2, 2, 1, False, None)
    assert TestRan.from_payload(ran.to_payload()) == ran


async def test_history_and_summary_find_flaky_slow_and_failing_tests(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    python_project(b.workspace)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=b.workspace, check=True)
    subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
        cwd=b.workspace, check=True,
    )
    assert "No test runs yet" in await b.ok("workspace_test_history")
    for _ in range(3):
        await b.run("workspace_test_run")

    history = (await b.ok("workspace_test_history")).splitlines()
    runs = [line for line in history if line.startswith("#")]
    assert [line.split()[0] for line in runs] == ["#3", "#2", "#1"]
    assert "3 passed, 1 failed" in runs[1] and "2 passed, 2 failed" in runs[0]
    assert len([line for line in (await b.ok("workspace_test_history", {"limit": 1})).splitlines()
                if line.startswith("#")]) == 1

    summary = await b.ok("workspace_test_summary")
    flaky = summary.split("Flaky (both passed and failed):\n")[1].split("Slowest")[0]
    assert flaky.strip().splitlines() == [
        "tests/test_things.py::test_flaky: passed 1x, failed 2x (on the same unchanged commit)"
    ]
    slowest = summary.split("Slowest (mean duration):\n")[1].splitlines()
    assert slowest[0].startswith("  tests/test_things.py::test_slow: ")
    assert "tests/test_things.py::test_broken: failed in 3 of 3 runs - failing now" in summary

    rebuilt = ToolState.empty(testing.PROJECTIONS)
    for event in b.events:
        rebuilt = rebuilt.apply(event)
    assert rebuilt.part("tests") == b.state.part("tests")


def _ran(failures: tuple[str, ...], revision: str, tests: tuple[tuple[str, str, float | None], ...] = ()) -> TestRan:
    return TestRan(
        command="pytest", framework="pytest", exit_code=1 if failures else 0, timed_out=False, passed=3,
        failed=len(failures), skipped=0, duration_ms=10.0, failures=failures, tests=tests, revision=revision, at=0.0,
    )


def test_a_test_only_named_when_failing_is_flaky_when_it_fails_in_some_runs_only() -> None:
    runs = [_ran(("t::a",), "r1"), _ran((), "r1"), _ran(("t::a", "t::b"), "r2"), _ran(("t::b",), "r3")]
    summary = testing.summarize(runs)
    assert summary.flaky == (("t::a", 2, 2, True), ("t::b", 2, 2, False))
    assert summary.recent_failures[0] == ("t::b", 2)


async def test_a_real_node_test_run(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed on this machine")
    b = _bench(tmp_path)
    (b.workspace / "package.json").write_text('{"name": "x"}')
    (b.workspace / "math.test.js").write_text(
        "const test = require('node:test'); const assert = require('node:assert');\n"
        "test('adds', () => assert.equal(1 + 1, 2));\n"
        "test('breaks', () => assert.equal(1, 2));\n"
    )
    result = await b.run("workspace_test_run")
    (ran,) = result.events
    assert isinstance(ran, TestRan)
    assert (ran.command, ran.framework, ran.passed, ran.failed, ran.failures) == (
        "node --test", "node", 1, 1, ("breaks",)
    )


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    b = _bench(tmp_path, {
        "WORKSPACE_TEST_COMMAND": "sleep 300 & echo $! > child.pid; echo started; wait",
        "WORKSPACE_TEST_TIMEOUT_MS": "1000",
    })
    result = await b.run("workspace_test_run")
    assert result.is_error and result.exit_code is None
    assert isinstance(result.content, str)
    assert "timed out after" in result.content and "whole process group was killed" in result.content
    assert "started" in result.content
    child = int((b.workspace / "child.pid").read_text())
    # The orphaned sleep was killed with its group: it is gone, or a zombie waiting for init to reap it.
    with trio.fail_after(10):
        while _alive(child):
            await trio.sleep(0.05)
    (ran,) = result.events
    assert isinstance(ran, TestRan) and ran.timed_out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_output_is_bounded_in_memory_with_the_cut_marked(tmp_path: Path) -> None:
    command = f"{sys.executable} -c \"import sys; sys.stdout.write('x' * 3_000_000 + '\\nEND\\n')\""
    finished = await run_in_group(command, cwd=tmp_path, environ=os.environ, timeout_s=60)
    assert finished.exit_code == 0 and finished.dropped_bytes > 0
    assert "bytes of output cut from the middle" in finished.output
    assert finished.output.endswith("END\n")


async def test_the_test_command_gets_no_secrets(tmp_path: Path) -> None:
    b = _bench(tmp_path, {"WORKSPACE_TEST_COMMAND": "env"})
    b.environ = {**b.environ, "DEPLOY_TOKEN": "tok-leak", "DB_PASSWORD": "pw-leak", "ANTHROPIC_API_KEY": "sk-leak"}
    shown = await b.ok("workspace_test_run")
    assert "PATH=" in shown
    assert "leak" not in shown


async def test_no_test_command_is_a_clear_error(tmp_path: Path) -> None:
    b = _bench(tmp_path)
    assert "set WORKSPACE_TEST_COMMAND" in await b.fails("workspace_test_run")
    assert b.events == []
