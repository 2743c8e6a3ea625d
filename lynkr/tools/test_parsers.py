"""Read pass/fail/skip counts, failing test names and durations from a test runner's text output.

Sans-IO: text in, :class:`ParsedRun` out.  Each parser knows one runner's output (pytest, node's test runner
in its TAP and spec reporters, jest, vitest, go test and cargo test); :func:`parse` tries them in turn and
takes the first that recognizes the output.  Per-test outcomes are kept where the output names them (pytest
with ``-rA``, node, go test with ``-v``, cargo), since flaky-test detection needs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from lynkr.tools.test_events import TestOutcome


@attrs.frozen(kw_only=True)
class ParsedRun:
    framework: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()
    tests: tuple[TestOutcome, ...] = ()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def parse(output: str) -> ParsedRun:
    text = _ANSI.sub("", output)
    for parser in _PARSERS:
        found = parser(text)
        if found is not None:
            return found
    return ParsedRun(framework="unknown")


def _dedupe(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


# --- pytest -------------------------------------------------------------------------------------------------

_PYTEST_TOTALS = re.compile(
    r"^=*\s*(?P<body>(?:\d+ (?:passed|failed|skipped|error|errors|xfailed|xpassed|deselected|warnings?)"
    r"(?:, )?)+) in [\d.]+s(?: \([^)]*\))?\s*=*\s*$",
    re.MULTILINE,
)
_PYTEST_NO_TESTS = re.compile(r"^=*\s*no tests ran in [\d.]+s\s*=*\s*$", re.MULTILINE)
_PYTEST_SUMMARY_LINE = re.compile(
    r"^(?P<outcome>PASSED|FAILED|ERROR|XFAIL|XPASS) (?P<name>\S+)(?: - .*)?$", re.MULTILINE
)
_PYTEST_DURATION = re.compile(r"^(?P<seconds>[\d.]+)s (?P<phase>call|setup|teardown)\s+(?P<name>\S+)$", re.MULTILINE)


def _pytest(text: str) -> ParsedRun | None:
    totals = list(_PYTEST_TOTALS.finditer(text))
    if not totals:
        if _PYTEST_NO_TESTS.search(text):
            return ParsedRun(framework="pytest")
        return None
    counts: dict[str, int] = {}
    for part in totals[-1]["body"].split(", "):
        number, word = part.split(" ", 1)
        counts[word] = counts.get(word, 0) + int(number)
    durations: dict[str, float] = {}
    for match in _PYTEST_DURATION.finditer(text):
        durations[match["name"]] = durations.get(match["name"], 0.0) + float(match["seconds"]) * 1000
    outcomes = {"PASSED": "passed", "XFAIL": "skipped", "XPASS": "passed", "FAILED": "failed", "ERROR": "failed"}
    tests: list[TestOutcome] = []
    failures: list[str] = []
    for match in _PYTEST_SUMMARY_LINE.finditer(text):
        outcome = outcomes[match["outcome"]]
        tests.append((match["name"], outcome, durations.get(match["name"])))
        if outcome == "failed":
            failures.append(match["name"])
    return ParsedRun(
        framework="pytest",
        passed=counts.get("passed", 0) + counts.get("xpassed", 0),
        failed=counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0),
        skipped=counts.get("skipped", 0) + counts.get("xfailed", 0),
        failures=_dedupe(failures),
        tests=tuple(tests),
    )


# --- node --test (TAP and spec reporters) -------------------------------------------------------------------

_NODE_COUNT = re.compile(r"^[#ℹ] (?P<what>tests|pass|fail|cancelled|skipped|todo) (?P<count>\d+)\s*$", re.MULTILINE)
_TAP_SUBTEST = re.compile(r"^(?P<indent> *)# Subtest: (?P<name>.+)$")
_TAP_RESULT = re.compile(r"^(?P<indent> *)(?P<ok>ok|not ok) \d+ - (?P<name>.+?)(?: # (?P<directive>SKIP|TODO)\b.*)?$")
_TAP_DURATION = re.compile(r"^ *duration_ms: (?P<ms>[\d.]+)")
_SPEC_LINE = re.compile(
    r"^(?P<indent> *)(?P<mark>✔|✖|﹣|▶) (?P<name>.+?)"
    r"(?: \((?P<ms>[\d.]+)ms\))?(?: # (?P<directive>SKIP|TODO)\b.*)?$"
)


def _node(text: str) -> ParsedRun | None:
    counts = {match["what"]: int(match["count"]) for match in _NODE_COUNT.finditer(text)}
    if "tests" not in counts or "pass" not in counts:
        return None
    tests = _node_tap_tests(text) if "TAP version" in text else _node_spec_tests(text)
    return ParsedRun(
        framework="node",
        passed=counts["pass"],
        failed=counts.get("fail", 0) + counts.get("cancelled", 0),
        skipped=counts.get("skipped", 0) + counts.get("todo", 0),
        failures=_dedupe([name for name, outcome, _ in tests if outcome == "failed"]),
        tests=tuple(tests),
    )


def _node_tap_tests(text: str) -> list[TestOutcome]:
    """Results name nested tests by their parents' names (``suite > inner``); a result's YAML gives its duration."""
    parents: dict[int, str] = {}
    tests: list[TestOutcome] = []
    pending: int | None = None  # index into tests awaiting its duration_ms
    for line in text.splitlines():
        subtest = _TAP_SUBTEST.match(line)
        if subtest:
            parents[len(subtest["indent"])] = subtest["name"]
            continue
        result = _TAP_RESULT.match(line)
        if result:
            depth = len(result["indent"])
            path = [parents[level] for level in sorted(parents) if level < depth]
            name = " > ".join([*path, result["name"]])
            outcome = "skipped" if result["directive"] else ("passed" if result["ok"] == "ok" else "failed")
            tests.append((name, outcome, None))
            pending = len(tests) - 1
            continue
        duration = _TAP_DURATION.match(line)
        if duration and pending is not None:
            name, outcome, _ = tests[pending]
            tests[pending] = (name, outcome, float(duration["ms"]))
            pending = None
    return tests


def _node_spec_tests(text: str) -> list[TestOutcome]:
    parents: dict[int, str] = {}
    tests: list[TestOutcome] = []
    for line in text.splitlines():
        if line.startswith("✖ failing tests:"):
            break  # the spec reporter repeats every failure below this line, without the suite path
        match = _SPEC_LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"])
        parents = {level: name for level, name in parents.items() if level < depth}
        if match["mark"] == "▶":
            parents[depth] = match["name"]
            continue
        name = " > ".join([*(parents[level] for level in sorted(parents)), match["name"]])
        outcome = {"✔": "passed", "✖": "failed", "﹣": "skipped"}[match["mark"]]
        if match["directive"]:
            outcome = "skipped"
        tests.append((name, outcome, float(match["ms"]) if match["ms"] else None))
    return tests


# --- jest and vitest ----------------------------------------------------------------------------------------

_JEST_TOTALS = re.compile(r"^Tests:\s+(?P<body>.+?), (?P<total>\d+) total\s*$", re.MULTILINE)
_JEST_FAILURE = re.compile(r"^\s+● (?P<name>.+?)\s*$", re.MULTILINE)
_JEST_LINE = re.compile(r"^\s+(?P<mark>✓|✕|○|√|×) (?P<name>.+?)(?: \((?P<ms>\d+) ?ms\))?\s*$", re.MULTILINE)
_VITEST_TOTALS = re.compile(r"^\s*Tests\s+(?P<body>.+?)\s+\((?P<total>\d+)\)\s*$", re.MULTILINE)
_VITEST_FAILURE = re.compile(r"^\s*FAIL\s+(?P<name>\S+ > .+?)\s*$", re.MULTILINE)


def _count_words(body: str, separator: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in body.split(separator):
        match = re.match(r"\s*(\d+) (\w+)", part)
        if match:
            counts[match[2]] = counts.get(match[2], 0) + int(match[1])
    return counts


def _jest(text: str) -> ParsedRun | None:
    totals = list(_JEST_TOTALS.finditer(text))
    if not totals:
        return None
    counts = _count_words(totals[-1]["body"], ",")
    failures = [match["name"] for match in _JEST_FAILURE.finditer(text) if not match["name"].startswith("Console")]
    marks = {"✓": "passed", "√": "passed", "✕": "failed", "×": "failed", "○": "skipped"}
    tests: list[TestOutcome] = [
        (
            match["name"].removeprefix("skipped ").strip(),
            marks[match["mark"]],
            float(match["ms"]) if match["ms"] else None,
        )
        for match in _JEST_LINE.finditer(text)
    ]
    return ParsedRun(
        framework="jest",
        passed=counts.get("passed", 0),
        failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0) + counts.get("todo", 0) + counts.get("pending", 0),
        failures=_dedupe(failures),
        tests=tuple(tests),
    )


def _vitest(text: str) -> ParsedRun | None:
    totals = list(_VITEST_TOTALS.finditer(text))
    if not totals or not re.search(r"\d+ (passed|failed|skipped)", totals[-1]["body"]):
        return None
    counts = _count_words(totals[-1]["body"], "|")
    return ParsedRun(
        framework="vitest",
        passed=counts.get("passed", 0),
        failed=counts.get("failed", 0),
        skipped=counts.get("skipped", 0) + counts.get("todo", 0),
        failures=_dedupe([match["name"] for match in _VITEST_FAILURE.finditer(text)]),
    )


# --- go test ------------------------------------------------------------------------------------------------

_GO_RESULT = re.compile(r"^\s*--- (?P<outcome>PASS|FAIL|SKIP): (?P<name>\S+) \((?P<seconds>[\d.]+)s\)", re.MULTILINE)
_GO_PACKAGE = re.compile(r"^(?:ok|FAIL|\?)\s+\S+", re.MULTILINE)


def _go(text: str) -> ParsedRun | None:
    results = list(_GO_RESULT.finditer(text))
    if not results and not _GO_PACKAGE.search(text):
        return None
    if not results and not re.search(r"^(?:ok|FAIL)\s+\S+\s+(?:[\d.]+s|\(cached\))", text, re.MULTILINE):
        return None
    outcomes = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}
    tests: list[TestOutcome] = [
        (match["name"], outcomes[match["outcome"]], float(match["seconds"]) * 1000) for match in results
    ]
    return ParsedRun(
        framework="go",
        passed=sum(1 for _, outcome, _ in tests if outcome == "passed"),
        failed=sum(1 for _, outcome, _ in tests if outcome == "failed"),
        skipped=sum(1 for _, outcome, _ in tests if outcome == "skipped"),
        failures=_dedupe([name for name, outcome, _ in tests if outcome == "failed"]),
        tests=tuple(tests),
    )


# --- cargo test ---------------------------------------------------------------------------------------------

_CARGO_TOTALS = re.compile(
    r"^test result: (?:ok|FAILED)\. (?P<passed>\d+) passed; (?P<failed>\d+) failed; (?P<ignored>\d+) ignored;",
    re.MULTILINE,
)
_CARGO_LINE = re.compile(r"^test (?P<name>\S+)(?: - .+?)? \.\.\. (?P<outcome>ok|FAILED|ignored)", re.MULTILINE)


def _cargo(text: str) -> ParsedRun | None:
    totals = list(_CARGO_TOTALS.finditer(text))
    if not totals:
        return None
    outcomes = {"ok": "passed", "FAILED": "failed", "ignored": "skipped"}
    tests: list[TestOutcome] = [
        (match["name"], outcomes[match["outcome"]], None) for match in _CARGO_LINE.finditer(text)
    ]
    return ParsedRun(
        framework="cargo",
        passed=sum(int(match["passed"]) for match in totals),
        failed=sum(int(match["failed"]) for match in totals),
        skipped=sum(int(match["ignored"]) for match in totals),
        failures=_dedupe([name for name, outcome, _ in tests if outcome == "failed"]),
        tests=tuple(tests),
    )


_PARSERS: tuple[Callable[[str], ParsedRun | None], ...] = (_pytest, _node, _cargo, _jest, _vitest, _go)
