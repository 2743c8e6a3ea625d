"""What every tool is: a spec offered to the model, the canonical actions a call would take, and a run.

The policy engine never looks at a tool's *name*.  Each tool turns its arguments into canonical
:class:`Action` records (``Bash``'s ``command`` and ``shell``'s ``command`` both become one ``shell`` action;
``Read`` and ``fs_read`` both become ``fs.read`` of a path), and the policy judges those.  A tool renamed
or aliased by a plugin is therefore judged exactly like the original.

Tools run server-side only.  They never block the trio loop: subprocesses go through ``trio.run_process``,
file and git work through ``trio.to_thread.run_sync``.  A tool that changes state lynkr must remember
(an edit to revert, a task, a test run) returns that change as events in its :class:`ToolResult`; the tool
worker records them and folds them into the :class:`ToolState` the next call sees, so the state is rebuilt
from the log after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from lynkr.events.records import Event

JsonObject = dict[str, Any]

# The canonical kinds of effect a policy can judge.  A tool's actions use only these.
ActionKind = Literal[
    "fs.read",  # read a file or list a folder
    "fs.write",  # create, change, delete or revert a file
    "shell",  # run a command line (``command``)
    "test.run",  # run the workspace's test command
    "test.read",  # read the history of test runs
    "git.read",  # status, diff, log, branches
    "git.write",  # stage, unstage, checkout, stash
    "git.commit",
    "git.push",
    "git.pull",
    "net.fetch",  # an HTTP request to ``url``
    "task",  # the task tracker
    "mcp.call",  # a call to a bridged MCP server's tool (``detail``: server, tool)
    "index.read",  # repo-intelligence queries
]

# Who runs a tool: lynkr itself, or the client (Claude Code) that offered it.
Owner = Literal["lynkr", "client"]


@attrs.frozen(kw_only=True)
class Action:
    """One effect a tool call would have, in terms the policy judges.

    ``paths`` are as the model gave them (relative to the workspace, or absolute); the policy resolves them,
    symlinks included, before any check.
    """

    kind: ActionKind
    paths: tuple[str, ...] = ()
    command: str | None = None
    url: str | None = None
    detail: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ToolSpec:
    """What the model is offered: the tool's name, what it does, and the JSON schema of its input."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    # Which family of tools this belongs to, for the "which tools are offered" setting:
    # "workspace" (lynkr's own), "cli" (Claude Code's built-ins under their own names), "mcp", "index", "plugin".
    family: str = "workspace"
    # The action kinds this tool's calls produce.  ``POLICY_DISALLOWED_TOOLS`` uses them: disallowing ``Bash``
    # (kinds ``shell``) refuses every ``shell`` action, whichever tool or alias asks for it.
    kinds: tuple[ActionKind, ...] = ()

    def as_anthropic(self) -> JsonObject:
        return {"name": self.name, "description": self.description, "input_schema": dict(self.input_schema)}


@attrs.frozen(kw_only=True)
class ToolResult:
    """A tool's answer, already shaped as the ``content`` of an Anthropic ``tool_result`` block.

    ``events`` are state changes the worker records and folds (for example an edit, with what it takes to
    revert it).  ``exit_code`` is the command's status where there is one.
    """

    content: str | list[JsonObject]
    is_error: bool = False
    exit_code: int | None = None
    events: tuple[Event, ...] = ()

    def size(self) -> int:
        if isinstance(self.content, str):
            return len(self.content.encode())
        return sum(len(str(block)) for block in self.content)


class ToolInputError(Exception):
    """The model's input is wrong for the tool: it gets ``<tool_use_error>...</tool_use_error>``, never a crash."""


class WorkspaceIndex(Protocol):
    """The workspace index as tools reach it (``lynkr.index.handle.IndexHandle``), typed here so this module
    need not import the index."""

    def generation(self) -> int: ...

    def detected_test_command(self) -> str | None:
        """The test command the workspace's manifests suggest, for ``workspace_test_run``'s last resort."""
        ...


class Sandbox(Protocol):
    def __call__(
        self, argv: Sequence[str], environ: Mapping[str, str], cwd: Path, writable: Sequence[str] = ()
    ) -> list[str]: ...


