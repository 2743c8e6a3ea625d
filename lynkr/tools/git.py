"""The git tools: ``workspace_git_{status,diff,stage,unstage,commit,push,pull,branches,checkout,stash,log}``,
and release notes, a diff summary and a changelog for a commit range.

Each tool is one declared function.  Local work goes through pygit2 in a worker thread (:mod:`git_read`,
:mod:`git_write`, :mod:`git_notes`, over :mod:`git_repo`); push and pull may fall back to the user's ``git``
(:mod:`git_remote`).  A repository in a
state the operation cannot handle gives an error result that says what to do, never an exception.  Git
keeps its own state, so these tools return no events; the policy rules live in :mod:`git_policy`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import trio

from lynkr.config import Config
from lynkr.tools import git_notes, git_read, git_remote, git_repo, git_write
from lynkr.tools.base import Action, ActionKind, PolicyRule, Projection, Tool, ToolContext, ToolResult, ToolSpec
from lynkr.tools.declared import (
    Arguments,
    DeclaredTool,
    count_argument,
    error,
    flag_argument,
    required_text,
    schema,
    text_argument,
    texts_argument,
)
from lynkr.tools.git_policy import git_rules
from lynkr.tools.interim_environ import scrubbed_environ

PROJECTIONS: tuple[Projection, ...] = ()

_PATHS = {"type": "array", "items": {"type": "string"}, "description": "Paths relative to the workspace."}
_RANGE = {
    "type": "string",
    "description": "A commit (its changes), A..B (B against A) or A...B (B since it left A). Default: from the "
    "newest tag to HEAD.",
}


def tools(config: Config) -> list[Tool]:
    return [
        _tool("workspace_git_status", "Branch, upstream distance and changed files (git status --porcelain).",
              schema(), "git.read", _status),
        _tool(
            "workspace_git_diff",
            "Unified diff: of the working tree against the index (default), of the index against HEAD (staged), or "
            "of a commit or range (revision: a commit, A..B or A...B).",
            schema({"revision": {"type": "string"}, "staged": {"type": "boolean"}, "paths": _PATHS,
                    "context_lines": {"type": "integer", "minimum": 0, "maximum": 100}}),
            "git.read",
            _diff,
        ),
        _tool("workspace_git_stage", "Stage paths (new, changed or deleted files), or everything with all.",
              schema({"paths": _PATHS, "all": {"type": "boolean"}}), "git.write", _stage),
        _tool("workspace_git_unstage", "Unstage paths (back to HEAD's version in the index), or everything with all.",
              schema({"paths": _PATHS, "all": {"type": "boolean"}}), "git.write", _unstage),
        _tool(
            "workspace_git_commit",
            "Commit what is staged (all: also every change to tracked files) with message.",
            schema({"message": {"type": "string"}, "all": {"type": "boolean"}}, ["message"]),
            "git.commit",
            _commit,
        ),
        _tool(
            "workspace_git_push",
            "Push a branch (default: the current one) to its remote (default: its upstream's, else origin).",
            schema({"remote": {"type": "string"}, "branch": {"type": "string"}, "set_upstream": {"type": "boolean"}}),
            "git.push",
            _push,
        ),
        _tool(
            "workspace_git_pull",
            "Fetch and merge a remote branch (default: the current branch's upstream) into the current branch.",
            schema({"remote": {"type": "string"}, "branch": {"type": "string"}}),
            "git.pull",
            partial(_pull, autostash=config.policy.git_autostash),
        ),
        _tool("workspace_git_branches", "Local branches (remote: also remote-tracking ones), with upstream distance.",
              schema({"remote": {"type": "boolean"}}), "git.read", _branches),
        _tool(
            "workspace_git_checkout",
            "Switch to branch (create: make it, from start_point or HEAD), or detach HEAD at a commit with detach. "
            "Refuses to overwrite local changes.",
            schema({"branch": {"type": "string"}, "create": {"type": "boolean"}, "start_point": {"type": "string"},
                    "detach": {"type": "string"}}),
            "git.write",
            _checkout,
        ),
        _tool(
            "workspace_git_stash",
            "Stash local changes (operation push, the default), or list, pop, apply or drop a stash "
            "(index, default 0).",
            schema({"operation": {"type": "string", "enum": ["push", "list", "pop", "apply", "drop"]},
                    "message": {"type": "string"}, "include_untracked": {"type": "boolean"},
                    "index": {"type": "integer", "minimum": 0}}),
            "git.write",
            _stash,
        ),
        _tool(
            "workspace_git_log",
            "Commit history, newest first: of HEAD or revision (a commit, or A..B), optionally only commits "
            "touching paths.",
            schema({"revision": {"type": "string"}, "max_count": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "paths": _PATHS}),
            "git.read",
            _log,
        ),
        _tool(
            "workspace_git_release_notes",
            "Release notes for a commit range, grouped by conventional-commit type, with a summary.",
            schema({"range": _RANGE}), "git.read", _release_notes,
        ),
        _tool(
            "workspace_git_diff_summary",
            "Files changed in a commit range with line counts, and a summary of the change.",
            schema({"range": _RANGE}), "git.read", _diff_summary,
        ),
        _tool(
            "workspace_git_changelog",
            "A changelog in Markdown: unreleased commits, then one section per tag, grouped by commit type.",
            schema({"releases": {"type": "integer", "minimum": 1, "maximum": 100}}), "git.read", _changelog,
        ),
    ]


def rules(config: Config) -> list[PolicyRule]:
    return git_rules(config)


Implementation = Callable[[Arguments, ToolContext], Awaitable[ToolResult]]


def _tool(name: str, description: str, input_schema: dict[str, Any], kind: ActionKind, run: Implementation) -> Tool:
    def describe(arguments: Arguments) -> Sequence[Action]:
        detail: dict[str, Any] = {"tool": name}
        if kind == "git.commit":
            detail["message"] = required_text(arguments, "message")
        if kind in ("git.push", "git.pull"):
            detail["remote"] = text_argument(arguments, "remote")
            detail["branch"] = text_argument(arguments, "branch")
        return [Action(kind=kind, paths=texts_argument(arguments, "paths"), detail=detail)]

    return DeclaredTool(
        spec=ToolSpec(name=name, description=description, input_schema=input_schema),
        describe=describe,
        implementation=_answering_state_errors(run),
    )


def _answering_state_errors(run: Implementation) -> Implementation:
    async def guarded(arguments: Arguments, context: ToolContext) -> ToolResult:
        try:
            return await run(arguments, context)
        except git_repo.GitStateError as exc:
            return error(str(exc))

    return guarded


async def _in_thread(function: Callable[..., str], *args: Any, **kwargs: Any) -> ToolResult:
    text = await trio.to_thread.run_sync(lambda: function(*args, **kwargs))
    return ToolResult(content=text)


async def _status(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(git_read.status, context.workspace)


async def _diff(arguments: Arguments, context: ToolContext) -> ToolResult:
    revision = text_argument(arguments, "revision")
    staged = flag_argument(arguments, "staged")
    paths = texts_argument(arguments, "paths")
    context_lines = count_argument(arguments, "context_lines", 3, low=0, high=100)

    def patch() -> str:
        text = git_read.diff(
            context.workspace, revision=revision, staged=staged, paths=paths, context_lines=context_lines
        )
        return text or "No differences."

    return await _in_thread(patch)


async def _stage(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(git_write.stage, context.workspace, texts_argument(arguments, "paths"),
                            flag_argument(arguments, "all"))


async def _unstage(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(git_write.unstage, context.workspace, texts_argument(arguments, "paths"),
                            flag_argument(arguments, "all"))


async def _commit(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(git_write.commit, context.workspace, required_text(arguments, "message"),
                            all_tracked=flag_argument(arguments, "all"))


def _timeout_s(context: ToolContext) -> float:
    return float(context.settings.shell_timeout_ms) / 1000


async def _push(arguments: Arguments, context: ToolContext) -> ToolResult:
    outcome = await git_remote.push(
        context.workspace, scrubbed_environ(context.environ), _timeout_s(context),
        remote=text_argument(arguments, "remote"), branch=text_argument(arguments, "branch"),
        set_upstream=flag_argument(arguments, "set_upstream"),
    )
    return ToolResult(content=outcome.report())


async def _pull(arguments: Arguments, context: ToolContext, *, autostash: bool) -> ToolResult:
    outcome = await git_remote.pull(
        context.workspace, scrubbed_environ(context.environ), _timeout_s(context),
        remote=text_argument(arguments, "remote"), branch=text_argument(arguments, "branch"), autostash=autostash,
    )
    return ToolResult(content=outcome.report())


async def _branches(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(git_read.branches, context.workspace, remote=flag_argument(arguments, "remote"))


async def _checkout(arguments: Arguments, context: ToolContext) -> ToolResult:
    branch = text_argument(arguments, "branch")
    detach = text_argument(arguments, "detach")
    if (branch is None) == (detach is None):
        return error("give exactly one of branch (to switch to a branch) or detach (a commit to detach HEAD at)")
    return await _in_thread(
        git_write.checkout, context.workspace, branch=branch, create=flag_argument(arguments, "create"),
        start_point=text_argument(arguments, "start_point"), detach=detach,
    )


async def _stash(arguments: Arguments, context: ToolContext) -> ToolResult:
    operation = text_argument(arguments, "operation") or "push"
    if operation not in ("push", "list", "pop", "apply", "drop"):
        return error(f"operation must be push, list, pop, apply or drop, not {operation!r}")
    return await _in_thread(
        git_write.stash, context.workspace, operation=operation, message=text_argument(arguments, "message"),
        include_untracked=flag_argument(arguments, "include_untracked"),
        index=count_argument(arguments, "index", 0, low=0, high=10_000),
    )


async def _log(arguments: Arguments, context: ToolContext) -> ToolResult:
    return await _in_thread(
        git_read.log, context.workspace, revision=text_argument(arguments, "revision"),
        limit=count_argument(arguments, "max_count", 20, low=1, high=1000), paths=texts_argument(arguments, "paths"),
    )


async def _summarized(context: ToolContext, summary: git_notes.RangeSummary, text: str, purpose: str) -> ToolResult:
    """The deterministic text, with the model's summary before it when a provider is configured."""
    if context.summarize is None or not summary.commits:
        return ToolResult(content=text)
    written = (await context.summarize(git_notes.summary_prompt(summary, purpose))).strip()
    return ToolResult(content=f"Summary (written by the model):\n{written}\n\n{text}" if written else text)


async def _release_notes(arguments: Arguments, context: ToolContext) -> ToolResult:
    spec = text_argument(arguments, "range")
    summary = await trio.to_thread.run_sync(git_notes.summarize_range, context.workspace, spec)
    return await _summarized(context, summary, git_notes.release_notes(summary), "the summary of release notes")


async def _diff_summary(arguments: Arguments, context: ToolContext) -> ToolResult:
    spec = text_argument(arguments, "range")
    summary = await trio.to_thread.run_sync(git_notes.summarize_range, context.workspace, spec)
    return await _summarized(context, summary, git_notes.diff_summary(summary), "a summary of this change")


async def _changelog(arguments: Arguments, context: ToolContext) -> ToolResult:
    releases = count_argument(arguments, "releases", 20, low=1, high=100)
    return await _in_thread(git_notes.changelog, context.workspace, releases)
