"""The git policy: push, pull and commit are allowed only as configured; commit messages must match a pattern;
and, when required, a commit or push goes ahead only once the tests pass.

The rules judge canonical action kinds, never tool names, so ``workspace_git_push``, a plugin's alias of it
and a ``git push`` inside a shell command line (which the shell tool reports as a ``git.push`` action) are all
refused alike.
"""

from __future__ import annotations

import re

import attrs
import trio

from lynkr.config import Config, PolicyConfig
from lynkr.tools.base import Action, PolicyRule, Refusal, ToolContext
from lynkr.tools.environ import without_credentials
from lynkr.tools.testing import chosen_command, run_tests

_SWITCHES = {
    "git.push": ("git_allow_push", "POLICY_GIT_ALLOW_PUSH", "push"),
    "git.pull": ("git_allow_pull", "POLICY_GIT_ALLOW_PULL", "pull"),
    "git.commit": ("git_allow_commit", "POLICY_GIT_ALLOW_COMMIT", "commit"),
}


@attrs.frozen
class GitOperationsAllowed:
    """Push, pull and commit, each only when its POLICY_GIT_ALLOW_* setting allows it."""

    policy: PolicyConfig
    name: str = "git-allowed-operations"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        switch = _SWITCHES.get(action.kind)
        if switch is None or getattr(self.policy, switch[0]):
            return None
        setting, verb = switch[1], switch[2]
        return Refusal(
            rule=self.name,
            reason=f"git {verb} is not allowed here ({setting} is off); leave the {verb} to the user, or ask them "
            f"to set {setting}=true",
        )


@attrs.frozen
class CommitMessagePattern:
    """Every commit message matches POLICY_GIT_COMMIT_REGEX."""

    pattern: re.Pattern[str]
    name: str = "git-commit-message"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind != "git.commit":
            return None
        message = str(action.detail.get("message") or "")
        if self.pattern.search(message):
            return None
        return Refusal(
            rule=self.name,
            reason=f"the commit message does not match the required pattern {self.pattern.pattern!r} "
            "(POLICY_GIT_COMMIT_REGEX); rewrite the message to match it",
        )


@attrs.frozen
class TestsMustPass:
    """With POLICY_GIT_REQUIRE_TESTS, a commit or push runs the tests first and is refused unless they pass."""

    __test__ = False

    command: str | None  # POLICY_GIT_TEST_COMMAND, else WORKSPACE_TEST_COMMAND, else detected per workspace
    timeout_ms: int
    # Commit and/or push, those of them the policy allows at all: a refused push needs no test run.
    guarded: frozenset[str] = frozenset({"git.commit", "git.push"})
    name: str = "git-tests-must-pass"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind not in self.guarded:
            return None
        command = await trio.to_thread.run_sync(chosen_command, context.workspace, self.command)
        if command is None:
            return Refusal(
                rule=self.name,
                reason="tests must pass before a commit or push (POLICY_GIT_REQUIRE_TESTS), but there is no test "
                "command; set POLICY_GIT_TEST_COMMAND or WORKSPACE_TEST_COMMAND",
            )
        try:
            outcome = await run_tests(
                context.workspace, without_credentials(context.environ), command, self.timeout_ms, context.sandbox
            )
        except OSError as exc:
            return Refusal(rule=self.name, reason=f"tests must pass first, but `{command}` could not start: {exc}")
        if outcome.passed:
            return None
        failing = f" Failing: {', '.join(outcome.parsed.failures[:10])}." if outcome.parsed.failures else ""
        return Refusal(
            rule=self.name,
            reason=f"tests must pass before a git {action.kind.removeprefix('git.')} (POLICY_GIT_REQUIRE_TESTS), "
            f"and they do not: {outcome.headline()}.{failing} Fix them (workspace_test_run shows the details), "
            "then try again",
        )


def git_rules(config: Config) -> list[PolicyRule]:
    policy = config.policy
    rules: list[PolicyRule] = [GitOperationsAllowed(policy)]
    if policy.git_commit_regex:
        rules.append(CommitMessagePattern(re.compile(policy.git_commit_regex)))
    if policy.git_require_tests:
        allowed = {kind for kind, switch in _SWITCHES.items() if getattr(policy, switch[0])}
        rules.append(
            TestsMustPass(
                policy.git_test_command or config.tools.test_command,
                config.tools.test_timeout_ms,
                frozenset({"git.commit", "git.push"} & allowed),
            )
        )
    return rules