@attrs.frozen(kw_only=True)
class ToolContext:
    """What a running tool may use.  Nothing here carries a secret.

    ``workspace`` is the resolved ``WORKSPACE_ROOT``.  ``environ`` is the scrubbed environment every
    subprocess gets.  ``state`` is the folded tool state as of this call.  ``summarize`` asks the configured
    provider for a short text (through the provider pool, recorded), or is None when no provider is set.
    ``index`` is the workspace index the ``index`` family of tools queries (None: not running).
    """

    workspace: Path
    environ: Mapping[str, str]
    state: ToolState
    settings: Any  # lynkr.config.ToolsConfig; typed loosely so plugins need not import it
    session_id: str = ""
    summarize: Callable[[str], Awaitable[str]] | None = None
    # Wraps a command's argv to run it sandboxed (MCP_SANDBOX_ENABLED: bubblewrap, no network, read-only root,
    # the workspace and ``writable`` paths read-write, exactly ``environ``); None runs commands as they are.
    sandbox: Sandbox | None = None
    index: WorkspaceIndex | None = None  # the repo index, when the daemon runs one


@attrs.frozen(kw_only=True)
class Projection:
    """One part of the tool state (edit history, tasks, test runs, ...): a pure fold over tool events.

    ``apply`` returns the new part; it must ignore events it does not know, and never mutate ``part``.
    """

    name: str
    initial: Callable[[], Any]
    apply: Callable[[Any, Event], Any]


@attrs.frozen
class ToolState:
    """The folded state every tool reads, one part per projection.  Rebuilt from the log at start-up."""

    projections: tuple[Projection, ...] = ()
    parts: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def empty(cls, projections: Iterable[Projection]) -> ToolState:
        chosen = tuple(projections)
        return cls(chosen, {projection.name: projection.initial() for projection in chosen})

    def part(self, name: str) -> Any:
        return self.parts[name]

    def apply(self, event: Event) -> ToolState:
        parts = {p.name: p.apply(self.parts[p.name], event) for p in self.projections}
        return ToolState(self.projections, parts)


@attrs.frozen(kw_only=True)
class Refusal:
    """Why the policy refused an action, worded so the model can act on it."""

    rule: str
    reason: str


class PolicyRule(Protocol):
    """One rule of the policy engine.  Plugins add rules through the ``lynkr.policies`` entry point.

    A rule judges one canonical action (never a tool name).  It may be async because some rules must look
    at the world first (``POLICY_GIT_REQUIRE_TESTS`` runs the tests before a commit).
    """

    @property
    def name(self) -> str: ...

    async def judge(self, action: Action, context: ToolContext) -> Refusal | None: ...


class Tool(Protocol):
    """A tool lynkr can run.  Plugins provide objects of this shape through the ``lynkr.tools`` entry point."""

    @property
    def spec(self) -> ToolSpec: ...

    def actions(self, arguments: Mapping[str, Any]) -> Sequence[Action]:
        """The canonical effects of a call with ``arguments``; raise :class:`ToolInputError` for bad input."""
        ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult: ...


@attrs.frozen
class Alias:
    """Another name for a registered tool; a ``lynkr.tools`` plugin may return these beside its tools."""

    name: str
    target: str


class Registry:
    """Every tool lynkr can run, by name, and the aliases that resolve to them.

    One registry serves the agent loop, the hybrid splice and ``/mcp``: there is no second path to a tool.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._aliases: dict[str, str] = {}
        # Counts changes: whoever caches what the registry offers (the session's offers) re-reads it on a change.
        self.generation = 0
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        name = tool.spec.name
        if name in self._tools or name in self._aliases:
            raise ValueError(f"tool {name!r} is registered twice")
        self._tools[name] = tool
        self.generation += 1

    def alias(self, alias: str, target: str) -> None:
        """``alias`` resolves to the tool ``target``: same schema, same actions, same policy."""
        if alias in self._tools or alias in self._aliases:
            raise ValueError(f"tool {alias!r} is registered twice")
        self._aliases[alias] = self.resolve(target).spec.name
        self.generation += 1

    def remove(self, name: str) -> None:
        """Take ``name`` and the aliases to it out: tools that come and go (a bridged MCP server's) use this."""
        self._tools.pop(name, None)
        for alias in [alias for alias, target in self._aliases.items() if target == name]:
            del self._aliases[alias]
        self.generation += 1

    def resolve(self, name: str) -> Tool:
        tool = self._tools.get(self._aliases.get(name, name))
        if tool is None:
            raise KeyError(name)
        return tool

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._tools or name in self._aliases)

    def specs(self, families: Iterable[str] | None = None) -> list[ToolSpec]:
        wanted = None if families is None else set(families)
        return [tool.spec for tool in self._tools.values() if wanted is None or tool.spec.family in wanted]
