"""The policy engine's built-in rules.  They judge canonical actions only, never tool names.

* :class:`DisallowedKinds` (``POLICY_DISALLOWED_TOOLS``): a disallowed tool's action kinds are refused
  whichever tool asks for them, so disallowing ``Bash`` stops ``shell`` and every alias of either.
* :class:`FilePolicy` (``POLICY_FILE_ALLOWED_PATHS`` / ``POLICY_FILE_BLOCKED_PATHS``): every path of an
  ``fs.read`` or ``fs.write`` action is resolved, symlinks included, and must stay inside the workspace, match
  no blocked pattern and, when allowed patterns are set, match one of them.
* :class:`CommandPolicy` (``POLICY_SAFE_COMMANDS_*``): every command of a shell line (see
  :mod:`lynkr.tools.cmdline`) is judged against the allow and deny lists, ``rm`` may not touch the workspace
  root or anything outside it, a command name that is only known at run time is refused, and no argument or
  redirection may name a blocked path.

``POLICY_MAX_STEPS`` and ``POLICY_MAX_TOOL_CALLS`` bound the agent loop, which counts them; git's push, pull,
commit and test rules live with the git tools.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import attrs

from lynkr.tools.base import Action, ActionKind, PolicyRule, Refusal, Registry, ToolContext
from lynkr.tools.workspace import PathPatterns, is_inside, resolve

if TYPE_CHECKING:
    from lynkr.config import Config

ACTION_KINDS: frozenset[str] = frozenset(get_args(ActionKind))


@attrs.frozen
class DisallowedKinds:
    """Refuses every action of a kind that a disallowed tool produces."""

    kinds: frozenset[str]
    because: dict[str, str]  # kind -> the disallowed tool name that brought it in
    name: str = "disallowed_tools"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind not in self.kinds:
            return None
        tool = self.because[action.kind]
        return Refusal(
            rule=self.name,
            reason=f"{tool} is disallowed here (POLICY_DISALLOWED_TOOLS), and this call would do what {tool} does "
            f"({action.kind}); do without it or ask the user to allow it",
        )


def disallowed(config: Config, registry: Registry) -> tuple[frozenset[str], DisallowedKinds | None]:
    """The canonical names of the disallowed tools, and the rule refusing their action kinds (None: nothing is)."""
    names: set[str] = set()
    because: dict[str, str] = {}
    for name in config.policy.disallowed_tools:
        if name in registry:
            tool = registry.resolve(name)
            names.add(tool.spec.name)
            for kind in tool.spec.kinds:
                because.setdefault(kind, name)
        if name in ACTION_KINDS:
            because.setdefault(name, name)
    if not because:
        return frozenset(names), None
    return frozenset(names), DisallowedKinds(frozenset(because), because)


@attrs.frozen
class FilePolicy:
    """Paths stay inside the workspace, away from blocked patterns, and within the allowed ones when set."""

    blocked: PathPatterns
    allowed: PathPatterns
    name: str = "file_paths"

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None:
        if action.kind not in ("fs.read", "fs.write"):
            return None
        verb = "read" if action.kind == "fs.read" else "write"
        for raw in action.paths:
            reason = self.path_problem(context.workspace, raw, verb=verb)
            if reason is not None:
                return Refusal(rule=self.name, reason=reason)
        return None

    def path_problem(self, workspace: Path, raw: str, *, verb: str, cwd: Path | None = None) -> str | None:
        """Why ``raw`` may not be touched, or None."""
        path = resolve(workspace, raw, cwd=cwd)
        if not is_inside(workspace, path):
            return (
                f"{raw} leads to {path}, outside the workspace {workspace} (symlinks are followed); "
                f"only files inside the workspace may be {verb_past(verb)}"
            )
        lexical = Path(os.path.normpath((cwd or workspace) / os.path.expanduser(raw)))
        for candidate in (path, lexical):
            pattern = self.blocked.match(workspace, candidate)
            if pattern is not None:
                return (
                    f"{raw} matches the blocked path pattern {pattern!r} (POLICY_FILE_BLOCKED_PATHS: secrets, keys "
                    f"and git internals); do not {verb} it, and ask the user if you need something from it"
                )
        if self.allowed.patterns and self.allowed.match(workspace, path) is None:
            listed = ", ".join(self.allowed.patterns)
            return f"{raw} is not among the allowed paths (POLICY_FILE_ALLOWED_PATHS: {listed}); work on those only"
        return None


def verb_past(verb: str) -> str:
    return {"read": "read", "write": "written"}.get(verb, verb + "ed")


def file_policy(config: Config) -> FilePolicy:
    return FilePolicy(
        blocked=PathPatterns.of(config.policy.file_blocked_paths),
        allowed=PathPatterns.of(config.policy.file_allowed_paths),
    )


def rules(config: Config) -> list[PolicyRule]:
    return [file_policy(config)]
