"""Assembling the toolbox: the built-in tool modules, then plugins, then the policy over all of them.

Every tool module exposes ``tools(config) -> list[Tool]`` and ``PROJECTIONS``, and, when it brings policy rules,
``rules(config) -> list[PolicyRule]``.  :data:`BUILTIN_MODULES` lists them.

Plugins are Python entry points.  In the group ``lynkr.tools`` each names a callable
``(Config) -> Iterable[Tool | Alias]``; in ``lynkr.policies`` a callable ``(Config) -> Iterable[PolicyRule]``.
A distribution declares them in its pyproject::

    [project.entry-points."lynkr.tools"]
    my-tools = "my_package:tools"

    [project.entry-points."lynkr.policies"]
    my-rules = "my_package:rules"

A plugin that fails to load stops the daemon at start-up with a message naming it: a policy plugin silently
skipped would weaken the policy without anyone noticing.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, TypeGuard

from lynkr.events.scrub import Scrubber
from lynkr.mcp.sandbox import ToolSandbox
from lynkr.tools.base import Alias, PolicyRule, Projection, Registry, Tool, ToolContext, ToolState, WorkspaceIndex
from lynkr.tools.environ import seal_daemon_environment, tool_environ
from lynkr.tools.policy import disallowed
from lynkr.tools.runner import Toolbox

if TYPE_CHECKING:
    from lynkr.config import Config

TOOLS_ENTRY_POINT_GROUP = "lynkr.tools"
POLICIES_ENTRY_POINT_GROUP = "lynkr.policies"

# The built-in tool modules, in the order their tools are offered.
BUILTIN_MODULES: tuple[str, ...] = (
    "lynkr.tools.files",
    "lynkr.tools.shell",
    "lynkr.tools.cli_builtins",
    "lynkr.tools.cli_search",
    "lynkr.tools.cli_web",
    "lynkr.tools.git",
    "lynkr.tools.testing",
    "lynkr.tools.tasks",
    "lynkr.tools.index_tools",
    "lynkr.tools.policy",
    "lynkr.mcp.tools",  # the mcp.call policy rule; the MCP tools themselves come and go with the bridge
)


class BrokenPlugin(RuntimeError):
    """A tool or policy plugin could not be loaded, or gave something that is not a tool or rule."""


def build_toolbox(config: Config) -> Toolbox:
    # Tools run commands as the daemon's user: they must not read its environment from /proc.
    seal_daemon_environment()
    registry = Registry()
    rules: list[PolicyRule] = []
    projections: dict[str, Projection] = {}
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        for tool in getattr(module, "tools", _none)(config):
            registry.add(tool)
        rules.extend(getattr(module, "rules", _none)(config))
        for projection in getattr(module, "PROJECTIONS", ()):
            projections.setdefault(projection.name, projection)
    aliases: list[Alias] = []
    for entry_point in _entry_points(TOOLS_ENTRY_POINT_GROUP):
        for item in _call_plugin(entry_point, config):
            if isinstance(item, Alias):
                aliases.append(item)
            elif _is_tool(item):
                registry.add(item)
            else:
                raise BrokenPlugin(f"tool plugin {entry_point.name!r} ({entry_point.value}) gave {item!r}, not a tool")
    for alias in aliases:
        registry.alias(alias.name, alias.target)
    for entry_point in _entry_points(POLICIES_ENTRY_POINT_GROUP):
        for item in _call_plugin(entry_point, config):
            if not callable(getattr(item, "judge", None)) or not isinstance(getattr(item, "name", None), str):
                raise BrokenPlugin(
                    f"policy plugin {entry_point.name!r} ({entry_point.value}) gave {item!r}, not a policy rule"
                )
            rules.append(item)
    names, kinds_rule = disallowed(config, registry)
    if kinds_rule is not None:
        rules.insert(0, kinds_rule)
    return Toolbox(
        registry=registry,
        rules=tuple(rules),
        projections=tuple(projections.values()),
        scrubber=Scrubber(config.secrets()),
        disallowed=names,
    )


def tool_context(
    config: Config,
    toolbox: Toolbox,
    *,
    state: ToolState | None = None,
    session_id: str = "",
    summarize: Callable[[str], Awaitable[str]] | None = None,
    environ: Mapping[str, str] | None = None,
    index: WorkspaceIndex | None = None,
) -> ToolContext:
    """The context tools run in: the resolved workspace, the scrubbed environment (from ``environ``, else the
    daemon's), the folded tool state (empty when none is given), the tool settings and the workspace index."""
    return ToolContext(
        workspace=config.workspace_root.resolve(),
        environ=tool_environ(config, environ),
        state=state if state is not None else ToolState.empty(toolbox.projections),
        settings=config.tools,
        session_id=session_id,
        summarize=summarize,
        index=index,
        sandbox=(
            ToolSandbox(workspace=config.workspace_root.resolve(), allow_network=config.mcp.sandbox_allow_networking)
            if config.mcp.sandbox_enabled
            else None
        ),
    )


def _none(config: Config) -> list[Any]:
    return []


def _is_tool(item: object) -> TypeGuard[Tool]:
    return hasattr(item, "spec") and callable(getattr(item, "actions", None)) and callable(getattr(item, "run", None))


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


def _call_plugin(entry_point: EntryPoint, config: Config) -> Iterable[Any]:
    try:
        loaded: Callable[[Config], Iterable[Any]] = entry_point.load()
        return list(loaded(config))
    except Exception as exc:
        raise BrokenPlugin(
            f"plugin {entry_point.name!r} ({entry_point.value}) in {entry_point.group} failed to load: {exc!r}; "
            "fix or uninstall it"
        ) from exc
