"""The test runner's event: one finished run of the workspace's tests, with what its output said."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from lynkr.events.records import Event, event

# One test's outcome in a run: its name, "passed" / "failed" / "skipped", and its duration in ms if known.
TestOutcome = tuple[str, str, float | None]


def _outcomes(items: Iterable[Sequence[Any]]) -> tuple[TestOutcome, ...]:
    return tuple((str(name), str(outcome), None if ms is None else float(ms)) for name, outcome, ms in items)


def _names(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@event("test.ran")
@attrs.frozen(kw_only=True)
class TestRan(Event):
    __test__ = False  # not a pytest test class, whatever its name says

    command: str
    framework: str  # the parser that understood the output: pytest, node, jest, vitest, go, cargo, or unknown
    exit_code: int | None  # None when the run timed out and was killed
    timed_out: bool
    passed: int
    failed: int
    skipped: int
    duration_ms: float
    failures: tuple[str, ...] = attrs.field(converter=_names)
    tests: tuple[TestOutcome, ...] = attrs.field(converter=_outcomes)  # per test, where the output names them
    revision: str | None  # the git HEAD the run tested, when the workspace is a repository
    at: float  # Unix time the run finished
